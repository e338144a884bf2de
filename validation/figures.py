"""What the backtest's scores say about the future: pure functions, no database.

Definitions (per horizon H, over the stored scores):

* **Evaluable observation**: a customer's score on an as-of date D with
  D + H <= ``observed_through`` (every churn that could label it has had time to
  be recorded), of a customer alive on D (no churn dated on or before D).
* **Label**: the customer churned within H days of D (a churn dated in (D, D + H]).
* **AUC**: the probability that a churner's score beats a non-churner's (ties count
  half), pooled over every evaluable observation; None without both kinds.
* **Top-decile lift**: on each date the top 10% by score, rounded up (so at least one
  customer; ties broken by tenant id); their churn rate, pooled over dates, over the base rate.
* **Precision and recall at the threshold**: flagged means a score at or above the
  at-risk threshold. **Precision at 10**: the ten highest scores of each date, pooled.
* **Lead time**: for each churn with at least one scored as-of date in the H days
  before it (these need no waiting: the churn is already recorded), the days from the FIRST such date on which the customer was flagged to the
  churn; a churn never flagged there is a blind spot. Median and quartiles
  (inclusive method), None when no churn was flagged.

A run of 10,000 customers over 26 dates holds 260,000 observations, so every figure is
computed on arrays (``Rows`` and a score per row): ranks for the AUC, one sort for the
per-date ranking, binary search for the labels. ``Scored`` and the functions taking a
sequence of it are the same computations for a handful of hand-made observations.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

DECILES = 10  # the top decile is the top 1/DECILES of a date, rounded up
TOP_N = 10
# A churn's key is tenant code * KEY_SPAN + the day's ordinal: KEY_SPAN exceeds every date's
# ordinal plus a horizon (date.max is 3,652,059), so keys sort by tenant, then day.
KEY_SPAN = 1 << 22


@dataclass(frozen=True, slots=True)
class Scored:
    """One customer's score on one as-of date (heuristic, a component's points, or learned)."""

    as_of: date
    tenant_id: str
    score: float


Churns = dict[str, list[date]]


@dataclass(frozen=True)
class Rows:
    """Observations as arrays: row i is customer ``tenant_ids[tenant[i]]`` on the as-of date
    whose ordinal is ``day[i]``. ``tenant_ids`` is sorted, so code order is tenant-id order."""

    day: np.ndarray  # int64 date ordinals
    tenant: np.ndarray  # int64 codes into tenant_ids
    tenant_ids: np.ndarray  # str, sorted, distinct

    @classmethod
    def of(cls, as_of: Sequence[date] | np.ndarray, tenant_ids: Sequence[str] | np.ndarray) -> Rows:
        days = np.asarray(
            [d.toordinal() for d in as_of] if not isinstance(as_of, np.ndarray) else as_of, dtype=np.int64
        )
        names, codes = np.unique(np.asarray(tenant_ids, dtype=str), return_inverse=True)
        return cls(days, codes.astype(np.int64).reshape(-1), names)

    def __len__(self) -> int:
        return len(self.day)

    def subset(self, mask: np.ndarray) -> Rows:
        return Rows(self.day[mask], self.tenant[mask], self.tenant_ids)

    def as_of(self, i: int) -> date:
        return date.fromordinal(int(self.day[i]))


def scored_columns(scored: Sequence[Scored]) -> tuple[Rows, np.ndarray]:
    """A sequence of ``Scored`` as rows and their scores."""
    rows = Rows.of([s.as_of for s in scored], [s.tenant_id for s in scored])
    return rows, np.asarray([s.score for s in scored], dtype=float)


@dataclass(frozen=True)
class ChurnMarks:
    """Per row, against the recorded churns and one horizon."""

    alive: np.ndarray  # bool: no churn dated on or before the row's date
    churned: np.ndarray  # bool: alive, and a churn dated in (D, D + H]
    churn_event: np.ndarray  # int64: which churn (an index into the sorted churns), -1 when none


def _churn_keys(rows: Rows, churns: Churns) -> np.ndarray:
    """The churns of the rows' customers as sorted keys (see KEY_SPAN); others cannot label a row."""
    codes = np.searchsorted(rows.tenant_ids, list(churns)) if churns else np.zeros(0, dtype=np.int64)
    keys = [
        int(code) * KEY_SPAN + day.toordinal()
        for code, (tenant_id, days) in zip(codes, churns.items(), strict=True)
        if code < len(rows.tenant_ids) and rows.tenant_ids[code] == tenant_id
        for day in days
    ]
    return np.unique(np.asarray(keys, dtype=np.int64))


def churn_marks(rows: Rows, churns: Churns, *, horizon: int) -> ChurnMarks:
    """Alive and labelled, by binary search of each row's (customer, date) among the churns."""
    keys = _churn_keys(rows, churns)
    row_keys = rows.tenant * KEY_SPAN + rows.day
    if not len(keys):
        alive = np.ones(len(rows), dtype=bool)
        return ChurnMarks(alive, ~alive, np.full(len(rows), -1, dtype=np.int64))
    after = np.searchsorted(keys, row_keys, side="right")  # the first churn dated after the row's (customer, day)
    previous = keys[np.maximum(after - 1, 0)]
    alive = ~((after > 0) & (previous >= rows.tenant * KEY_SPAN))  # the churn before it is this customer's
    upcoming = keys[np.minimum(after, len(keys) - 1)]
    churned = alive & (after < len(keys)) & (upcoming <= row_keys + horizon)
    return ChurnMarks(alive, churned, np.where(churned, after, -1))


def evaluable_labels(rows: Rows, churns: Churns, *, horizon: int, observed_through: date) -> np.ndarray:
    """Per row: 1 churned within H days, 0 did not, -1 not evaluable (see the module docstring)."""
    marks = churn_marks(rows, churns, horizon=horizon)
    evaluable = marks.alive & (rows.day + horizon <= observed_through.toordinal())
    return np.where(evaluable, marks.churned.astype(np.int8), np.int8(-1))


def _auc(scores: np.ndarray, truth: np.ndarray) -> float | None:
    """Mann-Whitney AUC from average ranks (ties share their mean rank)."""
    positives = int(truth.sum())
    negatives = len(truth) - positives
    if not positives or not negatives:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2)[inverse.reshape(-1)]  # the average 1-based rank of each tie group
    return float((ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def auc(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray) -> float | None:
    """The AUC of scores against boolean labels; None without positives and negatives."""
    return _auc(np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool))


def quartiles(values: Sequence[float]) -> dict[str, float | None]:
    if not len(values):
        return {"median": None, "p25": None, "p75": None}
    if len(values) == 1:
        return {"median": float(values[0]), "p25": float(values[0]), "p75": float(values[0])}
    p25, median, p75 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": float(median), "p25": float(p25), "p75": float(p75)}


def labelled(
    scored: Sequence[Scored], churns: Churns, *, horizon: int, observed_through: date
) -> list[tuple[Scored, bool]]:
    """The evaluable observations of a sequence and their labels (see the module docstring)."""
    rows, _ = scored_columns(scored)
    marks = evaluable_labels(rows, churns, horizon=horizon, observed_through=observed_through)
    return [(s, bool(mark)) for s, mark in zip(scored, marks, strict=True) if mark >= 0]


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def day_ranks(rows: Rows, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: its 0-based rank on its date (highest score first, ties by tenant id) and the
    number of rows of that date."""
    order = np.lexsort((rows.tenant, -scores, rows.day))  # the last key sorts first
    days = rows.day[order]
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]]) if len(days) else np.zeros(0, dtype=np.int64)
    sizes = np.diff(np.r_[starts, len(days)])
    group = np.repeat(np.arange(len(starts)), sizes)
    rank = np.empty(len(days), dtype=np.int64)
    size = np.empty(len(days), dtype=np.int64)
    rank[order] = np.arange(len(days)) - starts[group]
    size[order] = sizes[group]
    return rank, size


def lead_times(
    rows: Rows, scores: np.ndarray, churns: Churns, *, horizon: int, threshold: float
) -> tuple[list[int], list[tuple[str, date]]]:
    """(lead times of the flagged churns, the churns never flagged): see the module docstring.

    One binary search per churn into the rows sorted by (customer, date): a run has hundreds
    of churns, not hundreds of thousands.
    """
    order = np.lexsort((rows.day, rows.tenant))
    keys = (rows.tenant * KEY_SPAN + rows.day)[order]
    leads: list[int] = []
    blind: list[tuple[str, date]] = []
    for tenant_id, days in sorted(churns.items()):
        code = int(np.searchsorted(rows.tenant_ids, tenant_id))
        if code >= len(rows.tenant_ids) or rows.tenant_ids[code] != tenant_id:
            continue  # never scored: no as-of date fell before this churn
        for churn_day in sorted(days):
            churn = code * KEY_SPAN + churn_day.toordinal()
            window = order[np.searchsorted(keys, churn - horizon) : np.searchsorted(keys, churn)]
            if not len(window):
                continue  # no as-of date of the backtest fell in the H days before this churn
            flagged = window[scores[window] >= threshold]  # in date order
            if len(flagged):
                leads.append(churn_day.toordinal() - int(rows.day[flagged[0]]))
            else:
                blind.append((tenant_id, churn_day))
    return leads, blind


def lead_days(
    scored: Sequence[Scored], churns: Churns, *, horizon: int, threshold: float
) -> tuple[list[int], list[tuple[str, date]]]:
    """``lead_times`` of a sequence of observations."""
    rows, scores = scored_columns(scored)
    return lead_times(rows, scores, churns, horizon=horizon, threshold=threshold)


def figures_of(
    rows: Rows, scores: np.ndarray, churns: Churns, *, horizon: int, threshold: float, observed_through: date
) -> dict[str, Any]:
    """AUC, lift, precision and recall, lead time of one score per row over the evaluable rows."""
    marks = evaluable_labels(rows, churns, horizon=horizon, observed_through=observed_through)
    evaluable = marks >= 0
    kept, score, truth = rows.subset(evaluable), scores[evaluable], marks[evaluable] == 1
    positives = int(truth.sum())
    rank, size = day_ranks(kept, score)
    top = rank < -(-size // DECILES)  # the top 10% of its date, rounded up: at least one
    ten = rank < TOP_N
    flagged = score >= threshold
    true_flags = int((flagged & truth).sum())
    leads, _ = lead_times(rows, scores, churns, horizon=horizon, threshold=threshold)
    return {
        "auc": _auc(score, truth),
        "top_decile_lift": _ratio(_rate(int(truth[top].sum()), int(top.sum())), _rate(positives, len(truth))),
        "precision_at_threshold": _rate(true_flags, int(flagged.sum())),
        "recall_at_threshold": _rate(true_flags, positives),
        "precision_at_10": _rate(int(truth[ten].sum()), int(ten.sum())),
        "lead_days": quartiles(leads),
        "observations": len(truth),
        "churned_within_horizon": positives,
        "as_of_dates": int(np.unique(kept.day).size),
    }


def ranking_figures(
    scored: Sequence[Scored], churns: Churns, *, horizon: int, threshold: float, observed_through: date
) -> dict[str, Any]:
    """``figures_of`` a sequence of observations."""
    rows, scores = scored_columns(scored)
    return figures_of(rows, scores, churns, horizon=horizon, threshold=threshold, observed_through=observed_through)


def matching_threshold(scores: Sequence[float] | np.ndarray, *, flags: int) -> float:
    """The score above which ``flags`` observations lie: compares another score with the
    heuristic at the same number of customers flagged (infinite when none may be)."""
    values = np.asarray(scores, dtype=float)
    if flags <= 0 or not len(values):
        return float("inf")
    k = min(flags, len(values))
    return float(np.partition(values, len(values) - k)[len(values) - k])  # the k-th highest


def lift_by_decile(
    rows: Rows, scores: np.ndarray, churns: Churns, *, horizon: int, observed_through: date
) -> list[float | None]:
    """The lift chart: each score decile's churn rate over the base rate (decile 1 = highest scores),
    deciles taken per date and pooled."""
    marks = evaluable_labels(rows, churns, horizon=horizon, observed_through=observed_through)
    evaluable = marks >= 0
    truth = marks[evaluable] == 1
    rank, size = day_ranks(rows.subset(evaluable), scores[evaluable])
    decile = rank * DECILES // np.maximum(size, 1)
    totals = np.bincount(decile, minlength=DECILES)
    hits = np.bincount(decile, weights=truth, minlength=DECILES)
    base = _rate(int(truth.sum()), len(truth))
    return [_ratio(_rate(int(h), int(t)), base) for h, t in zip(hits, totals, strict=True)]


# Resamples of the AUC's bootstrap interval (fewer on very large runs: the interval is narrow there anyway).
BOOTSTRAP_ROUNDS = 200
BOOTSTRAP_ROUNDS_LARGE = 60
BOOTSTRAP_LARGE_ROWS = 100_000


class _ResampledAuc:
    """``_auc`` of resamples of one score's rows, a resample given as how many times each row was drawn, in
    O(rows) each: the scores are sorted into tie groups once, and a resample only counts its draws per group.
    A group's rank is the same half-integer ``_auc`` gives it among the drawn rows, and sums of half-integers
    of this size are exact in floating point, so each value is bit for bit ``_auc`` of the drawn rows."""

    def __init__(self, scores: np.ndarray, truth: np.ndarray) -> None:
        _, group = np.unique(scores, return_inverse=True)
        self.group = group.reshape(-1)
        self.groups = int(self.group.max()) + 1 if len(self.group) else 0
        self.truth = truth

    def __call__(self, draws: np.ndarray) -> float | None:
        counts = np.bincount(self.group, weights=draws, minlength=self.groups)
        drawn_positives = np.bincount(self.group, weights=draws * self.truth, minlength=self.groups)
        positives = drawn_positives.sum()
        negatives = counts.sum() - positives
        if not positives or not negatives:
            return None
        ends = np.cumsum(counts)
        ranks = (ends - counts + 1 + ends) / 2  # the average 1-based rank of each tie group among the drawn rows
        return float(((drawn_positives * ranks).sum() - positives * (positives + 1) / 2) / (positives * negatives))


def auc_interval(
    rows: Rows, scores: np.ndarray, churns: Churns, *, horizon: int, observed_through: date, seed: int = 7
) -> list[float] | None:
    """The AUC's 95% bootstrap interval [low, high]: customers resampled with replacement (each with all
    of its dates, since one customer's dates are not independent), the AUC of each resample, its 2.5th and
    97.5th percentiles. Seeded, so a report is reproducible. None without churners and non-churners."""
    marks = evaluable_labels(rows, churns, horizon=horizon, observed_through=observed_through)
    evaluable = marks >= 0
    tenant, score, truth = rows.tenant[evaluable], scores[evaluable], marks[evaluable] == 1
    if not truth.any() or truth.all():
        return None
    codes, customer = np.unique(tenant, return_inverse=True)
    customer = customer.reshape(-1)
    resampled = _ResampledAuc(score, truth)
    rounds = BOOTSTRAP_ROUNDS if len(score) <= BOOTSTRAP_LARGE_ROWS else BOOTSTRAP_ROUNDS_LARGE
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        picked = rng.integers(0, len(codes), size=len(codes))
        # Each row drawn as often as its customer was picked.
        value = resampled(np.bincount(picked, minlength=len(codes))[customer].astype(float))
        if value is not None:
            values.append(value)
    if not values:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]


def shuffled_within_dates(rows: Rows, scores: np.ndarray, *, seed: int) -> np.ndarray:
    """The same scores dealt out at random among each date's customers: what chance would rank."""
    rng = np.random.default_rng(seed)
    out = scores.copy()
    for day in np.unique(rows.day):
        index = np.flatnonzero(rows.day == day)
        out[index] = scores[rng.permutation(index)]
    return out


class _WeightedAuc:
    """The AUC of one score under any weights of its rows, in O(rows) per weighting: the scores are sorted
    and grouped into ties once, and a weighting only sums weights per tie group (a bootstrap's rounds)."""

    def __init__(self, scores: np.ndarray, truth: np.ndarray) -> None:
        _, self.group = np.unique(scores, return_inverse=True)
        self.group = self.group.reshape(-1)
        self.groups = int(self.group.max()) + 1 if len(self.group) else 0
        self.truth = truth

    def __call__(self, weights: np.ndarray) -> float | None:
        pos = np.bincount(self.group, weights=weights * self.truth, minlength=self.groups)
        neg = np.bincount(self.group, weights=weights * ~self.truth, minlength=self.groups)
        total = pos.sum() * neg.sum()
        if total <= 0:
            return None
        below = np.cumsum(neg) - neg  # the negatives' weight strictly below each tie group; ties count half
        return float((pos * (below + neg / 2)).sum() / total)


def auc_difference_interval(
    a: np.ndarray, b: np.ndarray, truth: np.ndarray, customers: np.ndarray, *, rounds: int, low: float, seed: int
) -> tuple[float, float] | None:
    """The ``low`` and ``100 - low`` percentiles of AUC(a) - AUC(b) on the same observations, customers
    resampled with replacement (each with all of its rows, Poisson weights: one customer's dates are not
    independent). Seeded; None without both churners and non-churners."""
    if not truth.any() or truth.all():
        return None
    _, codes = np.unique(customers, return_inverse=True)
    codes = codes.reshape(-1)
    first, second = _WeightedAuc(a, truth), _WeightedAuc(b, truth)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        weights = rng.poisson(1.0, size=int(codes.max()) + 1)[codes].astype(float)
        x, y = first(weights), second(weights)
        if x is not None and y is not None:
            values.append(x - y)
    if not values:
        return None
    lower, upper = np.percentile(values, [low, 100 - low])
    return float(lower), float(upper)
