"""Backtest: a 180-day weekly walk-forward backtest against one full rebuild, in one run.

On a copy of the cached history database (by default 10M events over 600 days, 10,000
tenants, so every as-of date has a full history behind it):

1. One full rebuild (``metrics_recompute(full=True)``) in a child process: the yardstick.
2. Churns for 2% of the tenants, on dates spread over the window, so the learned model is
   fitted walk-forward as it would be for a founder with churns recorded.
3. The backtest (``validation.services``: 26 weekly dates, horizons 30 and 60) in a child
   process: wall time (scoring the dates; learning and the report), and the child's peak RSS.
4. Correctness: on its last date (the day of the rebuild) the backtest's scores equal the
   live engine's ``ops_tenant_metrics`` for every customer (the same code, the same day).

Run: ``python bench/backtest.py [--events 10000000 --days 600 --tenants 10000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ANCHOR,
    BASE_DIR,
    BENCH_DB,
    base_database_url,
    database_drop,
    history_database,
    production_env,
    scratch_database,
    tenants_ensure,
)
from bench.recompute import RunFigures, recompute_child
from core.rows import value_of

CHURN_SHARE_SQL = """
INSERT INTO playbooks_churnrecord (tenant_id, date, reason, created_at, created_by)
SELECT t.tenant_id, %(end)s::date - (abs(hashtext(t.tenant_id)) %% %(days)s), 'bench', now(), 'bench'
FROM customers_tenant t WHERE abs(hashtext(t.tenant_id || 'churn')) %% 100 < %(percent)s
"""
# Customers whose live score differs from the backtest's on the day of the rebuild.
MISMATCH_SQL = """
SELECT count(*) AS n FROM ops_tenant_metrics m
JOIN customers_tenant t ON t.tenant_id = m.tenant_id AND t.kind = 'customer'
LEFT JOIN ops_backtest_score s ON s.run_id = %(run)s AND s.as_of = %(day)s AND s.tenant_id = m.tenant_id
WHERE m.last_seen_at IS NOT NULL AND (s.tenant_id IS NULL OR s.risk_signal_strength <> m.risk_signal_strength)
"""


# The backtest's churn model adopted as a founder would (customers.ChurnModel), straight from its report, unless
# the run adopted it itself (RISK_RANKING=auto, the default, when the model won).
MODEL_ADOPT_SQL = """
INSERT INTO customers_churn_model (version, definition, evidence, backtest_run_id, created_by, created_at, is_active,
                                   deactivated_by)
SELECT 1, r.report -> 'model_definition', '{}'::jsonb, r.id, 'bench', now(), true, ''
FROM ops_backtest_run r WHERE r.id = %(run)s AND r.report -> 'model_definition' <> 'null'::jsonb
  AND NOT EXISTS (SELECT 1 FROM customers_churn_model)
"""
MODEL_ACTIVE_SQL = "SELECT count(*) AS n FROM customers_churn_model WHERE is_active"


@dataclass
class BacktestResult:
    events: int
    tenants: int
    history_days: int
    full: RunFigures
    seconds: float
    scoring_seconds: float
    peak_rss_mb: float
    dates: int
    scores: int
    churns: int
    mismatched: int
    # A new day's run (every customer recomputed) under the heuristic, then under the adopted model.
    day_run_spec: RunFigures | None = None
    day_run_model: RunFigures | None = None

    @property
    def model_scoring_ratio(self) -> float | None:
        if self.day_run_spec is None or self.day_run_model is None:
            return None
        return self.day_run_model.seconds / self.day_run_spec.seconds

    @property
    def ratio(self) -> float:
        return self.seconds / self.full.seconds


def _child(days: int, step: int) -> None:
    import resource

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
    import django

    django.setup()
    from validation.services import backtest_run_execute, backtest_run_prepare

    started = time.perf_counter()
    scored_at = [started]

    def progress(done: int, total: int) -> None:
        if done == total:
            scored_at.append(time.perf_counter())

    run = backtest_run_prepare(days=days, step=step, horizons=[30, 60], end_day=ANCHOR.date())
    run = backtest_run_execute(run, progress=progress)
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "run": run.pk,
                "seconds": elapsed,
                "scoring_seconds": scored_at[-1] - started,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "dates": len(run.dates_done),
                "scores": run.scores.count(),
            }
        )
    )


def run(*, events: int, tenants: int, history_days: int, days: int = 180, step: int = 7) -> BacktestResult:
    import psycopg

    base = base_database_url()
    template = history_database(base, count=events, tenants=tenants, days=history_days)
    name = f"{BENCH_DB}_backtest"
    url = scratch_database(base, name, template=template)
    try:
        tenants_ensure(url, tenants)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # a copied database has no statistics yet
        full = recompute_child(url, mode="full", now=ANCHOR)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(CHURN_SHARE_SQL, {"end": ANCHOR.date() - timedelta(days=1), "days": days, "percent": 2})
            churns = value_of(conn.execute("SELECT count(*) AS n FROM playbooks_churnrecord"), "n")
        env = production_env(url)
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(days), str(step)], cwd=BASE_DIR, env=env, capture_output=True,
            text=True,
        )  # fmt: skip
        if out.returncode:
            raise RuntimeError(f"backtest child failed:\n{out.stderr[-3000:]}")
        data = json.loads(out.stdout.strip().splitlines()[-1])
        with psycopg.connect(url) as conn:
            mismatched = value_of(conn.execute(MISMATCH_SQL, {"run": data["run"], "day": ANCHOR.date()}), "n")
        # Scoring every customer with the adopted model: a new day's incremental run (every row is stale)
        # under the heuristic, then the next day's with the model adopted.
        previous = os.environ.get("RISK_RANKING")
        try:
            os.environ["RISK_RANKING"] = "spec"
            day_spec = recompute_child(url, mode="incremental", now=ANCHOR + timedelta(days=1))
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(MODEL_ADOPT_SQL, {"run": data["run"]})
                adopted = value_of(conn.execute(MODEL_ACTIVE_SQL), "n")
            os.environ["RISK_RANKING"] = "learned"
            day_model = recompute_child(url, mode="incremental", now=ANCHOR + timedelta(days=2)) if adopted else None
        finally:
            if previous is None:
                os.environ.pop("RISK_RANKING", None)
            else:
                os.environ["RISK_RANKING"] = previous
        return BacktestResult(
            events=events, tenants=tenants, history_days=history_days, full=full, seconds=data["seconds"],
            scoring_seconds=data["scoring_seconds"], peak_rss_mb=data["peak_rss_mb"], dates=data["dates"],
            scores=data["scores"], churns=churns, mismatched=mismatched, day_run_spec=day_spec,
            day_run_model=day_model,
        )  # fmt: skip
    finally:
        database_drop(base, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=2, metavar=("DAYS", "STEP"))
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=600, help="days of generated history")
    parser.add_argument("--tenants", type=int, default=10_000)
    args = parser.parse_args()
    if args.child:
        _child(int(args.child[0]), int(args.child[1]))
        return
    r = run(events=args.events, tenants=args.tenants, history_days=args.days)
    print(f"full rebuild {r.full.seconds:.2f}s; backtest {r.seconds:.2f}s ({r.ratio:.2f}x; scoring {r.scoring_seconds:.2f}s)"
          f", peak RSS {r.peak_rss_mb:.0f} MB, {r.dates} dates, {r.scores:,} scores, {r.churns} churns,"
          f" mismatched {r.mismatched}; a new day's run {r.day_run_spec.seconds if r.day_run_spec else 0:.2f}s under"
          f" the heuristic, {r.day_run_model.seconds if r.day_run_model else 0:.2f}s with the model"
          f" ({r.model_scoring_ratio or 0:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
