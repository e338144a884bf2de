"""Recompute: the metrics engine against the single-scan lower bound, in one run.

For each history size (1M and 10M events over 10,000 tenants by default):

1. Copy the cached history database (bench/common.py builds it once).
2. Lower bound: one hand-written aggregate that scans ops_events once
   (``SELECT tenant_id, count(*) ... GROUP BY tenant_id``), best of two. Also the
   rollup-grain aggregate (tenant, type, day) as context.
3. Full recompute (``metrics_recompute(full=True)``) in a child process: wall
   time and the child's peak RSS.
4. COPY 100,000 new events (``psql \\copy``, the table's indexes in place), then
   the incremental recompute that folds them: both times and the ratio.
5. An incremental run with nothing new, and one on the next day (every
   tenant's windows roll over), for context.
6. Correctness: the rollups and ops_tenant_metrics after the incremental runs
   equal a full rebuild (digests of every table).

Run: ``python bench/recompute.py [--sizes 1000000,10000000] [--new 100000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ANCHOR,
    BASE_DIR,
    BENCH_DB,
    base_database_url,
    database_drop,
    events_copy,
    events_csv,
    history_database,
    scratch_database,
    tenants_ensure,
)

# The tables a recompute writes, with the order that makes their digest deterministic.
DIGEST_QUERIES = {
    "ops_rollup_tenant_day": "SELECT md5(string_agg(t::text, '|' ORDER BY tenant_id, event_type, day)) FROM ops_rollup_tenant_day t",
    "ops_rollup_tenant_span": "SELECT md5(string_agg(t::text, '|' ORDER BY tenant_id, event_type)) FROM ops_rollup_tenant_span t",
    "ops_rollup_session_friction": "SELECT md5(string_agg(t::text, '|' ORDER BY tenant_id, day, session_key, event_type)) FROM ops_rollup_session_friction t",
    "ops_rollup_tenant_user_day": "SELECT md5(string_agg(t::text, '|' ORDER BY tenant_id, user_id, day)) FROM ops_rollup_tenant_user_day t",
    "ops_rollup_tenant_day_summary": "SELECT md5(string_agg(t::text, '|' ORDER BY tenant_id, day)) FROM ops_rollup_tenant_day_summary t",
    "ops_tenant_metrics": "SELECT md5(string_agg((to_jsonb(m) - 'computed_at')::text, '|' ORDER BY tenant_id)) FROM ops_tenant_metrics m",
}  # fmt: skip


@dataclass
class RunFigures:
    seconds: float
    peak_rss_mb: float
    events_folded: int
    tenants_written: int
    mode: str


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
    grains_seconds: float = 0.0
    recomputed_rollup_rows: int = 0
    mismatched: list[str] = field(default_factory=list)
    explain: str = ""

    @property
    def full_ratio(self) -> float:
        return self.full.seconds / self.scan_floor_seconds

    @property
    def incremental_ratio(self) -> float:
        return self.incremental.seconds / self.copy_new_seconds


def recompute_child(database_url: str, *, mode: str, now: datetime, extra: list[str] | None = None) -> RunFigures:
    """Run one recompute in a fresh process (as the Celery worker would) and return its figures."""
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "0", "SECRET_KEY": "bench-only-" + "x" * 60,
           "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING"}  # fmt: skip
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
    from customers.services import metrics_recompute

    now = datetime.fromisoformat(now_text)
    started = time.perf_counter()
    if mode == "shard":
        from customers.services import tenant_metrics_shard_write

        written = tenant_metrics_shard_write(shard=int(extra[0]), shards=int(extra[1]), now=now)
        print(
            json.dumps({"written": written, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
        )
        return
    if mode.startswith("fanout"):
        # As the Celery fan-out does it: fold here, then one process per shard side by side
        # (the workers), then the finishing step. Reports the slowest shard's RSS.
        from customers.services import metrics_fanout_finish, metrics_recompute_fanout

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
    else:
        result = metrics_recompute(full=mode == "full", now=now)
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "peak_rss_mb": peak_mb, "events_folded": result.events_folded,
                      "tenants_written": result.tenants_written, "mode": result.mode}))  # fmt: skip


def digests(database_url: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        return {table: conn.execute(sql).fetchone()[0] for table, sql in DIGEST_QUERIES.items()}


def _timed(database_url: str, sql: str, *, repeat: int = 2) -> float:
    import psycopg

    best = float("inf")
    with psycopg.connect(database_url) as conn:
        for _ in range(repeat):
            started = time.perf_counter()
            conn.execute(sql).fetchall()
            best = min(best, time.perf_counter() - started)
    return best


def database_name(history: int) -> str:
    return f"{BENCH_DB}_recompute_{history}"


SCAN_FLOOR_SQL = "SELECT tenant_id, count(*) FROM ops_events WHERE is_real GROUP BY tenant_id"
_DAY = "date_bin('1 day', occurred_at, '2000-01-01T00:00:00Z'::timestamptz)"  # the engine's day bucket
ROLLUP_GRAIN_SQL = (
    f"SELECT count(*) FROM (SELECT tenant_id, event_type, {_DAY}, count(*),"
    " min(occurred_at), max(occurred_at) FROM ops_events WHERE is_real GROUP BY 1, 2, 3) x"
)
# The three grains a rebuild of the rollups must aggregate (customers.services._fold_statements), as
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
    "SELECT count(*) FROM ops_rollup_tenant_day r WHERE r.day > %s::date - 60 AND r.tenant_id IN"
    " (SELECT DISTINCT tenant_id FROM ops_events WHERE ingest_xid = (SELECT max(ingest_xid) FROM ops_events))"
)


def run(*, history: int, tenants: int, new_events: int, seed: int = 1, keep: bool = False) -> RecomputeResult:
    """Measure one history size. With ``keep`` the database stays (``database_name(history)``) for the reads."""
    base = base_database_url()
    template = history_database(base, count=history, tenants=tenants, seed=seed)
    name = database_name(history)
    url = scratch_database(base, name, template=template)
    try:
        import psycopg

        tenants_ensure(url, tenants)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # a copied database has no statistics yet
        scan_floor = _timed(url, SCAN_FLOOR_SQL)
        rollup_grain = _timed(url, ROLLUP_GRAIN_SQL, repeat=1)
        grains = sum(_timed(url, sql, repeat=1) for sql in GRAIN_SQLS)
        full = recompute_child(url, mode="full", now=ANCHOR)
        new_csv = events_csv(count=new_events, tenants=tenants, seed=seed + 1000, days=1, now=ANCHOR)
        copy_new = events_copy(url, new_csv)
        tenants_ensure(url)
        incremental = recompute_child(url, mode="incremental", now=ANCHOR + timedelta(minutes=5))
        with psycopg.connect(url) as conn:
            recomputed_rows = conn.execute(RECOMPUTED_ROWS_SQL, [ANCHOR.date()]).fetchone()[0]
        idle = recompute_child(url, mode="incremental", now=ANCHOR + timedelta(minutes=10))
        next_day = recompute_child(url, mode="incremental", now=ANCHOR + timedelta(days=1))
        after_incremental = digests(url)
        recompute_child(url, mode="full", now=ANCHOR + timedelta(days=1, minutes=5))
        after_full = digests(url)
        mismatched = [t for t in after_full if after_full[t] != after_incremental[t]]
        return RecomputeResult(
            history=history, tenants=tenants, new_events=new_events, scan_floor_seconds=scan_floor,
            rollup_grain_seconds=rollup_grain, full=full, copy_new_seconds=copy_new, incremental=incremental,
            idle=idle, next_day=next_day, digests_equal=not mismatched, mismatched=mismatched,
            grains_seconds=grains, recomputed_rollup_rows=recomputed_rows,
        )  # fmt: skip
    finally:
        if not keep:
            database_drop(base, name)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--new", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database for profiling")
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        r = run(history=size, tenants=args.tenants, new_events=args.new, keep=args.keep)
        print(f"history {r.history:,} events, {r.tenants:,} tenants")
        print(f"  scan floor {r.scan_floor_seconds:.2f}s, rollup grain {r.rollup_grain_seconds:.2f}s,"
              f" three grains {r.grains_seconds:.2f}s")  # fmt: skip
        print(f"  full {r.full.seconds:.2f}s ({r.full_ratio:.1f}x floor), peak RSS {r.full.peak_rss_mb:.0f} MB")
        print(f"  COPY {r.new_events:,} new {r.copy_new_seconds:.2f}s; incremental {r.incremental.seconds:.2f}s "
              f"({r.incremental_ratio:.2f}x COPY), RSS {r.incremental.peak_rss_mb:.0f} MB")  # fmt: skip
        print(f"  idle run {r.idle.seconds:.2f}s; next-day run {r.next_day.seconds:.2f}s;"
              f" rollup rows of the recomputed tenants {r.recomputed_rollup_rows:,}")  # fmt: skip
        print(f"  incremental == full: {r.digests_equal} {r.mismatched}")


if __name__ == "__main__":
    main()
