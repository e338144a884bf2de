"""Which score orders the lists: adopting the walk-forward churn model, going back, and RISK_RANKING=auto.

A finished backtest's report carries the model fitted on every churn it saw (``model_definition``) and
which score its walk-forward judgement chose (``ranking_choice``: the model only when it beat the
heuristic out of sample beyond chance with MIN_CHURNS_FOR_TRUST churns; validation/learned.py). The
founder adopts it on the Validation page (a new customers.ChurnModel version, by whom and when) and
goes back in one click; with RISK_RANKING=auto every finished backtest applies its own choice.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from customers.churn_models import churn_model_adopt, churn_model_stop
from customers.models import ChurnModel
from validation.learned import RANKED_BY_MODEL
from validation.models import BacktestRun, BacktestStatus

AUTO_BY = "auto (RISK_RANKING)"


class ModelAdoptionError(Exception):
    """A churn model that cannot be adopted now; the message says why."""


def backtest_latest_done() -> BacktestRun | None:
    return BacktestRun.objects.filter(status=BacktestStatus.DONE).order_by("-finished_at", "-id").first()


def _evidence(run: BacktestRun) -> dict[str, Any]:
    report = run.report or {}
    model = report.get("model") or {}
    ranking = report.get("ranking") or {}
    return {
        "backtest_run": run.pk,
        "trained_on_churns": model.get("trained_on_churns"),
        "selection": model.get("selection"),
        "ranking_auc": ranking.get("auc"),
        "ranking_auc_interval": ranking.get("auc_interval"),
        "ranking_top_decile_lift": ranking.get("top_decile_lift"),
    }


def churn_model_adopt_latest(*, created_by: str) -> ChurnModel:
    """Adopt the newest finished backtest's model; refused (ModelAdoptionError) while there is none."""
    run = backtest_latest_done()
    definition = (run.report or {}).get("model_definition") if run is not None else None
    if run is None or not definition:
        raise ModelAdoptionError(
            f"No churn model yet: a backtest with at least {settings.MIN_CHURNS_FOR_TRUST} recorded churns fits one. "
            "Start one on this page or run `python manage.py backtest_risk`."
        )
    try:
        return churn_model_adopt(
            definition=definition, evidence=_evidence(run), created_by=created_by, backtest_run_id=run.pk
        )
    except ValueError as exc:
        raise ModelAdoptionError(f"The backtest's model cannot score: {exc}") from exc


def churn_model_back_to_heuristic(*, by: str) -> ChurnModel | None:
    return churn_model_stop(by=by)


def ranking_auto_apply(run: BacktestRun) -> str:
    """With RISK_RANKING=auto, follow a finished run's choice: adopt its model when the model won, stop a
    model adopted automatically when the heuristic did (a founder's own adoption is left alone).
    Returns what it did: "adopted", "stopped" or "unchanged"."""
    if settings.RISK_RANKING != "auto" or run.status != BacktestStatus.DONE or not run.report:
        return "unchanged"
    chosen = run.report.get("ranking_choice")
    churns = ((run.report.get("model") or {}).get("trained_on_churns")) or 0
    active = ChurnModel.objects.filter(is_active=True).first()
    if chosen == RANKED_BY_MODEL and churns >= settings.MIN_CHURNS_FOR_TRUST and run.report.get("model_definition"):
        if active is not None and active.backtest_run_id == run.pk:
            return "unchanged"
        churn_model_adopt(
            definition=run.report["model_definition"], evidence=_evidence(run), created_by=AUTO_BY,
            backtest_run_id=run.pk,
        )  # fmt: skip
        return "adopted"
    if active is not None and active.created_by == AUTO_BY:
        churn_model_stop(by=AUTO_BY)
        return "stopped"
    return "unchanged"
