"""The learned churn model, fitted walk-forward, and the choice of the score that orders the list.

The model (scikit-learn's ``LogisticRegression``, L2, on standardised features) reads the
engine's features (customers/metrics/features.py, stored per score by the backtest) and
predicts "churned within H days of D". It is fitted walk-forward: the model scoring D is
trained only on observations whose label window closed before D (D' + H < D), so every
churn it learned from is dated before D and every figure of it is out of sample. It is
refitted every LEARNED_REFIT_DAYS; until MIN_CHURNS_FOR_TRUST churns are in a date's
training set, that date has no learned score.

The candidates are the heuristic and the logistic model at a few strengths of regularisation
(REGULARISATION_STRENGTHS), each alone and blended with the heuristic (HEURISTIC_SHARES): with a few
dozen churns and some eighty correlated features the strength that generalises best differs from one
customer base to the next (strong where churn is a steady low level, weak where a decline or a friction
spell gives it away), and a fit on few churns is noisy where the heuristic's fixed points are not, so a
share of the score can stay the heuristic's. A blend is the model's log odds and the heuristic's strength,
each over its spread on the fitted observations, weighted together; the strength is the sum of the
components' points, which are features of the model, so a blend is itself a linear model of the features
(one coefficient each) and its per-account contributions add up to its score exactly. Nothing is fixed:
every refit fits each strength (its blends cost no fit), and every date is scored by each candidate (the
track record): the model scoring D has a record of out-of-sample scores on the dates
before D, and once those dates' label windows have closed, the record is the evidence. At each
refit the candidate whose record ranks the churners best on each date's list (the AUC of the
list places, pooled) is chosen, and the model orders the list from that date when its record
beats the heuristic's list on the same observations by more than BETTER_AUC_MARGIN at the lower end
of an interval, not at its point estimate (a bootstrap of the customers: a lead of a few hundredths on
a few dozen churns is often chance), with at least MIN_CHURNS_FOR_TRUST churns behind the model. Until the record holds enough churns, the newer
part of the training dates is held out instead: a model fitted on the older part (label windows
closed before the newer part begins) scores it against the heuristic. The chosen score is
calibrated on the same out-of-sample evidence (Platt scaling: a logistic fit of the outcome on
the score), so "23% within 30 days" means what it says on the past. The record spans many fits, and
a fit on more churns spreads its log odds wider, so each fit records its candidates' scores in
standard units of their spread on its own observations, and the new fit's log odds are read through
the calibration in its own standard units (calibrated on raw log odds, the newest fit's wider
spread would read as more certainty than the record showed); the heuristic is calibrated
the same way on every training observation (it is fitted to nothing). The ranking score of a
date is the customer's place on the list by the score that ordered it, not that score's calibrated
probability: a calibration moves from one refit to the next, and pooled over dates those moves
ranked churners worse than the places do (BENCHMARKS.md).

A non-linear model (gradient boosting) was not kept: its per-account explanation would be
an approximation, and the list's reasons must be exactly what ordered it. The logistic
model's per-account contributions (coefficient x the account's distance from the average,
in standard units) add up to its score exactly.

Uncertainty: the standard errors are those of the penalised maximum likelihood (the inverse
of the penalised Fisher information at the fit, X'WX + I/C, on the standardised features),
turned into each feature's own unit; with few churns they are wide, and the words say so. A blend's
heuristic share is fixed, not estimated: its uncertainty is the fitted part's. Coefficients are given in
log odds of churn through the calibration's slope (a blend's score has no odds of its own).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from customers.metrics.churn_model import RANKED_BY_HEURISTIC, RANKED_BY_MODEL
from validation.candidates import (
    CANDIDATES,
    REGULARISATION_FALLBACK,
    candidate_scores,
    candidates_fit,
    information_matrix,
    logistic_fit,
    model_part,
    score_spreads,
)
from validation.figures import ChurnMarks, Churns, Rows, auc, auc_difference_interval, churn_marks
from validation.scaling import standardised

# scikit-learn takes seconds to import and only a fit needs it: imported where a model is fitted, so a
# web worker's first page (the Validation views import this module) does not wait for it.
if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

# The learned model orders the list only when its AUC beats the heuristic's on the same out-of-sample past
# observations by more than this at the lower end of the bootstrap interval of the lead: the percentile
# SELECTION_INTERVAL_LOW of SELECTION_BOOTSTRAP_ROUNDS resamples of the customers (seeded: a run is reproducible),
# so two resamples in three see the model ahead. A stricter end (the 25th, 10th or 2.5th percentile) kept the
# model off dates where it was better, on simulated bases of four kinds, and gained nothing on the others.
BETTER_AUC_MARGIN = 0.0
SELECTION_INTERVAL_LOW = 33.0
SELECTION_BOOTSTRAP_ROUNDS = 100
SELECTION_SEED = 11
# Before the record holds enough churns: the newer share of the training dates the candidates are judged
# (and the score calibrated) on.
SELECTION_HOLDOUT_SHARE = 0.4
Z_95 = 1.96
# Days between walk-forward refits: every other weekly date, so the first model that beats the heuristic
# on the past orders the list within two weeks (refits are cheap: FIT_MAX_ROWS).
LEARNED_REFIT_DAYS = 14
# The evidence (the record, or the older part of the training dates that fits the model judged on the newer
# part) must hold this share of MIN_CHURNS_FOR_TRUST churns (the whole set still needs them all to be adopted).
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
    # Per horizon, each candidate's out-of-sample score (one column per candidate, in CANDIDATES order; NaN
    # before the first fit): the walk-forward record of the candidates.
    track: dict[int, np.ndarray] = field(default_factory=dict)

    def column(self, name: str) -> np.ndarray:
        return self.matrix[:, self.names.index(name)]

    def matrix_release(self) -> None:
        """Let go of the feature matrix for a table read for the last time: in its place every feature reads NaN
        (one value broadcast to the matrix's shape, read-only), so no reader after it can mistake it for features."""
        self.matrix = np.broadcast_to(FEATURE_DTYPE(np.nan), self.matrix.shape)

    def tenant_id_of_rows(self) -> np.ndarray:
        return self.rows.tenant_ids[self.rows.tenant]

    def subset(self, mask: np.ndarray) -> ScoreTable:
        return ScoreTable(
            self.rows.subset(mask), self.matrix[mask], self.names, self.strength[mask],
            {h: v[mask] for h, v in self.learned.items()},
            {h: v[mask] for h, v in self.ranking.items()},
            {h: v[mask] for h, v in self.ranked_by_model.items()},
            {h: v[mask] for h, v in self.track.items()},
        )  # fmt: skip

    @classmethod
    def concatenate(cls, parts: list[ScoreTable], *, names: tuple[str, ...], horizons: list[int]) -> ScoreTable:
        if not parts:
            empty = {h: np.zeros(0) for h in horizons}
            matrix = np.zeros((0, len(names)), dtype=FEATURE_DTYPE)
            track = {h: np.zeros((0, len(CANDIDATES)), dtype=FEATURE_DTYPE) for h in horizons}
            return cls(Rows.of([], []), matrix, names, np.zeros(0), empty, dict(empty), dict(empty), track)

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
            {h: np.concatenate([p.track.get(h, no_record(len(p.rows))) for p in parts]) for h in horizons},
        )


def no_record(n: int) -> np.ndarray:
    return np.full((n, len(CANDIDATES)), np.nan, dtype=FEATURE_DTYPE)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


@dataclass(frozen=True)
class Calibration:
    """Platt scaling: P(churn) = sigmoid(slope * score + intercept), fitted on out-of-sample observations."""

    slope: float
    intercept: float

    def apply(self, scores: np.ndarray) -> np.ndarray:
        return _sigmoid(self.slope * scores + self.intercept)

    def of_log_odds(self, centre: float, spread: float) -> Calibration:
        """This calibration of standardised scores, (log odds - centre) / spread, as one of the log odds."""
        return Calibration(self.slope / spread, self.intercept - self.slope * centre / spread)


def _calibrate(scores: np.ndarray, y: np.ndarray) -> Calibration | None:
    if len(scores) < 2 or y.all() or not y.any():
        return None
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e4, max_iter=1000).fit(scores.reshape(-1, 1), y.astype(int))
    slope = float(fit.coef_[0][0])
    # A calibration that reverses the order would be no calibration at all: keep the score's own order.
    return Calibration(slope, float(fit.intercept_[0])) if slope > 0 else None


# How the candidates were judged: their walk-forward record, or the held-out newer part of the training dates.
JUDGED_ON_RECORD = "walk_forward"
JUDGED_ON_HELD_OUT = "held_out"


@dataclass
class Selection:
    """How the chosen model and the heuristic did on the evidence (see the module docstring)."""

    learned_auc: float | None
    heuristic_auc: float | None
    churns: int  # distinct churns among the observations judged on
    chosen: str  # RANKED_BY_MODEL or RANKED_BY_HEURISTIC
    judged_on: str = JUDGED_ON_HELD_OUT
    regularisation: float = REGULARISATION_FALLBACK  # the chosen strength (scikit-learn's C)
    heuristic_share: float = 0.0  # the heuristic's share of the chosen score (HEURISTIC_SHARES)
    # The model's AUC lead over the heuristic on the evidence, low and high ends (SELECTION_INTERVAL_LOW).
    lead_interval: tuple[float, float] | None = None


@dataclass
class FittedModel:
    horizon: int
    trained_on_churns: int
    observations: int
    coefficients: dict[str, float]  # per unit of the feature (log odds)
    std_errors: dict[str, float | None]  # None: the feature never varied in the training set
    scaler: StandardScaler
    model: LogisticRegression
    # Of the model's log odds, from out-of-sample observations (the record or the held-out part).
    calibration: Calibration | None = None
    heuristic_calibration: Calibration | None = None  # of the heuristic's strength
    selection: Selection | None = None
    base_rate: float = 0.0  # the share of training observations that churned within the horizon
    # Every candidate on the same observations (CANDIDATES order): the record's source, with the mean and spread
    # of each one's log odds on those observations (its record is in those standard units).
    candidates: tuple[LogisticRegression, ...] = ()
    candidate_centres: np.ndarray = field(default_factory=lambda: np.zeros(len(CANDIDATES)))
    candidate_spreads: np.ndarray = field(default_factory=lambda: np.ones(len(CANDIDATES)))

    def candidate_log_odds(self, matrix: np.ndarray) -> np.ndarray:
        """Each candidate's score in standard units of its spread on the fit's own observations, one column per
        candidate (the walk-forward record of ``matrix``'s rows): a record holds the scores of many fits, and a
        fit on more churns spreads its log odds wider, so only standardised scores calibrate together."""
        if not len(matrix) or not self.candidates:
            return no_record(len(matrix))
        raw = candidate_scores(self.candidates, self.scaler.transform(matrix))
        return ((raw - self.candidate_centres) / self.candidate_spreads).astype(FEATURE_DTYPE)

    def log_odds(self, matrix: np.ndarray) -> np.ndarray:
        if not len(matrix):
            return np.zeros(0)
        return self.model.decision_function(self.scaler.transform(matrix))

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """The churn probability within the horizon (calibrated when out-of-sample observations allowed it)."""
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


def _distinct_churns(labels: ChurnMarks, mask: np.ndarray) -> int:
    return int(np.unique(labels.churn_event[mask & labels.churned]).size)


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


def list_places(days: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each row's ``list_place`` among the rows of its own date."""
    out = np.empty(len(scores))
    order = np.argsort(days, kind="stable")
    bounds = np.flatnonzero(np.r_[True, days[order][1:] != days[order][:-1], True])
    for start, end in itertools.pairwise(bounds):
        index = order[start:end]
        out[index] = list_place(scores[index])
    return out


def _held_out_select(
    table: ScoreTable, labels: ChurnMarks, train: np.ndarray, *, horizon: int, min_churns: int
) -> tuple[Selection, Calibration | None]:
    """Before the record holds enough churns: the model fitted on the older part of the training dates
    against the heuristic on the newer part (see the module docstring), and its calibration there."""
    days = np.unique(table.rows.day[train])
    cut = int(days[min(len(days) - 1, int(len(days) * (1 - SELECTION_HOLDOUT_SHARE)))]) if len(days) else 0
    older = train & (table.rows.day + horizon < cut)
    newer = train & (table.rows.day >= cut)
    y = labels.churned
    held_out_churns = _distinct_churns(labels, newer)
    if (
        _distinct_churns(labels, older) < min_churns * SELECTION_MIN_CHURNS_SHARE
        or held_out_churns < 1
        or not (y[newer] == 0).any()
    ):
        return Selection(None, auc(table.strength[newer], y[newer]), held_out_churns, RANKED_BY_HEURISTIC), None
    index, weights = _sample(older, y, seed=cut)
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(table.matrix[index])
    x_older = scaler.transform(table.matrix[index])
    inner = logistic_fit(x_older, y[index], weights, c=REGULARISATION_FALLBACK)
    # In standard units of the inner fit's spread on its own rows, as the record is (``candidate_log_odds``).
    (centre,), (spread,) = score_spreads(candidate_scores((inner,), x_older), weights)
    del x_older
    held = (inner.decision_function(scaler.transform(table.matrix[newer])) - centre) / spread
    learned_auc = auc(held, y[newer])
    heuristic_auc = auc(table.strength[newer], y[newer])
    lead = _lead_interval(held, table.strength[newer], y[newer], table, newer) if learned_auc is not None else None
    chosen = RANKED_BY_MODEL if _beyond_chance(lead) else RANKED_BY_HEURISTIC
    selection = Selection(learned_auc, heuristic_auc, held_out_churns, chosen, lead_interval=lead)
    return selection, _calibrate(held, y[newer])


def _lead_interval(
    model: np.ndarray, heuristic: np.ndarray, y: np.ndarray, table: ScoreTable, mask: np.ndarray
) -> tuple[float, float] | None:
    """The bootstrap interval of the model's AUC lead over the heuristic on these observations (customers
    resampled); the model is better beyond chance when its lower end is above BETTER_AUC_MARGIN."""
    return auc_difference_interval(
        model, heuristic, y, table.rows.tenant[mask],
        rounds=SELECTION_BOOTSTRAP_ROUNDS, low=SELECTION_INTERVAL_LOW, seed=SELECTION_SEED,
    )  # fmt: skip


def _beyond_chance(lead: tuple[float, float] | None) -> bool:
    return lead is not None and lead[0] > BETTER_AUC_MARGIN


def _record_select(
    table: ScoreTable, labels: ChurnMarks, train: np.ndarray, *, horizon: int, min_churns: int
) -> tuple[Selection, Calibration | None] | None:
    """The candidates judged on their walk-forward record over the training observations (each scored by
    a model fitted before its date): the strength whose list places rank the churners best, against the
    heuristic's list places on the same observations; None while the record holds too few churns."""
    record = table.track.get(horizon)
    if record is None:
        return None
    judged = train & ~np.isnan(record[:, 0])
    churns = _distinct_churns(labels, judged)
    y = labels.churned[judged]
    if churns < min_churns * SELECTION_MIN_CHURNS_SHARE or y.all() or not y.any():
        return None
    days = table.rows.day[judged]
    heuristic_places = list_places(days, table.strength[judged])
    heuristic_auc = auc(heuristic_places, y)
    places = [list_places(days, record[judged, k].astype(float)) for k in range(record.shape[1])]
    aucs = [auc(p, y) or 0.0 for p in places]
    best = int(np.argmax(aucs))  # the first (strongest shrinkage) on a tie
    lead = _lead_interval(places[best], heuristic_places, y, table, judged) if heuristic_auc is not None else None
    selection = Selection(
        aucs[best], heuristic_auc, churns, RANKED_BY_MODEL if _beyond_chance(lead) else RANKED_BY_HEURISTIC,
        JUDGED_ON_RECORD, regularisation=CANDIDATES[best][0], heuristic_share=CANDIDATES[best][1], lead_interval=lead,
    )  # fmt: skip
    return selection, _calibrate(record[judged, best].astype(float), y)


# The fits' linear algebra runs on one thread: BLAS threads wait for each other by spinning, and on a
# server whose cores PostgreSQL and the workers share, two of them made every fit many times slower.
FIT_THREADS = 1


def labelled_fit(
    table: ScoreTable,
    labels: ChurnMarks,
    *,
    horizon: int,
    before: date,
    min_churns: int,
    last_reader: bool = False,
) -> FittedModel | None:
    """The model trained on the observations whose label windows closed before ``before`` (see the module
    docstring); None with fewer than ``min_churns`` churns among them. ``last_reader``: nothing reads the table's
    features after this fit, which lets them go (``ScoreTable.matrix_release``) once its sampled rows are copied."""
    with threadpool_limits(limits=FIT_THREADS):
        return _labelled_fit(
            table, labels, horizon=horizon, before=before, min_churns=min_churns, last_reader=last_reader
        )


def _labelled_fit(
    table: ScoreTable, labels: ChurnMarks, *, horizon: int, before: date, min_churns: int, last_reader: bool = False
) -> FittedModel | None:
    # Observations whose H-day label window closed before ``before``: every churn they learn from is dated
    # before it. Customers already lost on their date are not observations.
    mask = (table.rows.day + horizon < before.toordinal()) & labels.alive
    y_all = labels.churned
    churn_count = _distinct_churns(labels, mask)
    y = y_all[mask]
    if churn_count < min_churns or y.all() or not y.any():
        return None
    judged = _record_select(table, labels, mask, horizon=horizon, min_churns=min_churns)
    selection, calibration = judged or _held_out_select(table, labels, mask, horizon=horizon, min_churns=min_churns)
    index, weights = _sample(mask, y_all, seed=before.toordinal())
    if last_reader:
        # The sampled rows are this fit's own copy, standardised where they are: the table's features are gone first.
        x = table.matrix[index]
        table.matrix_release()
        scaler, x = standardised(x, in_place=True)
    else:
        # Standardised from the table block by block: the sampled rows are copied once, standardised.
        scaler, x = standardised(table.matrix, index)
    candidates, fits, spreads = candidates_fit(x, y_all[index], weights, scaler, table.names)
    chosen = CANDIDATES.index((selection.regularisation, selection.heuristic_share))
    model = candidates[chosen]
    centres, candidate_spreads = score_spreads(candidate_scores(candidates, x), weights)
    # The evidence calibrated standardised scores (the record's units): the chosen model's log odds are read through it.
    if calibration is not None:
        calibration = calibration.of_log_odds(float(centres[chosen]), float(candidate_spreads[chosen]))
    # The uncertainty is the fitted part's (the heuristic's share is fixed, not estimated), in the blend's units.
    fitted = fits[selection.regularisation]
    part = (
        model_part(fitted, x, share=selection.heuristic_share, spread=spreads[selection.regularisation])
        if model is not fitted
        else 1.0
    )
    p = fitted.predict_proba(x)[:, 1]
    information = information_matrix(x, weights * p * (1 - p), regularisation=selection.regularisation)
    del x
    covariance = np.linalg.pinv(information)
    varied = scaler.scale_ > 0
    scale = np.where(varied, scaler.scale_, 1.0)
    # In log odds of churn: the score's units times the calibration's slope (the score of a blend has no odds of its own).
    slope = calibration.slope if calibration is not None else 1.0
    coefficients = {name: float(model.coef_[0][i] * slope / scale[i]) for i, name in enumerate(table.names)}
    # A feature that never varied carries no information: its coefficient is 0 and has no error.
    std_errors: dict[str, float | None] = {
        name: float(math.sqrt(max(covariance[i + 1, i + 1], 0.0)) * part * slope / scale[i]) if varied[i] else None
        for i, name in enumerate(table.names)
    }
    heuristic_calibration = _calibrate(table.strength[mask], y)
    return FittedModel(
        horizon, churn_count, int(mask.sum()), coefficients, std_errors, scaler, model,
        calibration, heuristic_calibration, selection, float(y.mean()), candidates, centres, candidate_spreads,
    )  # fmt: skip


def model_fit(
    table: ScoreTable, churns: Churns, *, horizon: int, before: date, min_churns: int, last_reader: bool = False
) -> FittedModel | None:
    """The model trained on what was known before ``before``; None with fewer than ``min_churns`` churns.
    ``last_reader``: see ``labelled_fit``."""
    labels = churn_marks(table.rows, churns, horizon=horizon)
    return labelled_fit(table, labels, horizon=horizon, before=before, min_churns=min_churns, last_reader=last_reader)


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
