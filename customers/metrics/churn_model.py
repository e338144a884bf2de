"""Scoring with the adopted churn model, and which score orders the lists.

``ranking_in_force`` reads the setting (RISK_RANKING) and the adopted model (customers.ChurnModel)
once per run. With a model in force, ``churn_scores`` turns the accounts' features
(customers/metrics/features.py, computed from the live rollups as the backtest computed them)
into its calibrated chance of churn within the model's horizon and the features that raised
it most: each feature's contribution is its coefficient times the account's distance from the
training average, in standard units, so the contributions add up to the model's log odds
exactly; the top ones are put in the account's own numbers ("used the product on 2 days in
the last 4 weeks, less than 80% of your customers").

The level of an account under the model is its chance against the base rate the model was
trained on (LEARNED_LEVEL_LIFTS): a customer three times as likely to churn as the average one
is "high" whatever the product's own churn rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings

from customers.metrics.features import feature_sentence
from customers.metrics.signals import TenantSignals
from customers.models import ChurnModel, RiskLevel

# What orders the lists, in the names the API and the stored scores use.
RANKED_BY_HEURISTIC = "spec"
RANKED_BY_MODEL = "learned"
# Levels under the model: its probability as a multiple of the training base rate, most urgent first.
LEARNED_LEVEL_LIFTS: tuple[tuple[RiskLevel, float], ...] = (
    (RiskLevel.CRITICAL, 4.0),
    (RiskLevel.HIGH, 2.5),
    (RiskLevel.MEDIUM, 1.5),
)
DRIVERS_SHOWN = 3


@dataclass(frozen=True)
class ModelInForce:
    version: int
    definition: dict[str, Any]

    @property
    def name(self) -> str:
        return f"learned-{self.version}"

    @property
    def horizon(self) -> int:
        return int(self.definition.get("horizon_days", 30))


def ranking_in_force() -> ModelInForce | None:
    """The adopted model when the setting lets it order the lists ("learned" or "auto"); None: the heuristic."""
    if settings.RISK_RANKING == RANKED_BY_HEURISTIC:
        return None
    active = ChurnModel.objects.filter(is_active=True).only("version", "definition").first()
    return ModelInForce(active.version, active.definition) if active is not None else None


def learned_level(probability: float, *, base_rate: float) -> str | None:
    for level, lift in LEARNED_LEVEL_LIFTS:
        if base_rate > 0 and probability >= lift * base_rate:
            return level
    return None


@dataclass
class ChurnScore:
    probability: float
    drivers: list[dict[str, Any]]  # [{"feature", "words", "contribution"}], the strongest raise first


def churn_scores(
    model: ModelInForce, *, names: tuple[str, ...], matrix: np.ndarray, signals: list[TenantSignals]
) -> list[ChurnScore]:
    """Each account's calibrated chance of churn and its top drivers (see the module docstring); ``matrix``: one
    row of features per account of ``signals`` (features.py ``features_matrix``), one column per name.

    Vectorised over the accounts, feature by feature in the definition's order, so each account's log odds are
    the same sums in the same order as one account's alone; a feature the definition names and ``names`` lacks
    is 0."""
    d = model.definition
    column = {name: j for j, name in enumerate(names)}
    n = len(signals)
    parts = np.empty((n, len(d["features"])))
    log_odds = np.full(n, float(d["intercept"]))
    for k, (name, mean, scale, coef) in enumerate(zip(d["features"], d["mean"], d["scale"], d["coef"], strict=True)):
        value = matrix[:, column[name]] if name in column else np.zeros(n)
        parts[:, k] = coef * (value - mean) / scale
        log_odds += parts[:, k]
    calibration = d.get("calibration")
    if calibration:
        log_odds = calibration["slope"] * log_odds + calibration["intercept"]
    # The strongest raise first, ties in the definition's order (a stable sort of the negated parts).
    order = np.argsort(-parts, axis=1, kind="stable")
    out = []
    for i, s in enumerate(signals):
        probability = 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, float(log_odds[i])))))
        drivers = []
        for k in order[i].tolist():
            part = float(parts[i, k])
            if part <= 0 or len(drivers) >= DRIVERS_SHOWN:
                break
            name = d["features"][k]
            own = float(matrix[i, column[name]]) if name in column else 0.0
            words = feature_sentence(name, s, own)
            if words:
                drivers.append({"feature": name, "words": words, "contribution": round(part, 4)})
        out.append(ChurnScore(round(probability, 6), drivers))
    return out


def probability_text(probability: float, *, horizon: int) -> str:
    """ "chance of churn within 30 days: 23%"."""
    shown = "under 1%" if probability < 0.005 else f"{probability:.0%}"
    return f"chance of churn within {horizon} days: {shown}"
