"""Recompute: the metrics engine against the single-scan lower bound, in one run.

For each history (by default over 10,000 tenants: 1M events and 10M events over the
last 60 days, and 10M events over 600 days, 1M's daily rate with ten times the history):

1. Copy the cached history database (bench/common.py builds it once).
2. Lower bound: one hand-written aggregate that scans ops_events once
   (``SELECT tenant_id, count(*) ... GROUP BY tenant_id``), best of two. Also the
   rollup-grain aggregate (tenant, type, day) as context.
3. Full recompute (``metrics_recompute(full=True)``) in a child process: wall
   time and the child's peak RSS.
4. In each of 3 rounds, for each size in turn: COPY the round's 100,000 new
   events (``psql \\copy``, the table's indexes in place), then the incremental
   recompute that folds them. Medians of the rounds; the sizes are compared
   round by round, side by side (the machine's speed drifts between minutes).
5. An incremental run with nothing new, and one on the next day (every
   tenant's windows roll over), for context.
6. Correctness: the rollups and ops_tenant_metrics after the incremental runs
   equal a full rebuild (digests of every table).
7. Lifecycle and retention's share of each run: the child times every statement that
   reads or writes their tables (the weekly/monthly activity fold, the stages, the
   weekly counts), so "with / without" comes from the same run, not from two runs
   minutes apart on a noisy machine.

Run: ``python bench/recompute.py [--sizes 1000000,10000000,10000000x600] [--new 100000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ANCHOR,
    BASE_DIR,
    BENCH_DB,
    HISTORY_DAYS,
    base_database_url,
    database_drop,
    events_copy,
    events_csv,
    history_database,
    production_env,
    scratch_database,
    tenants_ensure,
)
from core.rows import value_of

# The tables a recompute writes, with the order that makes their digest deterministic.
DIGEST_QUERIES = {
    "ops_rollup_tenant_day": "SELECT md5(string_agg(t::text, '|' ORDER BY tenant_id, event_type, day)) AS digest FROM ops_rollup_tenant_day t",
    "ops_rollup_tenant_span": "SELECT md5(string_agg(t::text, '|' ORDER BY tenant_id, event_type)) AS digest FROM ops_rollup_tenant_span t",
    "ops_rollup_session_friction": "SELECT md5(string_agg(t::text, '|' ORDER BY tenant_id, day, session_key, event_type)) AS digest FROM ops_rollup_session_friction t",
    "ops_rollup_tenant_user_day": "SELECT md5(string_agg(t::text, '|' ORDER BY tenant_id, user_id, day)) AS digest FROM ops_rollup_tenant_user_day t",
    "ops_rollup_tenant_day_summary": "SELECT md5(string_agg(t::text, '|' ORDER BY tenant_id, day)) AS digest FROM ops_rollup_tenant_day_summary t",
    "ops_tenant_metrics": "SELECT md5(string_agg((to_jsonb(m) - 'computed_at')::text, '|' ORDER BY tenant_id)) AS digest FROM ops_tenant_metrics m",
    "ops_rollup_tenant_period": "SELECT md5(string_agg(t::text, '|' ORDER BY tenant_id, period, start_day)) AS digest FROM ops_rollup_tenant_period t",
    "ops_tenant_lifecycle": "SELECT md5(string_agg(t::text, '|' ORDER BY tenant_id, week)) AS digest FROM ops_tenant_lifecycle t",
    "ops_lifecycle_count": "SELECT md5(string_agg(t::text, '|' ORDER BY week, stage)) AS digest FROM ops_lifecycle_count t",
}  # fmt: skip
# The statements of lifecycle and retention: those naming their tables (customers/metrics/lifecycle.py).
LIFECYCLE_TABLES = ("ops_rollup_tenant_period", "ops_tenant_lifecycle", "ops_lifecycle_count")


@dataclass(frozen=True)
class History:
    """A history to measure on: ``events`` generated over the last ``days`` (the metrics read 60).

    10M events over 60 days is 10x the daily rate of 1M over 60 days (the busy tenants'
    windows fill up); 10M over 600 days is the same daily rate as 1M over 60 days with
    ten times the history behind it.
    """

    events: int
    days: int = HISTORY_DAYS

    @property
    def label(self) -> str:
        return f"{self.events:,} events over {self.days} days"


@dataclass
class RunFigures:
    seconds: float
    peak_rss_mb: float
    events_folded: int
    tenants_written: int
    mode: str
    # Seconds of the run spent in lifecycle and retention's statements.
    lifecycle_seconds: float = 0.0

    @property
    def lifecycle_ratio(self) -> float:
        """The run / the same run without lifecycle and retention's statements."""
        return self.seconds / max(self.seconds - self.lifecycle_seconds, 1e-9)


@dataclass
class RecomputeResult:
    history: int
    tenants: int
    new_events: int
    scan_floor_seconds: float
    rollup_grain_seconds: float
    full: RunFigures
    copy_new_seconds: float
    incremental: RunFigures
    idle: RunFigures
    next_day: RunFigures
    digests_equal: bool
    days: int = HISTORY_DAYS
    grains_seconds: float = 0.0
    recomputed_rollup_rows: int = 0
    rounds: int = 1
    incremental_rounds: list[float] = field(default_factory=list)
    copy_rounds: list[float] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    explain: str = ""

    @property
    def full_ratio(self) -> float:
        return self.full.seconds / self.scan_floor_seconds

    @property
    def incremental_ratio(self) -> float:
        """Incremental run / COPY of the same events: the median of the rounds' ratios."""
        if self.incremental_rounds and len(self.incremental_rounds) == len(self.copy_rounds):
            return _median([i / c for i, c in zip(self.incremental_rounds, self.copy_rounds, strict=True)])
        return self.incremental.seconds / self.copy_new_seconds


def recompute_child(database_url: str, *, mode: str, now: datetime, extra: list[str] | None = None) -> RunFigures:
    """Run one recompute in a fresh process (as the Celery worker would) and return its figures."""
    env = production_env(database_url)
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, now.isoformat(), *(extra or [])],
        cwd=BASE_DIR, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"recompute child ({mode}) failed:\n{out.stderr[-3000:]}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return RunFigures(**data)


def _child(mode: str, now_text: str, extra: list[str]) -> None:
    import resource

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
    import django

    django.setup()
    from customers.metrics.recompute import metrics_recompute

    now = datetime.fromisoformat(now_text)
    started = time.perf_counter()
    if mode == "shard":
        from customers.metrics.fanout import tenant_metrics_shard_write

        written = tenant_metrics_shard_write(shard=int(extra[0]), shards=int(extra[1]), now=now)
        print(
            json.dumps({"written": written, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
        )
        return
    if mode.startswith("fanout"):
        # As the Celery fan-out does it: fold here, then one process per shard side by side
        # (the workers), then the finishing step. Reports the slowest shard's RSS.
        from customers.metrics.fanout import metrics_fanout_finish, metrics_recompute_fanout

        shards = int(extra[0])
        children: list[subprocess.Popen[str]] = []

        def dispatch(shard: int, total: int, moment: datetime) -> None:
            children.append(subprocess.Popen(
                [sys.executable, __file__, "--child", "shard", moment.isoformat(), str(shard), str(total)],
                cwd=BASE_DIR, stdout=subprocess.PIPE, text=True,
            ))  # fmt: skip

        result = metrics_recompute_fanout(shards=shards, dispatch=dispatch, full=mode == "fanout-full", now=now)
        outputs = [json.loads(child.communicate()[0].strip().splitlines()[-1]) for child in children]
        metrics_fanout_finish(now=now)
        result.tenants_written = sum(o["written"] for o in outputs)
        elapsed = time.perf_counter() - started
        peak = max([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024] + [o["peak_rss_mb"] for o in outputs])
        print(json.dumps({"seconds": elapsed, "peak_rss_mb": peak, "events_folded": result.events_folded,
                          "tenants_written": result.tenants_written, "mode": f"fanout x{shards}"}))  # fmt: skip
        return
    from django.db import connection

    lifecycle = [0.0]

    def lifecycle_timer(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not any(table in sql for table in LIFECYCLE_TABLES):
            return execute(sql, params, many, context)
        begun = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            lifecycle[0] += time.perf_counter() - begun

    with connection.execute_wrapper(lifecycle_timer):
        result = metrics_recompute(full=mode == "full", now=now)
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "peak_rss_mb": peak_mb, "events_folded": result.events_folded,
                      "tenants_written": result.tenants_written, "mode": result.mode,
                      "lifecycle_seconds": lifecycle[0]}))  # fmt: skip


def digests(database_url: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        return {table: value_of(conn.execute(sql), "digest") for table, sql in DIGEST_QUERIES.items()}


def _timed(database_url: str, sql: str, *, repeat: int = 2) -> float:
    import psycopg

    best = float("inf")
    with psycopg.connect(database_url) as conn:
        for _ in range(repeat):
            started = time.perf_counter()
            conn.execute(sql).fetchall()
            best = min(best, time.perf_counter() - started)
    return best


def database_name(history: History) -> str:
    span = "" if history.days == HISTORY_DAYS else f"_d{history.days}"
    return f"{BENCH_DB}_recompute_{history.events}{span}"


SCAN_FLOOR_SQL = "SELECT tenant_id, count(*) FROM ops_events WHERE is_real GROUP BY tenant_id"
_DAY = "date_bin('1 day', occurred_at, '2000-01-01T00:00:00Z'::timestamptz)"  # the engine's day bucket
ROLLUP_GRAIN_SQL = (
    f"SELECT count(*) FROM (SELECT tenant_id, event_type, {_DAY}, count(*),"
    " min(occurred_at), max(occurred_at) FROM ops_events WHERE is_real GROUP BY 1, 2, 3) x"
)
# The three grains a rebuild of the rollups must aggregate (customers.metrics.fold.fold_statements), as
# bare SELECTs with no writes: what any rebuild that produces these tables costs at least.
GRAIN_SQLS = (
    ROLLUP_GRAIN_SQL,
    f"SELECT count(*) FROM (SELECT tenant_id, user_id, {_DAY}, count(*) FROM ops_events"
    " WHERE is_real AND user_id <> '' GROUP BY 1, 2, 3) x",
    f"SELECT count(*) FROM (SELECT tenant_id, {_DAY}, COALESCE(NULLIF(session_id, ''), 'user:' || user_id), event_type,"
    " count(*) FROM ops_events WHERE is_real AND event_type IN (SELECT name FROM events_eventtype WHERE friction_weight > 0)"
    " GROUP BY 1, 2, 3, 4) x",
)
# Rollup rows (60-day window) of the tenants the incremental run recomputed: the newest COPY is one transaction.
RECOMPUTED_ROWS_SQL = (
    "SELECT count(*) AS n FROM ops_rollup_tenant_day r WHERE r.day > %s::date - 60 AND r.tenant_id IN"
    " (SELECT DISTINCT tenant_id FROM ops_events WHERE ingest_xid = (SELECT max(ingest_xid) FROM ops_events))"
)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def run_sizes(
    *,
    histories: list[History],
    tenants: int,
    new_events: int,
    rounds: int = 3,
    seed: int = 1,
    keep: History | None = None,
) -> dict[History, RecomputeResult]:
    """Measure every history size; the incremental rounds alternate between the sizes.

    The machine's speed moves minute to minute, so the figures compared with each other
    are taken side by side: in each of ``rounds`` rounds the same 100,000 new events are
    COPYed into each size's database and folded by an incremental run, one size after
    the other; each figure is the median of its rounds, and the growth with history is
    the median of the rounds' ratios. With ``keep`` that size's database stays
    (``database_name(keep)``) for the reads.
    """
    import psycopg

    base = base_database_url()
    urls: dict[History, str] = {}
    prepared: dict[History, dict[str, Any]] = {}
    try:
        for history in histories:
            template = history_database(base, count=history.events, tenants=tenants, seed=seed, days=history.days)
            url = urls[history] = scratch_database(base, database_name(history), template=template)
            tenants_ensure(url, tenants)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")  # a copied database has no statistics yet
            prepared[history] = {
                "scan_floor": _timed(url, SCAN_FLOOR_SQL),
                "rollup_grain": _timed(url, ROLLUP_GRAIN_SQL, repeat=1),
                "grains": sum(_timed(url, sql, repeat=1) for sql in GRAIN_SQLS),
                "full": recompute_child(url, mode="full", now=ANCHOR),
                "copies": [],
                "incrementals": [],
            }
        for k in range(rounds):
            new_csv = events_csv(count=new_events, tenants=tenants, seed=seed + 1000 + k, days=1, now=ANCHOR)
            moment = ANCHOR + timedelta(minutes=5 * (k + 1))
            for history in histories:
                url, figures = urls[history], prepared[history]
                figures["copies"].append(events_copy(url, new_csv))
                tenants_ensure(url)
                figures["incrementals"].append(recompute_child(url, mode="incremental", now=moment))
                if k == 0:
                    with psycopg.connect(url) as conn:
                        figures["recomputed_rows"] = value_of(conn.execute(RECOMPUTED_ROWS_SQL, [ANCHOR.date()]), "n")
        results: dict[History, RecomputeResult] = {}
        for history in histories:
            url, figures = urls[history], prepared[history]
            idle = recompute_child(url, mode="incremental", now=ANCHOR + timedelta(minutes=5 * (rounds + 1)))
            next_day = recompute_child(url, mode="incremental", now=ANCHOR + timedelta(days=1))
            after_incremental = digests(url)
            recompute_child(url, mode="full", now=ANCHOR + timedelta(days=1, minutes=5))
            after_full = digests(url)
            mismatched = [t for t in after_full if after_full[t] != after_incremental[t]]
            runs: list[RunFigures] = figures["incrementals"]
            median_run = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]
            incremental = RunFigures(
                seconds=_median([r.seconds for r in runs]), peak_rss_mb=max(r.peak_rss_mb for r in runs),
                events_folded=median_run.events_folded, tenants_written=median_run.tenants_written, mode="incremental",
                lifecycle_seconds=_median([r.lifecycle_seconds for r in runs]),
            )  # fmt: skip
            results[history] = RecomputeResult(
                history=history.events, days=history.days, tenants=tenants, new_events=new_events, scan_floor_seconds=figures["scan_floor"],
                rollup_grain_seconds=figures["rollup_grain"], full=figures["full"],
                copy_new_seconds=_median(figures["copies"]), incremental=incremental, idle=idle, next_day=next_day,
                digests_equal=not mismatched, mismatched=mismatched, grains_seconds=figures["grains"],
                recomputed_rollup_rows=figures.get("recomputed_rows", 0), rounds=rounds,
                incremental_rounds=[r.seconds for r in runs], copy_rounds=list(figures["copies"]),
            )  # fmt: skip
        return results
    finally:
        for history in urls:
            if history != keep:
                database_drop(base, database_name(history))


def history_growth(small: RecomputeResult, big: RecomputeResult) -> float:
    """The incremental run's growth with history: the median of the rounds' side-by-side ratios."""
    return _median([b / s for b, s in zip(big.incremental_rounds, small.incremental_rounds, strict=True)])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000000,10000000,10000000x600",
                        help="histories: events, or events x days (default 60 days)")  # fmt: skip
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--new", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="incremental rounds, alternating the sizes")
    parser.add_argument(
        "--keep", action="store_true", help="keep the largest, densest history's database for profiling"
    )
    args = parser.parse_args()
    sizes = [History(*(int(p) for p in s.split("x"))) for s in args.sizes.split(",")]
    results = run_sizes(histories=sizes, tenants=args.tenants, new_events=args.new, rounds=args.rounds,
                        keep=max(sizes, key=lambda h: (h.events, -h.days)) if args.keep else None)  # fmt: skip
    for r in results.values():
        print(f"history {r.history:,} events over {r.days} days, {r.tenants:,} tenants")
        print(f"  scan floor {r.scan_floor_seconds:.2f}s, rollup grain {r.rollup_grain_seconds:.2f}s,"
              f" three grains {r.grains_seconds:.2f}s")  # fmt: skip
        print(f"  full {r.full.seconds:.2f}s ({r.full_ratio:.1f}x floor), peak RSS {r.full.peak_rss_mb:.0f} MB")
        print(f"  COPY {r.new_events:,} new {r.copy_rounds}; incremental {r.incremental_rounds} "
              f"({r.incremental_ratio:.2f}x COPY), RSS {r.incremental.peak_rss_mb:.0f} MB")  # fmt: skip
        print(f"  idle run {r.idle.seconds:.2f}s; next-day run {r.next_day.seconds:.2f}s;"
              f" rollup rows of the recomputed tenants {r.recomputed_rollup_rows:,}")  # fmt: skip
        print(f"  lifecycle and retention: {r.full.lifecycle_seconds:.2f}s of the full run ({r.full.lifecycle_ratio:.3f}x"
              f" without), {r.incremental.lifecycle_seconds:.3f}s of the incremental ({r.incremental.lifecycle_ratio:.3f}x),"
              f" {r.next_day.lifecycle_seconds:.3f}s of the next-day run ({r.next_day.lifecycle_ratio:.3f}x)")  # fmt: skip
        print(f"  incremental == full: {r.digests_equal} {r.mismatched}")
    for history in sizes[1:]:
        print(f"growth, {history.label} / {sizes[0].label}: {history_growth(results[sizes[0]], results[history]):.2f}x")


if __name__ == "__main__":
    main()
