"""Weights learned from the founder's own churns: a regularised logistic regression.

The model (scikit-learn's ``LogisticRegression``, L2, on standardised features) reads
the per-customer features of validation/features.py and predicts "churned within H
days of D". It is fitted walk-forward: the learned score on D comes from a model
trained only on observations whose label window closed before D (D' + H < D), so
every churn it learned from is dated before D and every backtest figure of the
learned score is out of sample. It runs inside the backtest, date by date (``WalkForward``):
the model scoring D is fitted before any date after D has been measured. The model is
refitted every LEARNED_REFIT_DAYS; a date in between is scored by the latest model (trained
before an even earlier date). Until MIN_CHURNS_FOR_TRUST churns are in a date's training
set, that date has no learned score.

Uncertainty: the standard errors are those of the penalised maximum likelihood
(the inverse of the penalised Fisher information at the fit, X'WX + I/C, on the
standardised features), turned into each feature's own unit; with few churns they
are wide, and the words say so.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from validation.engine import risk_components
from validation.features import features
from validation.figures import ChurnMarks, Churns, Rows, churn_marks

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
class ScoreTable:
    """A run's stored scores as arrays, one row per score in (as_of, tenant) order: a
    10,000-customer, 26-date backtest is a 260,000 x 16 float matrix, not 260,000 dicts."""

    rows: Rows  # the as-of date and customer of each row
    matrix: np.ndarray  # the features (validation/features.py), one column per name
    names: tuple[str, ...]  # the feature of each column
    strength: np.ndarray  # the heuristic: risk_signal_strength
    learned: dict[int, np.ndarray]  # the walk-forward learned score per horizon; NaN where none

    def column(self, name: str) -> np.ndarray:
        return self.matrix[:, self.names.index(name)]

    def tenant_id_of_rows(self) -> np.ndarray:
        return self.rows.tenant_ids[self.rows.tenant]

    def subset(self, mask: np.ndarray) -> ScoreTable:
        return ScoreTable(
            self.rows.subset(mask), self.matrix[mask], self.names, self.strength[mask],
            {h: v[mask] for h, v in self.learned.items()},
        )  # fmt: skip

    @classmethod
    def concatenate(cls, parts: list[ScoreTable], *, names: tuple[str, ...], horizons: list[int]) -> ScoreTable:
        if not parts:
            return cls(
                Rows.of([], []), np.zeros((0, len(names))), names, np.zeros(0), {h: np.zeros(0) for h in horizons}
            )
        return cls(
            Rows.of(
                np.concatenate([p.rows.day for p in parts]), np.concatenate([p.tenant_id_of_rows() for p in parts])
            ),
            np.concatenate([p.matrix for p in parts]),
            names,
            np.concatenate([p.strength for p in parts]),
            {h: np.concatenate([p.learned[h] for p in parts]) for h in horizons},
        )


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


def _fit(table: ScoreTable, labels: ChurnMarks, *, horizon: int, before: date, min_churns: int) -> FittedModel | None:
    # Observations whose H-day label window closed before ``before``: every churn they learn from is dated
    # before it. Customers already lost on their date are not observations.
    mask = (table.rows.day + horizon < before.toordinal()) & labels.alive
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


def model_fit(table: ScoreTable, churns: Churns, *, horizon: int, before: date, min_churns: int) -> FittedModel | None:
    """The model trained on what was known before ``before``; None with fewer than ``min_churns`` churns."""
    labels = churn_marks(table.rows, churns, horizon=horizon)
    return _fit(table, labels, horizon=horizon, before=before, min_churns=min_churns)


@dataclass
class _Schedule:
    fitted: FittedModel | None = None
    fitted_on: int = -(10**9)  # the ordinal of the date it was fitted for


class WalkForward:
    """The walk-forward learned scores, one as-of date at a time, oldest first.

    ``score(day, part)`` gives the learned score of ``day``'s customers from a model trained
    only on the dates already given (so on churns dated before ``day``; see ``_fit``), then
    keeps ``part`` to learn from on later dates: the learning cannot see a date it has not
    reached. The model is refitted every LEARNED_REFIT_DAYS (and on every date until the first
    fit succeeds); a date in between is scored by the latest model, trained on what was known
    before ITS date, earlier still: out of sample either way. ``replay`` brings a resumed run's
    stored dates back in, refitting on the same schedule, so its next date is scored as it would
    have been had the run never stopped.
    """

    def __init__(self, churns: Churns, *, horizons: list[int], min_churns: int, names: tuple[str, ...]) -> None:
        self.churns = churns
        self.horizons = list(horizons)
        self.min_churns = min_churns
        self.names = names
        self._parts: list[ScoreTable] = []
        self._table: ScoreTable | None = None
        self._schedule = {h: _Schedule() for h in self.horizons}
        # Every churn a fit before a date could learn from is dated before it (a cheap test first).
        self._churn_days = sorted(d for days in churns.values() for d in days)

    def table(self) -> ScoreTable:
        """Every date given so far as one table."""
        if self._table is None:
            self._table = ScoreTable.concatenate(self._parts, names=self.names, horizons=self.horizons)
            self._parts = [self._table] if len(self._table.rows) else []
        return self._table

    def _keep(self, part: ScoreTable) -> None:
        self._parts.append(part)
        self._table = None

    def _advance(self, day: date) -> None:
        known = bisect.bisect_left(self._churn_days, day)
        for horizon, schedule in self._schedule.items():
            if schedule.fitted is not None and day.toordinal() - schedule.fitted_on < LEARNED_REFIT_DAYS:
                continue
            if known < self.min_churns or not self._parts:
                continue  # _fit would find too few churns
            table = self.table()
            labels = churn_marks(table.rows, self.churns, horizon=horizon)
            refit = _fit(table, labels, horizon=horizon, before=day, min_churns=self.min_churns)
            if refit is not None:
                schedule.fitted, schedule.fitted_on = refit, day.toordinal()

    def score(self, day: date, part: ScoreTable) -> dict[int, np.ndarray]:
        """The learned scores of ``day``'s rows per horizon (NaN without a model yet), set on ``part``."""
        self._advance(day)
        part.learned = {
            h: s.fitted.predict(part.matrix) if s.fitted is not None else np.full(len(part.rows), np.nan)
            for h, s in self._schedule.items()
        }
        self._keep(part)
        return part.learned

    def replay(self, stored: ScoreTable) -> None:
        """A resumed run's stored dates (their learned scores stand as stored)."""
        for day in np.unique(stored.rows.day):
            self._advance(date.fromordinal(int(day)))
            self._keep(stored.subset(stored.rows.day == day))


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
