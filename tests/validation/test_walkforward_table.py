"""The walk-forward's kept dates (validation/walkforward.py): one table grown in place, date by date, that holds
exactly the rows of every date given, as concatenating them would, and never changes a table it gave out."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from validation.candidates import CANDIDATES
from validation.figures import Rows
from validation.learned import FEATURE_DTYPE, ScoreTable
from validation.walkforward import WalkForward, _GrowingTable

NAMES = ("events_7d", "tenure_days", "friction_points")
HORIZONS = [30, 60]
FIRST = date(2026, 3, 2)
# The customers seen on each date: newcomers that sort between, before and after the earlier ones, a date
# with nobody, and one that lost a customer.
SEEN = [["t10", "t30"], ["t10", "t20", "t30"], [], ["t05", "t10", "t20", "t30", "t40"], ["t05", "t20", "t40"]]


def _part(k: int, tenants: list[str]) -> ScoreTable:
    """Date k's rows, every number distinct (so a row landing in the wrong place shows)."""
    n = len(tenants)
    base = 100.0 * (k + 1) + np.arange(n)
    matrix = (base[:, None] + np.arange(len(NAMES))[None, :] / 10).astype(FEATURE_DTYPE).reshape(n, len(NAMES))
    day = (FIRST + timedelta(days=7 * k)).toordinal()
    by_horizon = {h: base + h / 1000 for h in HORIZONS}
    # The first horizon only has a learned score: the other's is missing, as before its first fit.
    return ScoreTable(
        Rows.of(np.full(n, day, dtype=np.int64), tenants), matrix, NAMES, base / 7, {30: by_horizon[30]},
        {h: v + 0.5 for h, v in by_horizon.items()}, {h: np.ones(n) for h in HORIZONS},
        {h: np.tile(v[:, None], (1, len(CANDIDATES))).astype(FEATURE_DTYPE) for h, v in by_horizon.items()},
    )  # fmt: skip


def _assert_same(table: ScoreTable, expected: ScoreTable) -> None:
    assert np.array_equal(table.rows.day, expected.rows.day)
    assert np.array_equal(table.rows.tenant_ids, expected.rows.tenant_ids)
    assert np.array_equal(table.rows.tenant, expected.rows.tenant)
    assert table.matrix.dtype == expected.matrix.dtype == FEATURE_DTYPE
    assert np.array_equal(table.matrix, expected.matrix)
    assert np.array_equal(table.strength, expected.strength)
    for attr in ("learned", "ranking", "ranked_by_model", "track"):
        got, want = getattr(table, attr), getattr(expected, attr)
        assert set(got) == set(want) == set(HORIZONS), attr
        for h in HORIZONS:
            assert got[h].dtype == want[h].dtype, (attr, h)
            assert np.array_equal(got[h], want[h], equal_nan=True), (attr, h)


def test_the_kept_dates_are_every_date_s_rows_in_order_even_when_it_outgrows_its_room():
    # Room for two dates reserved, five given: it grows (copies) on the way, with customers added as they come.
    kept = _GrowingTable(names=NAMES, horizons=HORIZONS, dates=2)
    parts: list[ScoreTable] = []
    given: list[tuple[ScoreTable, ScoreTable]] = []
    for k, tenants in enumerate(SEEN):
        part = _part(k, tenants)
        parts.append(part)
        kept.append(part)
        expected = ScoreTable.concatenate(parts, names=NAMES, horizons=HORIZONS)
        table = kept.table()
        _assert_same(table, expected)
        given.append((table, expected))
    assert kept.table().rows.tenant_ids.tolist() == ["t05", "t10", "t20", "t30", "t40"]
    assert len(kept.table().rows) == sum(len(t) for t in SEEN)
    # A table given out before later dates (and a regrowth, and new customers renumbering the codes) is unchanged.
    for table, expected in given:
        _assert_same(table, expected)


def _walked() -> tuple[WalkForward, list[ScoreTable]]:
    """A walk over SEEN's dates with no churn recorded, and the dates as it scored them."""
    walk = WalkForward({}, horizons=HORIZONS, min_churns=2, names=NAMES, dates=len(SEEN))
    parts = []
    for k, tenants in enumerate(SEEN):
        part = _part(k, tenants)
        part.learned, part.ranking, part.ranked_by_model, part.track = {}, {}, {}, {}
        parts.append(walk.score(FIRST + timedelta(days=7 * k), part))
    return walk, parts


def test_the_walk_forward_scores_and_keeps_each_date_as_given():
    # No churn recorded: nothing is fitted, every date is ordered by the heuristic and kept to learn from.
    walk, parts = _walked()
    for scored in parts:
        assert all(np.isnan(scored.learned[h]).all() and not scored.ranked_by_model[h].any() for h in HORIZONS)
    table = walk.table()
    _assert_same(table, ScoreTable.concatenate(parts, names=NAMES, horizons=HORIZONS))
    # The customer with the highest heuristic strength tops its date's list.
    last = table.rows.day == table.rows.day.max()
    assert table.ranking[30][last].tolist() == [0.0, 0.5, 1.0]


def test_after_the_walk_only_the_final_fit_s_horizon_keeps_its_record():
    walk, _ = _walked()
    before = walk.table()
    walk.records_keep(30)
    table = walk.table()
    assert list(table.track) == [30]
    assert np.array_equal(table.track[30], before.track[30], equal_nan=True)
    # Everything else the report reads is kept as it was.
    assert np.array_equal(table.matrix, before.matrix)
    assert all(np.array_equal(table.ranking[h], before.ranking[h]) for h in HORIZONS)
