"""The shape of a risk component: what it is called, its default maximum, its thresholds and texts."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RiskComponent:
    """One component of the heuristic. Templates are filled from the tenant's facts (see ``tenant_assess``)."""

    name: str
    max_points: float  # the default; the active RiskWeights version may set another (0-100)
    title: str  # how a page names it, e.g. "Never {core_done}"
    help: str  # what it measures, for pages
    reason: str  # the founder-facing sentence when it scores
    thresholds: dict[str, float] = field(default_factory=dict)
