"""The shape of a risk component: what it is called, its default maximum, its thresholds and texts, and
how it scores one tenant.

A component scores from an ``Assessing`` (the tenant's measured signals and the facts derived from them
once, shared by every component and by the texts) and returns ``Scored``: its points at the default
maximum, the value it read, and the explanation of how the points came about. ``tenant_assess``
(risk.py) loops over the components, scales each one's points to its active weight and writes its
founder-facing reason from ``reason`` and the facts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from customers.metrics.signals import TenantSignals
    from customers.metrics.vocabulary import Vocabulary


class Scored(NamedTuple):
    points: float  # at the component's default maximum; tenant_assess scales them to the active weight
    value: Any  # the measured value the page and the API show beside the points
    # How the points came about, or why the component did not fire: written only when called, since the
    # backtest reads the points of every customer on every date and never shows the words.
    explanation: Callable[[], str]


@dataclass(frozen=True)
class Assessing:
    """One tenant as the components see it: its signals and what is derived from them once."""

    signals: TenantSignals
    as_of: date
    vocabulary: Vocabulary
    # What every text template is filled from (account, counts, labels...), derived when a text first asks
    # (``facts``): a reader of the points alone never pays for the words.
    facts_derive: Callable[[], dict[str, Any]]
    stickiness_7d: float
    stickiness_30d: float
    stickiness_delta: float | None  # None without a 30-day baseline
    days_since_core_value: int | None  # None: never
    age_days: int
    silent: bool  # active this week, no core value for longer than the gap (silent_churn)
    never_used_core_value: bool  # the never_investigated condition
    champion_risk: bool
    cliff: bool
    # The change closest before the 7-day stickiness began to fall: (its type, its day, the fall's first day).
    decay_change: tuple[str, date, date] | None

    @cached_property
    def facts(self) -> dict[str, Any]:
        return self.facts_derive()


@dataclass(frozen=True)
class RiskComponent:
    """One component of the heuristic. Templates are filled from the tenant's facts (``Assessing.facts``
    and the component's own thresholds)."""

    name: str
    max_points: float  # the default; the active RiskWeights version may set another (0-100)
    title: str  # how a page names it, e.g. "Never {core_done}"
    help: str  # what it measures, for pages
    reason: str  # the founder-facing sentence when it scores
    thresholds: dict[str, float] = field(default_factory=dict)
    # How it scores one tenant; None only for a component defined for its texts alone.
    score: Callable[[RiskComponent, Assessing], Scored] | None = None
