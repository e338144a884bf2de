"""The Validation page (``/validation/``, staff only): the backtest's report as the API gives it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from core.pages import staff_required
from customers.metrics.churn_model import RANKED_BY_HEURISTIC
from customers.models import ChurnModel
from validation.adoption import ModelAdoptionError, churn_model_adopt_latest, churn_model_back_to_heuristic
from validation.apis import BACKTEST_NOTE
from validation.features import feature_words
from validation.learned import JUDGED_ON_RECORD
from validation.selectors import backtest_payload
from validation.services import (
    BACKTEST_DEFAULT_DAYS,
    BACKTEST_DEFAULT_HORIZONS,
    BACKTEST_DEFAULT_STEP,
    BacktestInputError,
    WeightsAdoptionError,
    backtest_run_prepare,
    learned_weights_adopt,
    spec_weights_restore,
)
from validation.tasks import backtest_risk_task

T = TypeVar("T")


def _one_click(
    request: HttpRequest, act: Callable[[], T], *, refused: type[Exception], said: Callable[[T], str]
) -> HttpResponse:
    """A founder's one-click action on the page: what it did, or why it was refused, said on the page."""
    try:
        done = act()
    except refused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, said(done))
    return redirect("validation-page")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def _number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _times(value: float | None) -> str:
    """A lift with its unit ("2.5x"), or a bare dash when there is none: never "—x"."""
    return "—" if value is None else f"{value:.1f}x"


def _figures_display(figures: dict[str, Any] | None) -> dict[str, str] | None:
    if figures is None:
        return None
    lead = figures["lead_days"]
    return {
        "auc": _number(figures["auc"]),
        "lift": _times(figures["top_decile_lift"]),
        "precision": _percent(figures["precision_at_threshold"]),
        "recall": _percent(figures["recall_at_threshold"]),
        "precision_at_10": _percent(figures["precision_at_10"]),
        "lead": "—"
        if lead["median"] is None
        else f"{lead['median']:.0f} days (quartiles {lead['p25']:.0f} to {lead['p75']:.0f})",
        "observations": str(figures["observations"]),
    }


@require_GET
@staff_required
def validation_page(request: HttpRequest) -> HttpResponse:
    payload = backtest_payload()
    horizons = []
    for h in payload["horizons"]:
        lifts = h["lift_by_decile"]
        top = max((v for v in lifts if v is not None), default=0.0) or 1.0
        horizons.append(
            {
                "days": h["days"],
                "heuristic": _figures_display(h["heuristic"]),
                "learned": _figures_display(h["learned"]),
                "learned_same": _figures_display(h["learned"]["heuristic_on_same_dates"]) if h["learned"] else None,
                "verdict": h["learned"]["verdict"] if h["learned"] else None,
                # Bars of the lift chart: (decile, lift text, width in percent of the tallest).
                "lift_bars": [
                    (i + 1, _times(v), 0 if v is None else round(100 * v / top)) for i, v in enumerate(lifts)
                ],
            }
        )
    components = [{"signal": c["signal"], "auc": _number(c["auc"])} for c in payload["components"]]
    return render(
        request,
        "validation/backtest.html",
        {
            "report": payload,
            "horizons": horizons,
            "components": components,
            "note": BACKTEST_NOTE,
            "ranking": _ranking_display(payload),
            "model_features": _model_features(payload),
        },
    )


RANKING_SETTING_WORDS = {
    "spec": "the heuristic always orders the list, whatever the backtest finds.",
    "learned": "the churn model you adopt here orders the list; until you do, the heuristic does.",
    "auto": "each finished backtest decides: the churn model orders the list once it beats the heuristic out of "
    "sample beyond chance with enough churns, and the heuristic again if it stops doing so.",
}
MODEL_FEATURES_SHOWN = 10


def _ranking_display(payload: dict[str, Any]) -> dict[str, Any]:
    active = ChurnModel.objects.filter(is_active=True).first()
    setting = settings.RISK_RANKING
    ranking = payload.get("ranking")
    figures = None
    if ranking:
        lead, chance = ranking["lead_days"], ranking["lead_days_by_chance"]
        interval = ranking.get("auc_interval")
        figures = {
            "auc": _number(ranking["auc"]),
            "interval": "—" if not interval else f"{interval[0]:.2f} to {interval[1]:.2f}",
            "lift": "—" if ranking["top_decile_lift"] is None else f"{ranking['top_decile_lift']:.1f}x",
            "lead": "—" if lead["median"] is None else f"{lead['median']:.0f} days",
            "lead_chance": "—" if chance["median"] is None else f"{chance['median']:.0f} days",
            "model_dates": ranking["as_of_dates_ordered_by_model"],
            "dates": ranking["as_of_dates_total"],
        }
    choice = payload.get("ranking_choice")
    selection = (payload.get("model") or {}).get("selection") or {}
    choice_words = ""
    if selection.get("learned_auc") is not None and selection.get("heuristic_auc") is not None:
        where = (
            "Scored walk-forward over the past, each date by a model fitted before it,"
            if selection.get("judged_on") == JUDGED_ON_RECORD
            else "On the newest part of the past, held out from its fit,"
        )
        lead = selection.get("lead_interval")
        lead_words = (
            f", a lead of {lead[0]:+.2f} to {lead[1]:+.2f} in the middle third of resamples of your customers"
            if lead
            else ""
        )
        share = selection.get("heuristic_share") or 0.0
        blend_words = f" (its score weighs in the heuristic's at {share:.0%})" if share else ""
        choice_words = (
            f"{where} the churn model{blend_words} reached AUC "
            f"{selection['learned_auc']:.2f} against the heuristic's {selection['heuristic_auc']:.2f} "
            f"({selection['held_out_churns']} churns{lead_words}): "
            + (
                "the model is the better guide."
                if choice == "learned"
                else "not surely better (the low end of its lead is not above zero), so the heuristic orders the list."
            )
        )
    return {
        "in_force": "the heuristic (risk signal)"
        if payload["ranking_in_force"] == RANKED_BY_HEURISTIC
        else f"the churn model, version {payload['ranking_in_force'].removeprefix('learned-')}",
        "active": active,
        "setting": setting,
        "setting_words": RANKING_SETTING_WORDS[setting],
        "figures": figures,
        "choice_words": choice_words,
        "can_adopt": bool(payload.get("model_definition")) and setting != "spec",
    }


def _model_features(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The features with the largest effect per standard deviation (the definition's coefficients)."""
    definition = payload.get("model_definition") or {}
    model = payload.get("model") or {}
    weight = dict(zip(definition.get("features", []), definition.get("coef", []), strict=True))
    ranked = sorted(model.get("features", []), key=lambda f: -abs(weight.get(f["name"], 0.0)))
    return [{"label": feature_words(f["name"])[0], "in_words": f["in_words"]} for f in ranked[:MODEL_FEATURES_SHOWN]]


@require_POST
@staff_required
def churn_model_adopt_page(request: HttpRequest) -> HttpResponse:
    """Order the lists by the newest backtest's churn model (a new version, by this user), or say why not."""
    return _one_click(
        request,
        lambda: churn_model_adopt_latest(created_by=request.user.get_username()),
        refused=ModelAdoptionError,
        said=lambda model: f"Churn model version {model.version} adopted: the next recompute orders the list by it.",
    )


@require_POST
@staff_required
def churn_model_stop_page(request: HttpRequest) -> HttpResponse:
    """Back to the heuristic in one click."""
    stopped = churn_model_back_to_heuristic(by=request.user.get_username())
    if stopped is None:
        messages.info(request, "The heuristic already orders the list.")
    else:
        messages.success(request, "Back to the heuristic: the next recompute orders the list by the risk signal.")
    return redirect("validation-page")


@require_POST
@staff_required
def learned_weights_adopt_page(request: HttpRequest) -> HttpResponse:
    """Adopt the learned weights (a new versioned RiskWeights row, by this user), or say why not."""
    try:
        version = learned_weights_adopt(created_by=request.user.get_username())
    except WeightsAdoptionError as exc:
        messages.error(request, str(exc))
    except ValueError as exc:  # weights outside 0-100: risk_weights_create's own validation
        messages.error(request, f"The learned weights were refused: {exc}")
    else:
        messages.success(request, f"Learned weights adopted as version {version}: the next recompute scores with them.")
    return redirect("validation-page")


@require_POST
@staff_required
def spec_weights_restore_page(request: HttpRequest) -> HttpResponse:
    """Go back to the default weights in one click."""
    return _one_click(
        request,
        spec_weights_restore,
        refused=WeightsAdoptionError,
        said=lambda version: f"Back to the default weights (version {version}) from the next recompute.",
    )


@require_POST
@staff_required
def backtest_start_page(request: HttpRequest) -> HttpResponse:
    """Queue a backtest with the command's defaults (or resume the unfinished one); the page shows its progress."""
    try:
        run = backtest_run_prepare(
            days=BACKTEST_DEFAULT_DAYS, step=BACKTEST_DEFAULT_STEP, horizons=BACKTEST_DEFAULT_HORIZONS
        )
    except BacktestInputError as exc:
        messages.error(request, str(exc))
        return redirect("validation-page")
    transaction.on_commit(lambda: backtest_risk_task.delay(run.pk))
    messages.success(
        request,
        f"Backtest {run.pk} queued ({run.dates_total} dates); this page shows its progress and its figures when it is done.",
    )
    return redirect("validation-page")
