"""Replay the walk-forward learning on dumped backtest tables: a change to the candidates or their selection
(validation/learned.py) measured on many bases and seeds in seconds, without scoring a date again.

The tables come from ``tests/validation/walkforward_dump.py`` (every scored date's features and heuristic
strength, the churns, the window). Each is given to ``WalkForward`` date by date, oldest first, exactly as the
backtest gives them, and the list's figures are computed by the report's own ``_ranking_block``: with unchanged
code a replay gives the stored run's list AUC to the last digit. Prints each table's list AUC and top-decile
lift beside the heuristic's, each base's mean (sd) over its seeds, and the number of model fits per refit.

Run: ``python bench/walkforward_replay.py [--dir /tmp/walkforward] [decay-* quiet-1 ...]``; compare two trees
by running each tree's copy of this script on the same tables. ``--without name,type_90d:*`` replays without
those features (names or globs): what a feature adds, measured on tables stored with it.
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


def replay(path: Path, counter: _FitCounter, *, without: tuple[str, ...] = ()) -> Replayed:
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
    return Replayed(
        path.stem, block["auc"], block["top_decile_lift"], heuristic["auc"], block["as_of_dates_ordered_by_model"],
        float(data["stored"][0]), counter.fits - fits, counter.refits - refits,
    )  # fmt: skip


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
        print(
            f"== {base:8s} n={len(runs)} list {statistics.fmean(aucs):.3f} ({sd:.3f}) "
            f"lift {statistics.fmean(r.lift for r in runs):.2f} (min {min(r.lift for r in runs):.2f}) "
            f"heuristic {statistics.fmean(r.heuristic for r in runs):.3f}"
        )
    refits = sum(r.refits for r in results)
    print(f"fits per refit {sum(r.fits for r in results) / max(refits, 1):.2f} ({refits} refits)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/walkforward")
    parser.add_argument("--without", default="", help="features left out (comma-separated names or globs)")
    parser.add_argument("tables", nargs="*", default=["*"], help="table names or globs (base-seed)")
    args = parser.parse_args()
    counter = _FitCounter()
    counter.install()
    paths = sorted({p for pattern in args.tables for p in Path(args.dir).glob(f"{pattern}.npz")})
    results = []
    for path in paths:
        r = replay(path, counter, without=tuple(p for p in args.without.split(",") if p))
        results.append(r)
        print(
            f"{r.name:12s} list {r.auc:.3f} lift {r.lift:.2f} heuristic {r.heuristic:.3f} "
            f"model dates {r.model_dates:2d} stored {r.stored_auc:.3f}"
        )
    _summary(results)


if __name__ == "__main__":
    main()
