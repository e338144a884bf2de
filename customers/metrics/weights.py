"""The risk components' weights (maximum points) as founder data: read, validated, versioned, switched.

``customers.RiskWeights`` keeps versions; exactly one is active. The engine reads it
once per run (``risk_weights_current``) and never stops on a stored value: anything
out of range or unknown (possible only by editing outside admin and the service) is
logged and replaced by the component's default. Admin and the prediction issue's
"learned" versions go through ``risk_weights_problems`` and ``risk_weights_activate``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.db import transaction

from customers.metrics.risk import COMPONENTS_BY_NAME, DEFAULT_WEIGHTS
from customers.models import RiskWeights

logger = logging.getLogger(__name__)

WEIGHT_MIN = 0.0
WEIGHT_MAX = 100.0
# What a component's maximum means, in the words every place that edits one shows.
NOT_A_NUMBER = "Maximum points must be a number."
WEIGHT_SCALE_HELP = (
    "The most points this component adds to the 0-100 risk signal: 1 barely moves it, 100 lets this "
    "component alone fill the whole signal; 0 turns it off. Empty: the default, {default:g}."
)


def risk_weights_problems(weights: Any) -> dict[str, str]:
    """Component -> a clear message for every bad entry (empty when the weights are valid)."""
    if not isinstance(weights, dict):
        return {"weights": 'Give an object of component -> maximum points, e.g. {"silent_churn": 50}.'}
    problems: dict[str, str] = {}
    for name, value in weights.items():
        if name not in COMPONENTS_BY_NAME:
            problems[str(name)] = f"Unknown component '{name}'. Choose from: {', '.join(COMPONENTS_BY_NAME)}."
        elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problems[name] = NOT_A_NUMBER
        elif not WEIGHT_MIN <= value <= WEIGHT_MAX:
            problems[name] = f"Maximum points must lie in {WEIGHT_MIN:g}-{WEIGHT_MAX:g} (got {value:g})."
    return problems


def risk_weights_current() -> dict[str, float]:
    """Each component's maximum points: the active version's, a component's default where it has none."""
    active = RiskWeights.objects.filter(is_active=True).first()
    stored = active.weights if active is not None else {}
    out = dict(DEFAULT_WEIGHTS)
    if not isinstance(stored, dict):
        logger.warning("risk weights v%s ignored: not an object", active.version if active else "-")
        return out
    problems = risk_weights_problems(stored)
    for name, value in stored.items():
        if name in problems:
            logger.warning("risk weight %s=%r ignored: %s", name, value, problems[name])
        else:
            out[name] = float(value)
    return out


def risk_weights_activate(*, version: int) -> RiskWeights:
    """Make one version the active one (the others inactive), in one transaction: adopting a
    learned version and going back to the previous one are each one call. Raises
    RiskWeights.DoesNotExist for an unknown version and ValueError for invalid weights."""
    with transaction.atomic():
        chosen = RiskWeights.objects.select_for_update().get(version=version)
        problems = risk_weights_problems(chosen.weights)
        if problems:
            raise ValueError("; ".join(f"{k}: {v}" for k, v in problems.items()))
        RiskWeights.objects.filter(is_active=True).exclude(pk=chosen.pk).update(is_active=False)
        if not chosen.is_active:
            chosen.is_active = True
            chosen.save(update_fields=["is_active"])
    return chosen


def risk_weights_create(
    *, weights: dict[str, float], source: str, created_by: str = "", note: str = "", activate: bool = False
) -> RiskWeights:
    """A new version (the next number); raises ValueError with the problems when invalid."""
    problems = risk_weights_problems(weights)
    if problems:
        raise ValueError("; ".join(f"{k}: {v}" for k, v in problems.items()))
    with transaction.atomic():
        latest = RiskWeights.objects.select_for_update().order_by("-version").first()
        created = RiskWeights.objects.create(
            version=(latest.version + 1) if latest else 1,
            source=source,
            weights={k: float(v) for k, v in weights.items()},
            created_by=created_by,
            note=note,
        )
        if activate:
            risk_weights_activate(version=created.version)
            created.refresh_from_db()
    return created
