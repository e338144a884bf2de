"""The learned churn model, fitted walk-forward, and the choice of the score that orders the list.

The model (scikit-learn's ``LogisticRegression``, L2, on standardised features) reads the
engine's features (customers/metrics/features.py, stored per score by the backtest) and
predicts "churned within H days of D". It is fitted walk-forward: the model scoring D is
trained only on observations whose label window closed before D (D' + H < D), so every
churn it learned from is dated before D and every figure of it is out of sample. It is
refitted every LEARNED_REFIT_DAYS; until MIN_CHURNS_FOR_TRUST churns are in a date's
training set, that date has no learned score.

At each refit the candidates are judged walk-forward on the past alone: a model fitted on
the older part of the training dates (label windows closed before the newer part begins)
scores the newer part, where its AUC is compared with the heuristic's on the same
observations. The learned model orders the list from that date when it beats the heuristic
by BETTER_AUC_MARGIN with at least MIN_CHURNS_FOR_TRUST churns behind it; otherwise the
heuristic does. The chosen score is calibrated on the same held-out part (Platt scaling:
a logistic fit of the outcome on the score), so "23% within 30 days" means what it says on
the past; the heuristic is calibrated the same way on every training observation (it is
fitted to nothing). The ranking score of a date is the chosen score's calibrated
probability, or the heuristic's strength / 100 before any churn can calibrate it.

A non-linear model (gradient boosting) was not kept: its per-account explanation would be
an approximation, and the list's reasons must be exactly what ordered it. The logistic
model's per-account contributions (coefficient x the account's distance from the average,
in standard units) add up to its score exactly.

Uncertainty: the standard errors are those of the penalised maximum likelihood (the inverse
of the penalised Fisher information at the fit, X'WX + I/C, on the standardised features),
turned into each feature's own unit; with few churns they are wide, and the words say so.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from customers.metrics.churn_model import RANKED_BY_HEURISTIC, RANKED_BY_MODEL
from validation.engine import risk_components
from validation.features import feature_words
from validation.figures import ChurnMarks, Churns, Rows, auc, churn_marks

# The inverse regularisation strength of the fit (scikit-learn's C): with some eighty correlated features and
# a few dozen churns, strong shrinkage generalises best out of sample (tried on the simulated bases of
# tests/validation/simulation.py; BENCHMARKS.md has the figures).
REGULARISATION_C = 0.02
# The learned model orders the list only when its AUC beats the heuristic's on the same held-out past
# observations by more than this.
BETTER_AUC_MARGIN = 0.02
# The newer share of the training dates the candidates are judged (and the score calibrated) on.
SELECTION_HOLDOUT_SHARE = 0.4
Z_95 = 1.96
# Days between walk-forward refits: every other weekly date, so the first model that beats the heuristic
# on the past orders the list within two weeks (refits are cheap: FIT_MAX_ROWS).
LEARNED_REFIT_DAYS = 14
# The older part of the training dates must hold this share of MIN_CHURNS_FOR_TRUST churns to fit the
# model that is judged on the newer part (the whole set still needs them all to be adopted).
SELECTION_MIN_CHURNS_SHARE = 0.5
# At most this many observations per fit: every churned one, and the others sampled (seeded) and
# weighted back up, so a 10,000-customer backtest fits in seconds and its probabilities stay calibrated.
FIT_MAX_ROWS = 60_000
# The feature matrix's type: single precision halves a 10,000-customer run's largest array (some eighty
# features per score), and the features are counts, logs and shares that need no more digits.
FEATURE_DTYPE = np.float32


@dataclass
class ScoreTable:
    """A run's stored scores as arrays, one row per score in (as_of, tenant) order: a
    10,000-customer, 26-date backtest is a 260,000 x ~80 float matrix, not 260,000 dicts."""

    rows: Rows  # the as-of date and customer of each row
    matrix: np.ndarray  # the features (validation/features.py), one column per name
    names: tuple[str, ...]  # the feature of each column
    strength: np.ndarray  # the heuristic: risk_signal_strength
    learned: dict[int, np.ndarray]  # the walk-forward learned probability per horizon; NaN where none
    # The score that ordered the list on the row's date, per horizon, and whether the model (1) or the heuristic (0) did.
    ranking: dict[int, np.ndarray] = field(default_factory=dict)
    ranked_by_model: dict[int, np.ndarray] = field(default_factory=dict)

    def column(self, name: str) -> np.ndarray:
        return self.matrix[:, self.names.index(name)]

    def tenant_id_of_rows(self) -> np.ndarray:
        return self.rows.tenant_ids[self.rows.tenant]

    def subset(self, mask: np.ndarray) -> ScoreTable:
        return ScoreTable(
            self.rows.subset(mask), self.matrix[mask], self.names, self.strength[mask],
            {h: v[mask] for h, v in self.learned.items()},
            {h: v[mask] for h, v in self.ranking.items()},
            {h: v[mask] for h, v in self.ranked_by_model.items()},
        )  # fmt: skip

    @classmethod
    def concatenate(cls, parts: list[ScoreTable], *, names: tuple[str, ...], horizons: list[int]) -> ScoreTable:
        if not parts:
            empty = {h: np.zeros(0) for h in horizons}
            matrix = np.zeros((0, len(names)), dtype=FEATURE_DTYPE)
            return cls(Rows.of([], []), matrix, names, np.zeros(0), empty, dict(empty), dict(empty))

        def joined(attr: str) -> dict[int, np.ndarray]:
            return {h: np.concatenate([getattr(p, attr).get(h, np.full(len(p.rows), np.nan)) for p in parts])
                    for h in horizons}  # fmt: skip

        return cls(
            Rows.of(
                np.concatenate([p.rows.day for p in parts]), np.concatenate([p.tenant_id_of_rows() for p in parts])
            ),
            np.concatenate([p.matrix for p in parts]),
            names,
            np.concatenate([p.strength for p in parts]),
            joined("learned"),
            joined("ranking"),
            joined("ranked_by_model"),
        )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


@dataclass(frozen=True)
class Calibration:
    """Platt scaling: P(churn) = sigmoid(slope * score + intercept), fitted on held-out observations."""

    slope: float
    intercept: float

    def apply(self, scores: np.ndarray) -> np.ndarray:
        return _sigmoid(self.slope * scores + self.intercept)


def _calibrate(scores: np.ndarray, y: np.ndarray) -> Calibration | None:
    if len(scores) < 2 or y.all() or not y.any():
        return None
    fit = LogisticRegression(C=1e4, max_iter=1000).fit(scores.reshape(-1, 1), y.astype(int))
    slope = float(fit.coef_[0][0])
    # A calibration that reverses the order would be no calibration at all: keep the score's own order.
    return Calibration(slope, float(fit.intercept_[0])) if slope > 0 else None


@dataclass
class Selection:
    """How the candidates did on the held-out newer part of the training dates."""

    learned_auc: float | None
    heuristic_auc: float | None
    churns: int  # distinct churns among the held-out observations
    chosen: str  # RANKED_BY_MODEL or RANKED_BY_HEURISTIC


@dataclass
class FittedModel:
    horizon: int
    trained_on_churns: int
    observations: int
    coefficients: dict[str, float]  # per unit of the feature (log odds)
    std_errors: dict[str, float | None]  # None: the feature never varied in the training set
    scaler: StandardScaler
    model: LogisticRegression
    calibration: Calibration | None = None  # of the model's log odds, from held-out observations
    heuristic_calibration: Calibration | None = None  # of the heuristic's strength
    selection: Selection | None = None
    base_rate: float = 0.0  # the share of training observations that churned within the horizon

    def log_odds(self, matrix: np.ndarray) -> np.ndarray:
        if not len(matrix):
            return np.zeros(0)
        return self.model.decision_function(self.scaler.transform(matrix))

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """The churn probability within the horizon (calibrated when held-out observations allowed it)."""
        raw = self.log_odds(matrix)
        return self.calibration.apply(raw) if self.calibration is not None else _sigmoid(raw)


def _sample(mask: np.ndarray, y_all: np.ndarray, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices to fit on (every churned one, a seeded sample of the rest) and their weights."""
    index = np.flatnonzero(mask)
    if len(index) <= FIT_MAX_ROWS:
        return index, np.ones(len(index))
    positives = index[y_all[index]]
    negatives = index[~y_all[index]]
    keep = max(FIT_MAX_ROWS - len(positives), 1)
    chosen = np.random.default_rng(seed).choice(negatives, size=min(keep, len(negatives)), replace=False)
    weights = np.r_[np.ones(len(positives)), np.full(len(chosen), len(negatives) / len(chosen))]
    return np.r_[positives, chosen], weights


def _logistic(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> LogisticRegression:
    return LogisticRegression(C=REGULARISATION_C, max_iter=3000).fit(x, y.astype(int), sample_weight=weights)


def _distinct_churns(labels: ChurnMarks, mask: np.ndarray) -> int:
    return int(np.unique(labels.churn_event[mask & labels.churned]).size)


def _select(
    table: ScoreTable, labels: ChurnMarks, train: np.ndarray, *, horizon: int, min_churns: int
) -> tuple[Selection, Calibration | None, Calibration | None]:
    """Judge the model against the heuristic walk-forward inside the training dates (see the module docstring):
    the selection, the model's calibration and the heuristic's, both from the held-out part."""
    days = np.unique(table.rows.day[train])
    cut = int(days[min(len(days) - 1, int(len(days) * (1 - SELECTION_HOLDOUT_SHARE)))]) if len(days) else 0
    older = train & (table.rows.day + horizon < cut)
    newer = train & (table.rows.day >= cut)
    y = labels.churned
    heuristic_cal = _calibrate(table.strength[train], y[train])
    held_out_churns = _distinct_churns(labels, newer)
    if (
        _distinct_churns(labels, older) < min_churns * SELECTION_MIN_CHURNS_SHARE
        or held_out_churns < 1
        or not (y[newer] == 0).any()
    ):
        return (
            Selection(None, auc(table.strength[newer], y[newer]), held_out_churns, RANKED_BY_HEURISTIC),
            None,
            heuristic_cal,
        )
    index, weights = _sample(older, y, seed=cut)
    scaler = StandardScaler().fit(table.matrix[index])
    inner = _logistic(scaler.transform(table.matrix[index]), y[index], weights)
    held = inner.decision_function(scaler.transform(table.matrix[newer]))
    learned_auc = auc(held, y[newer])
    heuristic_auc = auc(table.strength[newer], y[newer])
    better = (
        learned_auc is not None
        and heuristic_auc is not None
        and learned_auc - heuristic_auc > BETTER_AUC_MARGIN
        and _distinct_churns(labels, train) >= min_churns
    )
    selection = Selection(learned_auc, heuristic_auc, held_out_churns,
                          RANKED_BY_MODEL if better else RANKED_BY_HEURISTIC)  # fmt: skip
    return selection, _calibrate(held, y[newer]), heuristic_cal


def _fit(table: ScoreTable, labels: ChurnMarks, *, horizon: int, before: date, min_churns: int) -> FittedModel | None:
    # Observations whose H-day label window closed before ``before``: every churn they learn from is dated
    # before it. Customers already lost on their date are not observations.
    mask = (table.rows.day + horizon < before.toordinal()) & labels.alive
    y_all = labels.churned
    churn_count = _distinct_churns(labels, mask)
    y = y_all[mask]
    if churn_count < min_churns or y.all() or not y.any():
        return None
    index, weights = _sample(mask, y_all, seed=before.toordinal())
    raw = table.matrix[index]
    scaler = StandardScaler().fit(raw)
    x = scaler.transform(raw)
    model = _logistic(x, y_all[index], weights)
    p = model.predict_proba(x)[:, 1]
    design = np.hstack([np.ones((len(x), 1)), x])
    # The penalised Fisher information (weighted as the fit was); the intercept is not penalised.
    penalty = np.eye(design.shape[1]) / REGULARISATION_C
    penalty[0, 0] = 0.0
    information = design.T @ (design * (weights * p * (1 - p))[:, None]) + penalty
    covariance = np.linalg.pinv(information)
    varied = scaler.scale_ > 0
    scale = np.where(varied, scaler.scale_, 1.0)
    coefficients = {name: float(model.coef_[0][i] / scale[i]) for i, name in enumerate(table.names)}
    # A feature that never varied carries no information: its coefficient is 0 and has no error.
    std_errors: dict[str, float | None] = {
        name: float(math.sqrt(max(covariance[i + 1, i + 1], 0.0)) / scale[i]) if varied[i] else None
        for i, name in enumerate(table.names)
    }
    selection, calibration, heuristic_calibration = _select(table, labels, mask, horizon=horizon, min_churns=min_churns)
    return FittedModel(
        horizon, churn_count, int(mask.sum()), coefficients, std_errors, scaler, model,
        calibration, heuristic_calibration, selection, float(y.mean()),
    )  # fmt: skip


def model_fit(table: ScoreTable, churns: Churns, *, horizon: int, before: date, min_churns: int) -> FittedModel | None:
    """The model trained on what was known before ``before``; None with fewer than ``min_churns`` churns."""
    labels = churn_marks(table.rows, churns, horizon=horizon)
    return _fit(table, labels, horizon=horizon, before=before, min_churns=min_churns)


def list_place(scores: np.ndarray) -> np.ndarray:
    """Each customer's place on one date's list ordered by ``scores``: 1 at the top, 0 at the bottom, ties
    sharing their mean place. Scores ordered by different scores on different dates compare this way."""
    n = len(scores)
    if n <= 1:
        return np.ones(n)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + ends - 1) / 2)[inverse.reshape(-1)]  # 0-based mean rank of each tie group
    return ranks / (n - 1)


def ranking_scores(fitted: FittedModel | None, part: ScoreTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(learned probability or NaN, the ranking score, 1 where the model ordered) of one date's rows.

    The ranking score is the customer's place on the date's list (``list_place``) by the score that
    ordered it: the model's probability once it was chosen, the heuristic's strength before."""
    n = len(part.rows)
    if fitted is None:
        return np.full(n, np.nan), list_place(part.strength), np.zeros(n)
    learned = fitted.predict(part.matrix)
    if fitted.selection is not None and fitted.selection.chosen == RANKED_BY_MODEL:
        return learned, list_place(learned), np.ones(n)
    return learned, list_place(part.strength), np.zeros(n)


@dataclass
class _Schedule:
    fitted: FittedModel | None = None
    fitted_on: int = -(10**9)  # the ordinal of the date it was fitted for


class WalkForward:
    """The walk-forward learned and ranking scores, one as-of date at a time, oldest first.

    ``score(day, part)`` gives the scores of ``day``'s customers from a model trained only on
    the dates already given (so on churns dated before ``day``; see ``_fit``), then keeps
    ``part`` to learn from on later dates: the learning cannot see a date it has not reached.
    The model is refitted every LEARNED_REFIT_DAYS (and on every date until the first fit
    succeeds); a date in between is scored by the latest model, trained on what was known
    before ITS date, earlier still: out of sample either way. ``replay`` brings a resumed run's
    stored dates back in, refitting on the same schedule, so its next date is scored as it
    would have been had the run never stopped.
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

    def score(self, day: date, part: ScoreTable) -> ScoreTable:
        """``day``'s learned and ranking scores per horizon, set on ``part`` (returned)."""
        self._advance(day)
        for h, s in self._schedule.items():
            part.learned[h], part.ranking[h], part.ranked_by_model[h] = ranking_scores(s.fitted, part)
        self._keep(part)
        return part

    def replay(self, stored: ScoreTable) -> None:
        """A resumed run's stored dates (their scores stand as stored)."""
        for day in np.unique(stored.rows.day):
            self._advance(date.fromordinal(int(day)))
            self._keep(stored.subset(stored.rows.day == day))


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
