"""Replay the walk-forward learning on dumped backtest tables: a change to the candidates or their selection
(validation/learned.py) measured on many bases and seeds in seconds, without scoring a date again.

The tables come from ``tests/validation/walkforward_dump.py`` (every scored date's features and heuristic
strength, the churns, the window). Each is given to ``WalkForward`` date by date, oldest first, exactly as the
backtest gives them, and the list's figures are computed by the report's own ``_ranking_block``: with unchanged
code a replay gives the stored run's list AUC to the last digit. Prints each table's list AUC and top-decile
lift beside the heuristic's, each base's mean (sd) over its seeds, and the number of model fits per refit.

Run: ``python bench/walkforward_replay.py [--dir /tmp/walkforward] [decay-* quiet-1 ...]``; compare two trees
by running each tree's copy of this script on the same tables. ``--without name,type_90d:*`` replays without
those features (names or globs): what a feature adds, measured on tables stored with it. ``--reference`` adds
the plain reference the issue measured the first list against (a logistic regression with scikit-learn's defaults
on the standardised log per-type counts, tenure and trends), walked forward on the same table: on each date
refitted on the rows whose 30-day outcome was known by then (a churn from its day), the heuristic ordering the dates before
``MIN_CHURNS`` such churns.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import statistics
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")

import django
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

django.setup()

import numpy as np  # noqa: E402

import validation.candidates as candidates  # noqa: E402
import validation.learned as learned  # noqa: E402
from validation.figures import Rows  # noqa: E402
from validation.learned import FEATURE_DTYPE, ScoreTable  # noqa: E402
from validation.report import _ranking_block  # noqa: E402
from validation.walkforward import WalkForward  # noqa: E402

HORIZON = 30
# The backtest's own default (settings.MIN_CHURNS_FOR_TRUST).
MIN_CHURNS = 10
REFERENCE_FEATURES = ("type_*", "log_tenure_days", "trend_7d_vs_28d", "trend_28d_vs_prev", "log_events_7d",
                      "log_events_28d", "log_events_90d")  # fmt: skip


@dataclass
class Replayed:
    name: str
    auc: float
    lift: float
    heuristic: float
    model_dates: int
    stored_auc: float
    fits: int
    refits: int
    reference: float | None = None
    reference_lift: float | None = None


class _FitCounter:
    """Counts the logistic fits (``validation.candidates.logistic_fit``, wherever it is called from) and the refits."""

    def __init__(self) -> None:
        self.fits = 0
        self.refits = 0
        self._logistic = candidates.logistic_fit
        self._labelled_fit = learned._labelled_fit

    def install(self) -> None:
        def logistic(*args: Any, **kwargs: Any) -> Any:
            self.fits += 1
            return self._logistic(*args, **kwargs)

        def labelled_fit(*args: Any, **kwargs: Any) -> Any:
            fitted = self._labelled_fit(*args, **kwargs)
            self.refits += fitted is not None
            return fitted

        candidates.logistic_fit = logistic  # type: ignore[assignment]
        learned.logistic_fit = logistic  # type: ignore[assignment]
        learned._labelled_fit = labelled_fit  # type: ignore[assignment]


def replay(path: Path, counter: _FitCounter, *, without: tuple[str, ...] = (), reference: bool = False) -> Replayed:
    data = np.load(path)
    stored = [str(n) for n in data["names"]]
    keep = np.asarray([not any(fnmatch.fnmatchcase(n, p) for p in without) for n in stored])
    names = tuple(n for n, k in zip(stored, keep, strict=True) if k)
    churns = {t: [date.fromordinal(d) for d in days] for t, days in json.loads(str(data["churns"])).items()}
    start, end = (date.fromordinal(int(d)) for d in data["window"])
    walk = WalkForward(churns, horizons=[HORIZON], min_churns=MIN_CHURNS, names=names)
    fits, refits = counter.fits, counter.refits
    for day in np.unique(data["day"]):
        mask = data["day"] == day
        part = ScoreTable(
            Rows.of(data["day"][mask], data["tenant"][mask]),
            data["matrix"][mask][:, keep].astype(FEATURE_DTYPE),
            names,
            data["strength"][mask],
            {},
        )
        walk.score(date.fromordinal(int(day)), part)
    table = walk.table()
    window = table.subset(table.rows.day >= start.toordinal())
    block = _ranking_block(window, churns, horizon=HORIZON, observed_through=end)
    heuristic = _ranking_block(_heuristic_ordered(window), churns, horizon=HORIZON, observed_through=end)
    replayed = Replayed(
        path.stem, block["auc"], block["top_decile_lift"], heuristic["auc"], block["as_of_dates_ordered_by_model"],
        float(data["stored"][0]), counter.fits - fits, counter.refits - refits,
    )  # fmt: skip
    if reference:
        figures = _ranking_block(
            _reference_ordered(window, data, churns), churns, horizon=HORIZON, observed_through=end
        )
        replayed.reference, replayed.reference_lift = figures["auc"], figures["top_decile_lift"]
    return replayed


def _reference_scores(data: Any, churns: dict[str, list[date]]) -> np.ndarray:
    """The plain reference's log odds for every row of the table, each date's from a fit on the rows whose outcome
    was known by then (a churn from its day, no churn once the horizon passed); NaN on a date with fewer than
    ``MIN_CHURNS`` known churns."""
    names = [str(n) for n in data["names"]]
    columns = [j for j, n in enumerate(names) if any(fnmatch.fnmatchcase(n, p) for p in REFERENCE_FEATURES)]
    day, x = data["day"], data["matrix"][:, columns].astype(np.float64)
    churn_days = {t: [d.toordinal() for d in days] for t, days in churns.items()}
    # Each row's churn within the horizon (its day), or never: a churn is known from its own day on.
    churned_on = np.asarray([min((c for c in churn_days.get(str(t), ()) if d < c <= d + HORIZON), default=np.inf)
                             for d, t in zip(day, data["tenant"], strict=True)])  # fmt: skip
    y = np.isfinite(churned_on)
    out = np.full(len(day), np.nan)
    for today in np.unique(day):
        known = (day + HORIZON <= today) | (churned_on <= today)
        if y[known].sum() < MIN_CHURNS or y[known].all():
            continue
        scaler = StandardScaler().fit(x[known])
        model = LogisticRegression(max_iter=5000).fit(scaler.transform(x[known]), y[known])
        now = day == today
        out[now] = model.decision_function(scaler.transform(x[now]))
    return out


def _reference_ordered(table: ScoreTable, data: Any, churns: dict[str, list[date]]) -> ScoreTable:
    """The same dates ordered by the plain reference where it could be fitted, else by the heuristic."""
    scores = _reference_scores(data, churns)
    index = {(int(d), str(t)): i for i, (d, t) in enumerate(zip(data["day"], data["tenant"], strict=True))}
    rows = np.asarray([index[int(d), str(t)] for d, t in zip(table.rows.day, table.tenant_id_of_rows(), strict=True)])
    fitted = ~np.isnan(scores[rows])
    ordered = table.subset(np.ones(len(table.rows), dtype=bool))
    ordered.ranking = {HORIZON: learned.list_places(table.rows.day, np.where(fitted, scores[rows], table.strength))}
    ordered.ranked_by_model = {HORIZON: fitted.astype(np.float64)}
    return ordered


def _heuristic_ordered(table: ScoreTable) -> ScoreTable:
    """The same dates ordered by the heuristic alone (its list places), for the same figures."""
    heuristic = table.subset(np.ones(len(table.rows), dtype=bool))
    heuristic.ranking = {HORIZON: learned.list_places(table.rows.day, table.strength)}
    heuristic.ranked_by_model = {HORIZON: np.zeros(len(table.rows))}
    return heuristic


def _summary(results: list[Replayed]) -> None:
    by_base: dict[str, list[Replayed]] = {}
    for r in results:
        by_base.setdefault(r.name.split("-")[0], []).append(r)
    for base, runs in by_base.items():
        aucs = [r.auc for r in runs]
        sd = statistics.stdev(aucs) if len(aucs) > 1 else 0.0
        references = [r.reference for r in runs if r.reference is not None]
        print(
            f"== {base:8s} n={len(runs)} list {statistics.fmean(aucs):.3f} ({sd:.3f}) "
            f"lift {statistics.fmean(r.lift for r in runs):.2f} (min {min(r.lift for r in runs):.2f}) "
            f"heuristic {statistics.fmean(r.heuristic for r in runs):.3f}"
            + (f" reference {statistics.fmean(references):.3f}" if references else "")
        )
    refits = sum(r.refits for r in results)
    print(f"fits per refit {sum(r.fits for r in results) / max(refits, 1):.2f} ({refits} refits)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/walkforward")
    parser.add_argument("--without", default="", help="features left out (comma-separated names or globs)")
    parser.add_argument("--reference", action="store_true", help="the plain reference beside the list")
    parser.add_argument("tables", nargs="*", default=["*"], help="table names or globs (base-seed)")
    args = parser.parse_args()
    counter = _FitCounter()
    counter.install()
    paths = sorted({p for pattern in args.tables for p in Path(args.dir).glob(f"{pattern}.npz")})
    results = []
    for path in paths:
        r = replay(path, counter, without=tuple(p for p in args.without.split(",") if p), reference=args.reference)
        results.append(r)
        print(
            f"{r.name:12s} list {r.auc:.3f} lift {r.lift:.2f} heuristic {r.heuristic:.3f} "
            f"model dates {r.model_dates:2d} stored {r.stored_auc:.3f}"
            + (f" reference {r.reference:.3f} lift {r.reference_lift:.2f}" if r.reference is not None else "")
        )
    _summary(results)


if __name__ == "__main__":
    main()
