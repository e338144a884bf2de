"""The Validation page (``/validation/``, staff only): the backtest's report as the API gives it."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from opsconsole.pages import staff_required
from validation.apis import BACKTEST_NOTE
from validation.selectors import backtest_payload
from validation.services import WeightsAdoptionError, learned_weights_adopt, spec_weights_restore


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
        {"report": payload, "horizons": horizons, "components": components, "note": BACKTEST_NOTE},
    )


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
    """Go back to the spec's weights in one click."""
    try:
        version = spec_weights_restore()
    except WeightsAdoptionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Back to the spec's weights (version {version}) from the next recompute.")
    return redirect("validation-page")
