"""What a fitted churn model says (validation/learned.py fits it): each coefficient in words with its
uncertainty, the report's model payload, the definition the live engine scores with
(customers/metrics/churn_model.py), and the learned weights of the heuristic's components."""

from __future__ import annotations

import math
from typing import Any

from validation.engine import risk_components
from validation.features import feature_words
from validation.learned import Z_95, FittedModel

# Odds ratios are put in words up to this many times; beyond it the words say "more than" (a rare
# feature's interval can be astronomically wide; math.exp overflows past e^709).
ODDS_SHOWN_MAX = 1e6


def _odds_text(log_odds: float) -> str:
    if log_odds > math.log(ODDS_SHOWN_MAX):
        return f"more than {ODDS_SHOWN_MAX:,.0f}"
    if log_odds < -math.log(ODDS_SHOWN_MAX):
        return f"less than {1 / ODDS_SHOWN_MAX:.6f}"
    return f"{math.exp(log_odds):.2f}"


def coefficient_words(*, name: str, coefficient: float, std_error: float | None, horizon: int, churns: int) -> str:
    """ "other things equal, each extra week without the core action raises the odds of churn 1.4x ..." """
    label, unit, unit_words = feature_words(name)
    if std_error is None:
        return f"{label} never varied among these customers: nothing was learned about it"
    step = coefficient * unit
    low = (coefficient - Z_95 * std_error) * unit
    high = (coefficient + Z_95 * std_error) * unit
    sure = "uncertain" if low <= 0.0 <= high else "fairly clear"
    direction = "raises" if step >= 0 else "lowers"
    return (
        f"other things equal, each extra {unit_words} {direction} the odds of churn within {horizon} days "
        f"{_odds_text(step)}x (95% range {_odds_text(low)}-{_odds_text(high)}x), {sure} with {churns} "
        f"churn{'s' if churns != 1 else ''}"
    )


def model_payload(fitted: FittedModel) -> dict[str, Any]:
    selection = fitted.selection
    return {
        "horizon_days": fitted.horizon,
        "trained_on_churns": fitted.trained_on_churns,
        "observations": fitted.observations,
        "selection": None
        if selection is None
        else {
            "learned_auc": selection.learned_auc,
            "heuristic_auc": selection.heuristic_auc,
            "held_out_churns": selection.churns,
            "chosen": selection.chosen,
            "judged_on": selection.judged_on,
            "regularisation": selection.regularisation,
            "heuristic_share": selection.heuristic_share,
            "lead_interval": None if selection.lead_interval is None else list(selection.lead_interval),
        },
        "features": [
            {
                "name": name,
                "coefficient": fitted.coefficients[name],
                "std_error": fitted.std_errors[name],
                "in_words": coefficient_words(
                    name=name,
                    coefficient=fitted.coefficients[name],
                    std_error=fitted.std_errors[name],
                    horizon=fitted.horizon,
                    churns=fitted.trained_on_churns,
                ),
            }
            for name in fitted.coefficients
        ],
    }


def model_definition(fitted: FittedModel) -> dict[str, Any]:
    """Everything the live engine needs to score with the model (customers/metrics/churn_model.py):
    the features in order, the standardisation, the coefficients on standard units, the intercept and
    the calibration. Plain numbers, so it is stored as JSON and versioned."""
    return {
        "horizon_days": fitted.horizon,
        "features": list(fitted.coefficients),
        "mean": [float(v) for v in fitted.scaler.mean_],
        "scale": [float(v) if v > 0 else 1.0 for v in fitted.scaler.scale_],
        "coef": [float(v) for v in fitted.model.coef_[0]],
        "intercept": float(fitted.model.intercept_[0]),
        "calibration": None
        if fitted.calibration is None
        else {"slope": fitted.calibration.slope, "intercept": fitted.calibration.intercept},
        "base_rate": fitted.base_rate,
        "trained_on_churns": fitted.trained_on_churns,
        "observations": fitted.observations,
    }


def learned_component_weights(fitted: FittedModel) -> dict[str, dict[str, float]]:
    """The learned weights per risk component in the engine's terms (each component's maximum points).

    Each component's points are a feature of the model; its coefficient per point says how
    much a point of it moves the odds of churn, other things equal. The learned maximum of a
    component is its default maximum scaled by its coefficient relative to the points-weighted
    mean coefficient, so the maxima add up to the defaults' total; a component whose points do
    not raise the odds gets 0. Clamped to the registry's 0-100.
    """
    spec = risk_components()
    coefficients = {s: fitted.coefficients.get(f"{s}_points", 0.0) for s in spec}
    total = sum(spec.values())
    positive = {s: max(b, 0.0) for s, b in coefficients.items()}
    mean = sum(positive[s] * spec[s] for s in spec) / total
    out = {}
    for signal, spec_max in spec.items():
        learned = spec_max * positive[signal] / mean if mean > 0 else spec_max
        out[signal] = {
            "max_points": round(min(100.0, max(0.0, learned)), 1),
            "spec_max_points": spec_max,
            "coefficient_per_point": coefficients[signal],
        }
    return out
