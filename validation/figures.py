"""What the backtest's scores say about the future: pure functions, no database.

Definitions (per horizon H, over the stored scores):

* **Evaluable observation**: a customer's score on an as-of date D with
  D + H <= ``observed_through`` (every churn that could label it has had time to
  be recorded), of a customer alive on D (no churn dated on or before D).
* **Label**: the customer churned within H days of D (a churn dated in (D, D + H]).
* **AUC**: the probability that a churner's score beats a non-churner's (ties count
  half), pooled over every evaluable observation; None without both kinds.
* **Top-decile lift**: on each date the top 10% by score (at least one customer;
  ties broken by tenant id); their churn rate, pooled over dates, over the base rate.
* **Precision and recall at the threshold**: flagged means a score at or above the
  at-risk threshold. **Precision at 10**: the ten highest scores of each date, pooled.
* **Lead time**: for each churn with at least one scored as-of date in the H days
  before it (these need no waiting: the churn is already recorded), the days from the FIRST such date on which the customer was flagged to the
  churn; a churn never flagged there is a blind spot. Median and quartiles
  (inclusive method), None when no churn was flagged.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

TOP_DECILE = 0.10
TOP_N = 10


@dataclass(frozen=True, slots=True)  # slots: a 10,000-customer run holds hundreds of thousands
class Scored:
    """One customer's score on one as-of date (heuristic, a component's points, or learned)."""

    as_of: date
    tenant_id: str
    score: float


Churns = dict[str, list[date]]


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Mann-Whitney AUC with average ranks for ties; None without positives and negatives."""
    positives = sum(1 for label in labels if label)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1  # the average 1-based rank of the tie group
        i = j + 1
    rank_sum = sum(r for r, label in zip(ranks, labels, strict=True) if label)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def quartiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p25": None, "p75": None}
    if len(values) == 1:
        return {"median": float(values[0]), "p25": float(values[0]), "p75": float(values[0])}
    p25, median, p75 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": float(median), "p25": float(p25), "p75": float(p75)}


def alive_on(churns: Churns, tenant_id: str, day: date) -> bool:
    return not any(c <= day for c in churns.get(tenant_id, ()))


def churned_within(churns: Churns, tenant_id: str, day: date, horizon: int) -> bool:
    return any(day < c <= day + timedelta(days=horizon) for c in churns.get(tenant_id, ()))


def labels(scored: Sequence[Scored], churns: Churns, *, horizon: int, observed_through: date) -> list[bool | None]:
    """Per observation, in order: its label, or None when it is not evaluable (see the module docstring)."""
    last = observed_through - timedelta(days=horizon)
    window = timedelta(days=horizon)
    out: list[bool | None] = []
    for s in scored:
        days = churns.get(s.tenant_id)
        if s.as_of > last:
            out.append(None)
        elif not days:  # most customers never churned: no date to compare
            out.append(False)
        elif any(c <= s.as_of for c in days):
            out.append(None)  # already lost on that date
        else:
            out.append(any(s.as_of < c <= s.as_of + window for c in days))
    return out


def labelled(
    scored: Sequence[Scored], churns: Churns, *, horizon: int, observed_through: date
) -> list[tuple[Scored, bool]]:
    """The evaluable observations and their labels (see the module docstring)."""
    marks = labels(scored, churns, horizon=horizon, observed_through=observed_through)
    return [(s, label) for s, label in zip(scored, marks, strict=True) if label is not None]


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def lead_days(
    scored: Iterable[Scored], churns: Churns, *, horizon: int, threshold: float
) -> tuple[list[int], list[tuple[str, date]]]:
    """(lead times of the flagged churns, the churns never flagged): see the module docstring."""
    by_tenant: dict[str, list[Scored]] = defaultdict(list)
    for s in scored:
        by_tenant[s.tenant_id].append(s)
    leads: list[int] = []
    blind: list[tuple[str, date]] = []
    for tenant_id, days in sorted(churns.items()):
        for churn_day in sorted(days):
            window = sorted(
                (s for s in by_tenant.get(tenant_id, ()) if churn_day - timedelta(days=horizon) <= s.as_of < churn_day),
                key=lambda s: s.as_of,
            )
            if not window:
                continue  # no as-of date of the backtest fell in the H days before this churn
            flagged = [s for s in window if s.score >= threshold]
            if flagged:
                leads.append((churn_day - flagged[0].as_of).days)
            else:
                blind.append((tenant_id, churn_day))
    return leads, blind


def ranking_figures(
    scored: Sequence[Scored], churns: Churns, *, horizon: int, threshold: float, observed_through: date
) -> dict[str, Any]:
    """AUC, lift, precision and recall, lead time of one score over the evaluable observations."""
    rows = labelled(scored, churns, horizon=horizon, observed_through=observed_through)
    positives = sum(1 for _, label in rows if label)
    by_day: dict[date, list[tuple[Scored, bool]]] = defaultdict(list)
    for row in rows:
        by_day[row[0].as_of].append(row)
    top_hits = top_total = ten_hits = ten_total = 0
    for day_rows in by_day.values():
        ranked = sorted(day_rows, key=lambda r: (-r[0].score, r[0].tenant_id))
        top = ranked[: max(1, math.ceil(TOP_DECILE * len(ranked)))]
        top_hits += sum(1 for _, label in top if label)
        top_total += len(top)
        ten = ranked[:TOP_N]
        ten_hits += sum(1 for _, label in ten if label)
        ten_total += len(ten)
    flagged = [label for s, label in rows if s.score >= threshold]
    true_flags = sum(1 for label in flagged if label)
    leads, _ = lead_days(scored, churns, horizon=horizon, threshold=threshold)
    return {
        "auc": auc([s.score for s, _ in rows], [label for _, label in rows]),
        "top_decile_lift": _ratio(_rate(top_hits, top_total), _rate(positives, len(rows))),
        "precision_at_threshold": _rate(true_flags, len(flagged)),
        "recall_at_threshold": _rate(true_flags, positives),
        "precision_at_10": _rate(ten_hits, ten_total),
        "lead_days": quartiles(leads),
        "observations": len(rows),
        "churned_within_horizon": positives,
        "as_of_dates": len(by_day),
    }


def matching_threshold(scored: Sequence[Scored], *, flags: int) -> float:
    """The score above which ``flags`` observations lie: compares another score with the
    heuristic at the same number of customers flagged (infinite when none may be)."""
    if flags <= 0 or not scored:
        return math.inf
    ordered = sorted((s.score for s in scored), reverse=True)
    return ordered[min(flags, len(ordered)) - 1]


def lift_by_decile(
    scored: Sequence[Scored], churns: Churns, *, horizon: int, observed_through: date
) -> list[float | None]:
    """The lift chart: each score decile's churn rate over the base rate (decile 1 = highest scores),
    deciles taken per date and pooled."""
    rows = labelled(scored, churns, horizon=horizon, observed_through=observed_through)
    base = _rate(sum(1 for _, label in rows if label), len(rows))
    hits = [0] * 10
    totals = [0] * 10
    by_day: dict[date, list[tuple[Scored, bool]]] = defaultdict(list)
    for row in rows:
        by_day[row[0].as_of].append(row)
    for day_rows in by_day.values():
        ranked = sorted(day_rows, key=lambda r: (-r[0].score, r[0].tenant_id))
        for rank, (_, label) in enumerate(ranked):
            decile = rank * 10 // len(ranked)
            totals[decile] += 1
            hits[decile] += int(label)
    return [_ratio(_rate(h, t), base) for h, t in zip(hits, totals, strict=True)]
