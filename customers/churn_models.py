"""The adopted churn model as founder data: versions created, activated and stopped in one transaction each.

The engine reads the active version once per run (customers/metrics/churn_model.py); the validation
app creates versions from a backtest's walk-forward model. Adopting and going back are each one call,
and every version keeps who adopted it and when, and who stopped it.
"""

from __future__ import annotations

import math
from typing import Any

from django.db import transaction
from django.utils import timezone

from customers.models import ChurnModel

DEFINITION_KEYS = ("horizon_days", "features", "mean", "scale", "coef", "intercept")


def churn_model_problems(definition: Any) -> list[str]:
    """What makes a definition unusable by the engine (empty when it can score)."""
    if not isinstance(definition, dict):
        return ["the definition must be an object"]
    missing = [k for k in DEFINITION_KEYS if k not in definition]
    if missing:
        return [f"missing {', '.join(missing)}"]
    n = len(definition["features"])
    if not n or any(len(definition[k]) != n for k in ("mean", "scale", "coef")):
        return ["features, mean, scale and coef must have the same, non-zero length"]
    numbers = [*definition["mean"], *definition["scale"], *definition["coef"], definition["intercept"]]
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in numbers):
        return ["every number must be finite"]
    if any(v <= 0 for v in definition["scale"]):
        return ["every scale must be positive"]
    return []


def churn_model_adopt(
    *, definition: dict[str, Any], evidence: dict[str, Any], created_by: str, backtest_run_id: int | None
) -> ChurnModel:
    """A new version, active at once (the previous one stopped); raises ValueError for a bad definition."""
    problems = churn_model_problems(definition)
    if problems:
        raise ValueError("; ".join(problems))
    with transaction.atomic():
        latest = ChurnModel.objects.select_for_update().order_by("-version").first()
        ChurnModel.objects.filter(is_active=True).update(
            is_active=False, deactivated_by=created_by, deactivated_at=timezone.now()
        )
        return ChurnModel.objects.create(
            version=(latest.version + 1) if latest else 1,
            definition=definition,
            evidence=evidence,
            backtest_run_id=backtest_run_id,
            created_by=created_by,
            is_active=True,
        )


def churn_model_stop(*, by: str) -> ChurnModel | None:
    """Stop using the active model (the heuristic orders the lists from the next recompute); the stopped one."""
    with transaction.atomic():
        active = ChurnModel.objects.select_for_update().filter(is_active=True).first()
        if active is None:
            return None
        active.is_active = False
        active.deactivated_by = by
        active.deactivated_at = timezone.now()
        active.save(update_fields=["is_active", "deactivated_by", "deactivated_at"])
        return active


def churn_model_activate(*, version: int, by: str) -> ChurnModel:
    """Make an earlier version the active one again; raises ChurnModel.DoesNotExist for an unknown version."""
    with transaction.atomic():
        chosen = ChurnModel.objects.select_for_update().get(version=version)
        ChurnModel.objects.filter(is_active=True).exclude(pk=chosen.pk).update(
            is_active=False, deactivated_by=by, deactivated_at=timezone.now()
        )
        if not chosen.is_active:
            chosen.is_active = True
            chosen.save(update_fields=["is_active"])
        return chosen
