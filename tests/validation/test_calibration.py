"""The record the chance of churn is calibrated on (validation/learned.py): it holds the scores of many fits,
each fitted on fewer churns than the next, so each fit records its candidates in standard units of their spread
on its own observations, and the calibration of those units reads any fit's log odds alike."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from validation.candidates import CANDIDATES
from validation.figures import Rows
from validation.learned import FEATURE_DTYPE, Calibration, ScoreTable, model_fit
from validation.walkforward import WalkForward

NAMES = ("log_events_28d", "trend_7d_vs_28d", "noise", "decline_points")
FIRST = date(2025, 6, 2)
DATES = 40
CUSTOMERS = 400
HORIZON = 30


def _walk() -> tuple[WalkForward, dict[str, list[date]]]:
    """CUSTOMERS accounts over DATES weekly dates; each week an account churns with a chance that falls with its
    level and rises when it declines (a logistic of both), and sends nothing after its churn."""
    rng = np.random.default_rng(5)
    level = rng.normal(2.0, 1.0, CUSTOMERS)
    ids = np.asarray([f"t{i:03d}" for i in range(CUSTOMERS)])
    churned_on: dict[str, list[date]] = {}
    parts = []
    for k in range(DATES):
        day = FIRST + timedelta(days=7 * k)
        alive = np.asarray([t not in churned_on for t in ids])
        trend = rng.normal(0.0, 0.3, CUSTOMERS)
        for i in np.flatnonzero(alive & (rng.random(CUSTOMERS) < 1 / (1 + np.exp(3.0 + level - 4.0 * trend)))):
            churned_on[str(ids[i])] = [day + timedelta(days=int(rng.integers(1, 7)))]
        matrix = np.column_stack([level, trend, rng.normal(0, 1, CUSTOMERS), 20.0 * (trend < -0.3)])[alive]
        parts.append((day, ids[alive], matrix))
    walk = WalkForward(churned_on, horizons=[HORIZON], min_churns=10, names=NAMES, dates=DATES)
    for day, tenants, matrix in parts:
        n = len(tenants)
        part = ScoreTable(
            Rows.of(np.full(n, day.toordinal(), dtype=np.int64), tenants), matrix.astype(FEATURE_DTYPE), NAMES,
            matrix[:, 3].astype(float), {},
        )  # fmt: skip
        walk.score(day, part)
    return walk, churned_on


def test_each_candidate_s_record_is_in_standard_units_of_the_fit_that_scored_it():
    walk, _ = _walk()
    fitted = walk._schedule[HORIZON].fitted
    assert fitted is not None
    table = walk.table()
    labels_day = table.rows.day.max() - HORIZON
    record = fitted.candidate_log_odds(table.matrix[table.rows.day < labels_day])
    assert record.shape[1] == len(CANDIDATES)
    # The fit's own rows include churned customers' last dates: the spread is that of the rows it learned from,
    # so on (nearly) the same rows each column is centred and of unit spread.
    assert np.allclose(record.mean(axis=0), 0.0, atol=0.1)
    assert np.allclose(record.std(axis=0), 1.0, atol=0.1)


def test_a_calibration_of_standard_units_reads_the_log_odds_alike():
    calibration = Calibration(slope=1.5, intercept=-2.0)
    log_odds = np.asarray([-3.0, -1.0, 0.5, 2.0])
    centre, spread = -0.5, 2.0
    assert np.allclose(
        calibration.of_log_odds(centre, spread).apply(log_odds), calibration.apply((log_odds - centre) / spread)
    )


def test_the_final_fit_as_the_tables_last_reader_fits_the_same_model_and_lets_the_features_go():
    walk, churned_on = _walk()
    after = FIRST + timedelta(days=7 * DATES)
    kept = model_fit(walk.table(), churned_on, horizon=HORIZON, before=after, min_churns=10)
    table = walk.table()
    released = model_fit(table, churned_on, horizon=HORIZON, before=after, min_churns=10, last_reader=True)
    assert kept is not None and released is not None
    assert (released.coefficients, released.std_errors) == (kept.coefficients, kept.std_errors)
    assert (released.calibration, released.selection, released.base_rate) == (
        kept.calibration,
        kept.selection,
        kept.base_rate,
    )
    assert np.array_equal(released.candidate_spreads, kept.candidate_spreads)
    # The table it read holds no features any more (one NaN stands for all of them); the walk's own are intact.
    assert table.matrix.shape == walk.table().matrix.shape and np.isnan(table.matrix).all()
    assert table.matrix.strides == (0, 0)
    assert np.isfinite(walk.table().matrix).all()
