"""Weights learned from the founder's own churns: a regularised logistic regression.

The model (scikit-learn's ``LogisticRegression``, L2, on standardised features) reads
the per-customer features of validation/features.py and predicts "churned within H
days of D". It is fitted walk-forward: the learned score on D comes from a model
trained only on observations whose label window closed before D (D' + H < D), so
every churn it learned from is dated before D and every backtest figure of the
learned score is out of sample. The model is refitted every LEARNED_REFIT_DAYS; a date
in between is scored by the latest model (trained before an even earlier date). Until
MIN_CHURNS_FOR_TRUST churns are in a date's training set, that date has no learned score.

Uncertainty: the standard errors are those of the penalised maximum likelihood
(the inverse of the penalised Fisher information at the fit, X'WX + I/C, on the
standardised features), turned into each feature's own unit; with few churns they
are wide, and the words say so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from validation.engine import risk_components
from validation.features import feature_names, features
from validation.figures import Churns, alive_on, churned_within

# The inverse regularisation strength of the fit (scikit-learn's C): strong enough that a
# handful of churns cannot produce wild coefficients, weak enough to follow a clear signal.
REGULARISATION_C = 0.5
# The learned model is called better than the heuristic only when its AUC beats the
# heuristic's on the same dates by more than this (smaller gaps are noise at these sizes).
BETTER_AUC_MARGIN = 0.05
Z_95 = 1.96
# Days between walk-forward refits: a fit per weekly date cost most of a 10,000-customer
# backtest's time (measured: 175 of 262 s at 1M events), and four weeks of new churns
# rarely move a model trained on months of them.
LEARNED_REFIT_DAYS = 28


@dataclass
class FeatureTable:
    """A run's stored features as arrays (one row per score, as_of then tenant order): a
    10,000-customer, 26-date backtest is a 260,000 x 16 float matrix, not 260,000 dicts."""

    as_of: list[date]
    tenant_ids: list[str]
    matrix: np.ndarray
    days: np.ndarray  # as_of as ordinals, for the date masks
    names: tuple[str, ...]  # the feature of each column


def feature_table(rows: Iterable[tuple[date, str, dict[str, float]]], *, count: int) -> FeatureTable:
    """Build the table from ``count`` (as_of, tenant_id, features) rows, streamed into a preallocated matrix."""
    names = feature_names()
    as_of: list[date] = []
    tenant_ids: list[str] = []
    matrix = np.zeros((count, len(names)), dtype=float)
    dates: dict[date, date] = {}  # one object per distinct date, not one per row
    n = 0
    for n, (day, tenant_id, values) in enumerate(rows, start=1):
        as_of.append(dates.setdefault(day, day))
        tenant_ids.append(tenant_id)
        matrix[n - 1] = [float(values.get(name, 0.0)) for name in names]
    matrix = matrix[:n]
    return FeatureTable(as_of, tenant_ids, matrix, np.array([d.toordinal() for d in as_of], dtype=np.int64), names)


@dataclass
class _Labels:
    alive: np.ndarray  # bool: no churn on or before as_of
    churned: np.ndarray  # bool: a churn in (as_of, as_of + H]
    churn_event: np.ndarray  # the index of that churn in the list of churns, -1 when none


def _labels(table: FeatureTable, churns: Churns, *, horizon: int) -> _Labels:
    events = {(t, c): i for i, (t, c) in enumerate(sorted((t, c) for t, days in churns.items() for c in days))}
    alive = np.zeros(len(table.as_of), dtype=bool)
    churned = np.zeros(len(table.as_of), dtype=bool)
    event = np.full(len(table.as_of), -1, dtype=np.int64)
    for i, (day, tenant_id) in enumerate(zip(table.as_of, table.tenant_ids, strict=True)):
        alive[i] = alive_on(churns, tenant_id, day)
        if alive[i] and churned_within(churns, tenant_id, day, horizon):
            churned[i] = True
            end = day + timedelta(days=horizon)
            event[i] = events[(tenant_id, min(c for c in churns[tenant_id] if day < c <= end))]
    return _Labels(alive, churned, event)


@dataclass
class FittedModel:
    horizon: int
    trained_on_churns: int
    observations: int
    coefficients: dict[str, float]  # per unit of the feature (log odds)
    std_errors: dict[str, float | None]  # None: the feature never varied in the training set
    scaler: StandardScaler
    model: LogisticRegression

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        if not len(matrix):
            return np.zeros(0)
        return self.model.predict_proba(self.scaler.transform(matrix))[:, 1]


def _fit(table: FeatureTable, labels: _Labels, *, horizon: int, before: date, min_churns: int) -> FittedModel | None:
    # Observations whose H-day label window closed before ``before``: every churn they learn from is dated
    # before it. Customers already lost on their date are not observations.
    mask = (table.days + horizon < before.toordinal()) & labels.alive
    y = labels.churned[mask]
    churn_count = int(np.unique(labels.churn_event[mask & labels.churned]).size)
    if churn_count < min_churns or y.all() or not y.any():
        return None
    raw = table.matrix[mask]
    scaler = StandardScaler().fit(raw)
    x = scaler.transform(raw)
    model = LogisticRegression(C=REGULARISATION_C, max_iter=2000).fit(x, y.astype(int))
    p = model.predict_proba(x)[:, 1]
    design = np.hstack([np.ones((len(x), 1)), x])
    # The penalised Fisher information; the intercept is not penalised.
    penalty = np.eye(design.shape[1]) / REGULARISATION_C
    penalty[0, 0] = 0.0
    information = design.T @ (design * (p * (1 - p))[:, None]) + penalty
    covariance = np.linalg.pinv(information)
    varied = scaler.scale_ > 0
    scale = np.where(varied, scaler.scale_, 1.0)
    coefficients = {name: float(model.coef_[0][i] / scale[i]) for i, name in enumerate(table.names)}
    # A feature that never varied carries no information: its coefficient is 0 and has no error.
    std_errors: dict[str, float | None] = {
        name: float(math.sqrt(max(covariance[i + 1, i + 1], 0.0)) / scale[i]) if varied[i] else None
        for i, name in enumerate(table.names)
    }
    return FittedModel(horizon, churn_count, int(mask.sum()), coefficients, std_errors, scaler, model)


def model_fit(
    table: FeatureTable, churns: Churns, *, horizon: int, before: date, min_churns: int
) -> FittedModel | None:
    """The model trained on what was known before ``before``; None with fewer than ``min_churns`` churns."""
    return _fit(table, _labels(table, churns, horizon=horizon), horizon=horizon, before=before, min_churns=min_churns)


def walk_forward_scores(table: FeatureTable, churns: Churns, *, horizon: int, min_churns: int) -> np.ndarray:
    """The learned score of every row of the table (NaN where its date had too few earlier churns).

    The model is refitted every LEARNED_REFIT_DAYS (and on every date until the first fit
    succeeds); a date between refits is scored by the latest model, which was trained on what
    was known before ITS date, earlier still: out of sample either way.
    """
    labels = _labels(table, churns, horizon=horizon)
    out = np.full(len(table.as_of), np.nan)
    fitted: FittedModel | None = None
    fitted_on = -(10**9)
    for ordinal in np.unique(table.days):
        if fitted is None or ordinal - fitted_on >= LEARNED_REFIT_DAYS:
            refit = _fit(table, labels, horizon=horizon, before=date.fromordinal(int(ordinal)), min_churns=min_churns)
            if refit is not None:
                fitted, fitted_on = refit, int(ordinal)
        if fitted is not None:
            (index,) = np.nonzero(table.days == ordinal)
            out[index] = fitted.predict(table.matrix[index])
    return out


# Odds ratios are put in words up to this many times (a rare feature's interval can be astronomically
# wide; math.exp overflows past e^709).
ODDS_SHOWN_MAX = 1e6


def _odds(log_odds: float) -> float:
    return math.exp(max(-math.log(ODDS_SHOWN_MAX), min(math.log(ODDS_SHOWN_MAX), log_odds)))


def coefficient_words(*, name: str, coefficient: float, std_error: float | None, horizon: int, churns: int) -> str:
    """ "each extra week without the core action raises the odds of churn 1.4x, uncertain with 12 churns"."""
    feature = next(f for f in features() if f.name == name)
    if std_error is None:
        return f"{feature.label} never varied among these customers: nothing was learned about it"
    step = feature.unit
    ratio = _odds(coefficient * step)
    low = _odds((coefficient - Z_95 * std_error) * step)
    high = _odds((coefficient + Z_95 * std_error) * step)
    sure = "uncertain" if low <= 1.0 <= high else "fairly clear"
    direction = "raises" if ratio >= 1 else "lowers"
    return (
        f"each extra {feature.unit_words} {direction} the odds of churn within {horizon} days {ratio:.2f}x "
        f"(95% range {low:.2f}-{high:.2f}x), {sure} with {churns} churn{'s' if churns != 1 else ''}"
    )


def model_payload(fitted: FittedModel) -> dict[str, Any]:
    return {
        "horizon_days": fitted.horizon,
        "trained_on_churns": fitted.trained_on_churns,
        "observations": fitted.observations,
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


def learned_component_weights(fitted: FittedModel) -> dict[str, dict[str, float]]:
    """The learned weights per risk component in the engine's terms (each component's maximum points).

    Each component's points are a feature of the model; its coefficient per point says how
    much a point of it moves the odds of churn, other things equal. The learned maximum of a
    component is the spec's maximum scaled by its coefficient relative to the points-weighted
    mean coefficient, so the maxima add up to the spec's total; a component whose points do
    not raise the odds gets 0. Clamped to the registry's 0-100. For the lead to wire into the
    engine's versioned weights record (adopt / revert) once it exists.
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
