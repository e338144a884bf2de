"""Reads of the validation app: the API and the Validation page call these, so a figure
on the page and in the API can never differ."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings

from customers.metrics.churn_model import RANKED_BY_HEURISTIC, ranking_in_force
from validation.engine import weights_in_force
from validation.models import BacktestRun, BacktestScore, BacktestStatus


def backtest_latest() -> BacktestRun | None:
    """The newest finished run (its report is what the API and the page show)."""
    return BacktestRun.objects.filter(status=BacktestStatus.DONE).order_by("-finished_at", "-id").first()


def backtest_in_progress() -> dict[str, Any] | None:
    run = (
        BacktestRun.objects.exclude(status=BacktestStatus.DONE)
        .order_by("-created_at", "-id")
        .only("id", "status", "dates_total", "dates_done", "error", "heartbeat_at")
        .first()
    )
    if run is None:
        return None
    return {
        "run_id": run.pk,
        "status": run.status,
        "dates_done": len(run.dates_done),
        "dates_total": run.dates_total,
        "error": run.error or None,
    }


def backtest_payload() -> dict[str, Any]:
    """The report of the newest finished run; an empty report (no dates) before the first."""
    run = backtest_latest()
    report = dict(run.report) if run is not None and run.report else {}
    minimum = settings.MIN_CHURNS_FOR_TRUST
    return {
        "run_id": report.get("run_id"),
        "finished_at": run.finished_at if run is not None else None,
        "in_progress": backtest_in_progress(),
        "as_of_dates": report.get("as_of_dates", []),
        "churns_used": report.get("churns_used", 0),
        "minimum_churns_for_trust": minimum,
        "warning": report.get("warning")
        if run is not None
        else "No backtest has run yet: run `python manage.py backtest_risk` (or queue it with --background).",
        # The engine's weights now (adopting or reverting shows at once); the run's own are beside them.
        "weights_in_force": weights_in_force(),
        "scored_with_weights": report.get("weights_in_force"),
        "at_risk_threshold": report.get("at_risk_threshold"),
        "horizons": report.get("horizons", []),
        "components": report.get("components", []),
        "model": report.get("model"),
        "learned_component_weights": report.get("learned_component_weights"),
        "blind_spots": report.get("blind_spots", []),
        "ranking": report.get("ranking"),
        "ranking_choice": report.get("ranking_choice"),
        "model_definition": report.get("model_definition"),
        "ranking_in_force": ranking_in_force_name(),
    }


def ranking_in_force_name() -> str:
    """What orders the lists now: "spec", or "learned-<version>" while an adopted model is in force."""
    model = ranking_in_force()
    return model.name if model is not None else RANKED_BY_HEURISTIC


def backtest_scores(*, as_of: date, horizon: int | None = None) -> list[dict[str, Any]]:
    """Every customer's stored score on ``as_of`` in the newest finished run, by tenant id.

    ``learned_score`` is the learned probability for ``horizon`` (the run's first horizon
    by default), null where the date had too few earlier churns to learn from.
    """
    run = backtest_latest()
    if run is None:
        return []
    key = str(horizon if horizon is not None else run.horizons[0])
    rows = (
        BacktestScore.objects.filter(run=run, as_of=as_of)
        .order_by("tenant_id")
        .values_list("tenant_id", "risk_signal_strength", "learned_score", "learned_scores", "ranking_scores",
                     "ranking_models")
    )  # fmt: skip
    return [
        {
            "tenant_id": tenant_id,
            "risk_signal_strength": strength,
            "learned_score": (scores or {}).get(key) if horizon is not None else learned,
            "ranking_score": (ranking or {}).get(key),
            "ranking_model": (ranked_by or {}).get(key),
            "churn_probability": scores or {},
        }
        for tenant_id, strength, learned, scores, ranking, ranked_by in rows
    ]


def learned_weights_latest() -> dict[str, dict[str, float]] | None:
    """The learned weights per risk component (the engine's terms: each component's maximum points,
    beside the defaults) of the newest finished run, or None while too few churns are recorded.

    For the engine's versioned weights record to adopt; see validation.model_words.learned_component_weights.
    """
    run = backtest_latest()
    if run is None or not run.report:
        return None
    return run.report.get("learned_component_weights")
