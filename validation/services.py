"""The walk-forward backtest: writes of the validation app.

``backtest_run_prepare`` finds the unfinished run with the same window, step,
horizons and registry (to resume it) or creates one; ``backtest_run_execute``
scores its remaining as-of dates in order, each date's scores committed in their
own transaction with the date marked done, so a run that stops (a crash, a
deploy) resumes at the first date it had not stored. It never writes a live
metrics table and never takes the metrics lock: the engine's statements work on
private copies of the rollups (validation/engine.py). A session advisory lock of
its own keeps two backtests from running at once; the live engine never waits on it.

Each date's walk-forward learned scores are computed as the date is scored, from a
model fitted on the dates before it (validation/walkforward.py ``WalkForward``), and stored
with it. The walk-forward also learns from training dates before the run's window
(``backtest_training_dates``): scored the same way, never stored or reported, they let the
window's first dates be ordered by a model trained on churns dated before them, as a founder's
list with that history behind it would have been. A resumed run scores them again. When every date is stored, the report (validation/report.py) is computed from
the same scores, held as arrays since they were scored, and kept on the run.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import math
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import numpy as np
import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.memory import heap_release
from core.rows import value_of
from customers.metrics.weights import risk_weights_activate, risk_weights_create
from customers.models import RiskWeights, RiskWeightsSource
from validation.adoption import ranking_auto_apply
from validation.engine import (
    DayScores,
    backtest_day_assess,
    backtest_rollups,
    backtest_rollups_advance,
    engine_registry_key,
)
from validation.features import feature_names
from validation.figures import Rows
from validation.learned import FEATURE_DTYPE, RANKED_BY_HEURISTIC, RANKED_BY_MODEL, ScoreTable
from validation.models import BacktestRun, BacktestStatus
from validation.report import backtest_report, model_horizon, recorded_churns, run_score_table
from validation.selectors import learned_weights_latest
from validation.walkforward import WalkForward

logger = logging.getLogger(__name__)

# Session advisory lock of the backtest (unique in this database; not the metrics lock).
BACKTEST_LOCK_KEY = 7_104_202_618
# The lock reads no table.
LOCK_SQL = "SELECT pg_try_advisory_lock(%s) AS locked"
UNLOCK_SQL = "SELECT pg_advisory_unlock(%s) AS unlocked"
MAX_DAYS = 3660
# What `backtest_risk` and the Validation page's button run when nothing else is asked for.
BACKTEST_DEFAULT_DAYS = 180
BACKTEST_DEFAULT_STEP = 7
BACKTEST_DEFAULT_HORIZONS = [30, 60]
MAX_HORIZON_DAYS = 365
# How far before the window the walk-forward also learns (training dates at the run's step): without
# them the window's first weeks could only be ordered by the heuristic, since a model needs churns
# whose label windows closed before the date it scores.
TRAINING_LEAD_DAYS = 84

# A date's scores, copied in after its rows are cleared: a date is stored whole in the transaction that marks
# it done, so it has none unless it is stored again, which then replaces them (the delete is a range of the
# primary key, run_id, as_of, tenant_id). COPY parses each row's JSON once, where one JSON array per statement
# was parsed whole and then taken apart row by row; and the rows are streamed, never held as one text.
SCORES_CLEAR_SQL = "DELETE FROM ops_backtest_score WHERE run_id = %(run)s AND as_of = %(as_of)s"
SCORES_COPY_SQL = """
COPY ops_backtest_score (run_id, as_of, tenant_id, risk_signal_strength, components, features, learned_scores,
                         learned_score, ranking_scores, ranking_models) FROM STDIN
"""


class BacktestInputError(ValueError):
    """Bad backtest parameters (nothing is created)."""


class BacktestBusy(RuntimeError):
    """Another backtest holds the backtest lock."""


def backtest_dates(*, end_day: date, days: int, step: int) -> list[date]:
    """Every ``step`` days ending on ``end_day``, back to ``days`` days before it, oldest first."""
    return sorted(end_day - timedelta(days=k * step) for k in range(days // step + 1))


def backtest_training_dates(run: BacktestRun) -> list[date]:
    """The dates before the run's window the walk-forward learns from, oldest first (TRAINING_LEAD_DAYS
    back at the run's step); never stored or reported."""
    step = run.step_days
    return sorted(run.start_day - timedelta(days=k * step) for k in range(1, max(TRAINING_LEAD_DAYS // step, 1) + 1))


def backtest_params_check(*, days: int, step: int, horizons: list[int]) -> None:
    problems = []
    if not 1 <= days <= MAX_DAYS:
        problems.append(f"--days must be between 1 and {MAX_DAYS} (got {days})")
    if not 1 <= step <= max(days, 1):
        problems.append(f"--step must be between 1 and --days (got {step})")
    if not horizons or any(not 1 <= h <= MAX_HORIZON_DAYS for h in horizons):
        problems.append(f"--horizons must be days between 1 and {MAX_HORIZON_DAYS}, e.g. 30,60 (got {horizons})")
    if len(set(horizons)) != len(horizons):
        problems.append(f"--horizons repeats a value ({horizons})")
    if problems:
        raise BacktestInputError("; ".join(problems))


def backtest_run_prepare(*, days: int, step: int, horizons: list[int], end_day: date | None = None) -> BacktestRun:
    """The run to execute: the unfinished one with these parameters (resumed), or a new one."""
    backtest_params_check(days=days, step=step, horizons=horizons)
    end_day = end_day or timezone.now().date()
    dates = backtest_dates(end_day=end_day, days=days, step=step)
    registry_key = engine_registry_key()
    existing = (
        BacktestRun.objects.filter(
            start_day=dates[0], end_day=end_day, step_days=step, horizons=horizons, registry_key=registry_key
        )
        .exclude(status=BacktestStatus.DONE)
        .order_by("-created_at")
        .first()
    )
    if existing is not None:
        return existing
    return BacktestRun.objects.create(
        start_day=dates[0],
        end_day=end_day,
        step_days=step,
        horizons=horizons,
        registry_key=registry_key,
        dates_total=len(dates),
    )


# A scored date: the engine's assessment, the customers' tenant order and the walk-forward scores (``_date_score``).
Scored = tuple[DayScores, list[int], ScoreTable]


def _date_score(as_of: date, walk: WalkForward) -> Scored:
    """One date's engine assessment of every customer, with its walk-forward scores from the dates
    before it (``walk``, which keeps the date to learn from, advanced to ``as_of`` by the caller: the refit's
    memory is free again before the day's rows are built); the customers in tenant order (``order``)."""
    day = backtest_day_assess(as_of=as_of)
    order = sorted(range(len(day.tenant_ids)), key=day.tenant_ids.__getitem__)
    names = walk.names
    part = ScoreTable(
        Rows.of(np.full(len(order), as_of.toordinal(), dtype=np.int64), [day.tenant_ids[i] for i in order]),
        day.features_of(names)[order].astype(FEATURE_DTYPE).reshape(-1, len(names)),
        names,
        day.risk_signal_strength[order],
        {},
    )
    return day, order, walk.score(as_of, part)


def _json(value: Any) -> str:
    # orjson: the same numbers as the json module's text (both write the shortest text that reads back as the
    # same float), in a tenth of its time for a date's some 80 features per customer.
    return orjson.dumps(value).decode()


def _score_values(day: DayScores, order: list[int], part: ScoreTable, *, first: int) -> Iterator[tuple[Any, ...]]:
    """The stored columns after (run_id, as_of) of every customer, in tenant order (SCORES_COPY_SQL's)."""
    for i, k in enumerate(order):
        # A horizon without a model yet is left out (its score is null); NaN never reaches JSON.
        values = {str(h): float(v[i]) for h, v in part.learned.items() if not np.isnan(v[i])}
        yield (
            day.tenant_ids[k],
            float(day.risk_signal_strength[k]),
            _json(day.components[k]),
            _json(dict(zip(day.names, day.matrix[k].tolist(), strict=True))),
            _json(values) if values else None,
            values.get(str(first)),
            _json({str(h): _finite(v[i]) for h, v in part.ranking.items()}),
            _json({str(h): RANKED_BY_MODEL if v[i] else RANKED_BY_HEURISTIC for h, v in part.ranked_by_model.items()}),
        )


def _scores_score(as_of: date, walk: WalkForward) -> Scored:
    """Score one date (``_date_score``), refusing a score JSON cannot hold."""
    day, order, part = _date_score(as_of, walk)
    if not (np.isfinite(day.matrix).all() and np.isfinite(day.risk_signal_strength).all()):
        raise ValueError(f"a feature or score of {as_of} is not a finite number")  # JSON has no NaN
    return day, order, part


def _scores_store(run: BacktestRun, as_of: date, scored: Scored, *, first: int) -> int:
    """Store one date's scores with the date marked done, in one transaction (of this thread's connection)."""
    day, order, part = scored
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(SCORES_CLEAR_SQL, {"run": run.pk, "as_of": as_of})
        with connection.wrap_database_errors, cursor.cursor.copy(SCORES_COPY_SQL) as copy:
            for values in _score_values(day, order, part, first=first):
                copy.write_row((run.pk, as_of, *values))
        run.dates_done = sorted({*run.dates_done, as_of.isoformat()})
        run.heartbeat_at = timezone.now()
        run.save(update_fields=["dates_done", "heartbeat_at"])
    return len(order)


def _store_then_refit(
    run: BacktestRun, stored: list[tuple[date, Scored]], refit: Callable[[], None] | None, *, first: int
) -> bool:
    """Store the date held in ``stored`` (taken out of it, so nothing holds its rows after), if any, then run
    ``refit``; whether a date was stored."""
    done = bool(stored)
    if stored:
        as_of, scored = stored.pop()
        _scores_store(run, as_of, scored, first=first)
        del scored
    if refit is not None:
        # The stored date's rows are freed: their pages go back to the system before the refit's working copies
        # are made, so the two are never held at once (core/memory.py).
        heap_release()
        refit()
    return done


class _ScoresWriter:
    """Stores each scored date (``_scores_store``) on a connection of its own, then refits the walk for the next
    date, in one thread, while the backtest's connection folds the next date's events: PostgreSQL parses the
    stored rows' JSON and folds while Python fits, instead of each waiting for the other. One job at a time, in
    order: ``wait`` for the one before, then ``submit``. Inside a transaction (a test's) another connection could
    not see the run's rows, so there each job runs at once, in the caller's thread and connection."""

    def __init__(self, run: BacktestRun, *, first: int) -> None:
        self.run = run
        self.first = first
        self._pool: ThreadPoolExecutor | None = (
            None if connection.in_atomic_block else ThreadPoolExecutor(1, thread_name_prefix="backtest-store")
        )
        self._pending: Future[bool] | None = None

    def submit(self, stored: tuple[date, Scored] | None, *, refit: Callable[[], None] | None = None) -> None:
        """Store ``stored`` (a date and its scores; the caller keeps no reference to them), then run ``refit``."""
        if self._pending is not None:
            raise RuntimeError("a job was submitted before the previous one was done")
        # Handed over in a list the job empties: the date's rows are freed once stored, before the refit.
        held = [stored] if stored is not None else []
        if self._pool is not None:
            self._pending = self._pool.submit(_store_then_refit, self.run, held, refit, first=self.first)
            return
        self._pending = Future()
        self._pending.set_result(_store_then_refit(self.run, held, refit, first=self.first))

    def wait(self) -> bool:
        """Wait until the job submitted last is done (its error is raised here); whether it stored a date."""
        pending, self._pending = self._pending, None
        if pending is None:
            return False
        return pending.result()

    def close(self) -> None:
        """Wait for the thread's last job whatever became of it, then close the thread's connection and stop it."""
        if self._pool is None:
            return
        try:
            if self._pending is not None:
                concurrent.futures.wait([self._pending])
        finally:
            self._pending = None
            self._pool.submit(_thread_connection_close).result()
            self._pool.shutdown()


def _thread_connection_close() -> None:
    connection.close()  # the calling thread's own connection (Django keeps one per thread)


def _finite(value: float) -> float:
    """``value`` as a float, refused when it is not a finite number (orjson would write it as null)."""
    if not math.isfinite(value):
        raise ValueError(f"a ranking score is not a finite number: {value}")
    return float(value)


def _walk_forward(run: BacktestRun, *, dates: int) -> WalkForward:
    """The run's learning over ``dates`` dates; it learns nothing with fewer than MIN_CHURNS_FOR_TRUST churns
    recorded."""
    churns = recorded_churns()
    minimum = settings.MIN_CHURNS_FOR_TRUST
    return WalkForward(
        churns if sum(len(v) for v in churns.values()) >= minimum else {},
        horizons=list(run.horizons),
        min_churns=minimum,
        names=feature_names(),
        dates=dates,
    )


def backtest_run_execute(run: BacktestRun, *, progress: Callable[[int, int], None] | None = None) -> BacktestRun:
    """Score the run's remaining dates, then learn and report (see the module docstring)."""
    with connection.cursor() as cursor:
        cursor.execute(LOCK_SQL, [BACKTEST_LOCK_KEY])
        if not value_of(cursor, "locked"):
            raise BacktestBusy("another backtest is running; it resumes this one's dates when it is done")
    try:
        claimed = BacktestRun.objects.filter(pk=run.pk).exclude(status=BacktestStatus.DONE)
        if not claimed.update(status=BacktestStatus.RUNNING, heartbeat_at=timezone.now(), error=""):
            run.refresh_from_db()
            return run  # finished meanwhile (a redelivered task)
        run.refresh_from_db()
        dates = backtest_dates(end_day=run.end_day, days=(run.end_day - run.start_day).days, step=run.step_days)
        remaining = [d for d in dates if d.isoformat() not in set(run.dates_done)]
        done = len(dates) - len(remaining)
        if progress:
            progress(done, len(dates))
        try:
            training = backtest_training_dates(run)
            walk = _walk_forward(run, dates=len(training) + len(dates))
            # The training dates, then the stored dates replayed (a resumed run), then the remaining ones:
            # the walk-forward sees every date in order, as a run that never stopped would have.
            scored = [*training, *remaining]
            writer = _ScoresWriter(run, first=walk.horizons[0])

            def stored_counted() -> None:
                nonlocal done
                if writer.wait():
                    done += 1
                    if progress:
                        progress(done, len(dates))

            try:
                with backtest_rollups(through=scored[0], last=scored[-1]):
                    previous = scored[0]
                    pending: tuple[date, Scored] | None = None
                    for as_of in scored:
                        if run.dates_done and as_of == remaining[0]:
                            walk.replay(run_score_table(run))
                        # The date before is stored and the walk refitted for this one (from the dates before it
                        # only) in the writer's thread, while this connection folds this date's events.
                        writer.submit(pending, refit=functools.partial(walk.advance, as_of))
                        pending = None
                        if as_of != previous:
                            backtest_rollups_advance(after=previous, through=as_of)
                        previous = as_of
                        # The job gave the stored date's and the refit's freed pages back to the system as it went
                        # (``_store_then_refit``, walkforward.py).
                        stored_counted()
                        if as_of < run.start_day:
                            _date_score(as_of, walk)
                            continue
                        pending = (as_of, _scores_score(as_of, walk))
                    writer.submit(pending)
                    del pending
                    stored_counted()
            finally:
                writer.close()
            heap_release()
            if run.dates_done and not remaining:
                walk.replay(run_score_table(run))
            # The scores as stored, held as arrays since they were scored: the report reads no row again, and of the
            # candidates' records only its final fit's horizon's.
            walk.records_keep(model_horizon(run))
            # The walk's table outlives the walk, held only by the report, the last reader of its features.
            table = walk.table()
            del walk
            run.report = backtest_report(run, table=table, last_reader=True)
            del table
            run.learned_at = timezone.now()
        except Exception as exc:
            # Recorded for admin and the API; the stored dates stay, so a rerun resumes after them.
            BacktestRun.objects.filter(pk=run.pk).update(status=BacktestStatus.FAILED, error=str(exc)[:2000])
            raise
        run.status = BacktestStatus.DONE
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "finished_at", "report", "learned_at"])
        # RISK_RANKING=auto: the list follows what this run's walk-forward judgement chose.
        ranking_auto_apply(run)
        logger.info("backtest %s done: %d dates", run.pk, len(dates))
        return run
    finally:
        with connection.cursor() as cursor:
            cursor.execute(UNLOCK_SQL, [BACKTEST_LOCK_KEY])


class WeightsAdoptionError(Exception):
    """Learned weights that cannot be adopted now; the message says why."""


def learned_weights_adopt(*, created_by: str) -> int:
    """Make the newest backtest's learned maxima the engine's risk weights; returns the new version.

    A new customers.RiskWeights version (source "learned", who and when), activated in one
    transaction: the next recompute scores with it, and ``spec_weights_restore`` (or "Make
    active" on any version in admin) goes back in one click. Refused while no model was
    fitted (fewer than MIN_CHURNS_FOR_TRUST churns) so a founder never adopts noise.
    """
    learned = learned_weights_latest()
    if not learned:
        raise WeightsAdoptionError(
            f"No learned weights yet: a backtest with at least {settings.MIN_CHURNS_FOR_TRUST} recorded churns "
            "fits them. Run `python manage.py backtest_risk` once enough churns are recorded."
        )
    version = risk_weights_create(
        weights={signal: row["max_points"] for signal, row in learned.items()},
        source=RiskWeightsSource.LEARNED,
        created_by=created_by,
        note="Adopted from the walk-forward backtest's learned model (Validation page).",
        activate=True,
    )
    return version.version


def spec_weights_restore() -> int:
    """Go back to the default weights (the seeded default version); returns its version."""
    default = RiskWeights.objects.filter(source=RiskWeightsSource.DEFAULT).order_by("version").first()
    if default is None:
        raise WeightsAdoptionError("The default risk weights are missing: run `python manage.py migrate`.")
    return risk_weights_activate(version=default.version).version
