"""Faults in the background work, with real processes: a Celery worker SIGKILLed in the
middle of a recompute, two recomputes started at once, and Redis (the broker) stopped
while events keep arriving.

Each test owns a private PostgreSQL and Redis (tests/processes.py) and real
``celery -A opsconsole worker`` processes on them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from events.emitter import OpsEmitter
from tests.conftest import skip_or_fail
from tests.processes import (
    BASE_DIR,
    celery_worker,
    gunicorn,
    manage,
    private_postgres,
    private_redis,
    project_env,
    wait_until,
)

pytestmark = pytest.mark.slow

EVENT_TYPES = ["EXPORT_COMPLETED", "INCIDENT_VIEWED", "REPLAY_ABORTED", "LOGIN", "POLICY_BLOCK_REPEAT"]
# Everything the recompute writes. ops_tenant_metrics without computed_at (when, not what).
CACHE_TABLES = {
    "ops_rollup_tenant_day": "SELECT to_jsonb(t) FROM ops_rollup_tenant_day t",
    "ops_rollup_tenant_span": "SELECT to_jsonb(t) FROM ops_rollup_tenant_span t",
    "ops_rollup_session_friction": "SELECT to_jsonb(t) FROM ops_rollup_session_friction t",
    "ops_rollup_tenant_user_day": "SELECT to_jsonb(t) FROM ops_rollup_tenant_user_day t",
    "ops_tenant_metrics": "SELECT to_jsonb(t) - 'computed_at' FROM ops_tenant_metrics t",
}


@pytest.fixture(autouse=True)
def _needs_redis_server() -> None:
    if shutil.which("redis-server") is None:
        skip_or_fail("redis-server is not installed")


def _events_load(db: psycopg.Connection[Any], *, first: int, count: int, tenants: int = 40) -> None:
    """``count`` real events over the last 20 days across ``tenants`` tenants, in one transaction."""
    db.execute(
        "INSERT INTO customers_tenant (tenant_id, name, kind, first_seen_at, notes) "
        "SELECT 't' || i, '', 'customer', now() - interval '40 days', '' FROM generate_series(0, %s - 1) i "
        "ON CONFLICT DO NOTHING",
        [tenants],
    )
    db.execute(
        """
        INSERT INTO ops_events (event_id, tenant_id, user_id, session_id, event_type, occurred_at, received_at,
                                metadata, friction_signal, is_real, exclusion_reason)
        SELECT gen_random_uuid(), 't' || (i %% %(tenants)s), 'u' || (i %% 97), 's' || (i %% 1009), et.name,
               now() - ((i %% 480) || ' hours')::interval, now(), '{}', et.friction_signal, true, ''
        FROM generate_series(%(first)s::int, %(first)s::int + %(count)s::int - 1) i
        JOIN events_eventtype et ON et.name = (%(types)s::text[])[1 + i %% %(ntypes)s]
        """,
        {"tenants": tenants, "first": first, "count": count, "types": EVENT_TYPES, "ntypes": len(EVENT_TYPES)},
    )


def _cache(db: psycopg.Connection[Any]) -> dict[str, list[str]]:
    return {
        table: sorted(json.dumps(row, sort_keys=True) for (row,) in db.execute(sql).fetchall())
        for table, sql in CACHE_TABLES.items()
    }


def _watermark(db: psycopg.Connection[Any]) -> int | None:
    row = db.execute("SELECT watermark_xid FROM ops_metrics_state").fetchone()
    return None if row is None else int(row[0])


def _task_send(name: str, **env: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "opsconsole", "call", name],
        cwd=BASE_DIR,
        env=project_env(**env),
        check=True,
        capture_output=True,
    )


def _worker_env(pg_url: str, redis_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": pg_url,
        "CELERY_BROKER_URL": redis_url,
        "REDIS_URL": redis_url,
        # Short, so the test sees the redelivery within seconds (production: 600 s).
        "CELERY_BROKER_VISIBILITY_TIMEOUT": "5",
        "CELERY_BROKER_RESTORE_INTERVAL": "1",
    }


def _ready(log: Path) -> bool:
    return log.exists() and " ready." in log.read_text(errors="replace")


@contextmanager
def _recompute_held_at_its_write(
    db: psycopg.Connection[Any], dsn: str, log: Path, env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[bytes], psycopg.Connection[Any], int]]:
    """A worker's recompute held in the middle: it has folded the new events into the rollups and
    moved the watermark (in its transaction) and now waits to write ops_tenant_metrics, which the
    blocking connection has locked. Yields the worker, that connection and the waiting backend's pid."""
    blocker = psycopg.connect(dsn)
    blocker.execute("LOCK TABLE ops_tenant_metrics IN EXCLUSIVE MODE")
    with celery_worker(log_path=log, **env) as worker:
        wait_until(lambda: _ready(log), timeout=60, what=f"the worker logging to {log.name}")
        _task_send("customers.metrics_recompute", **env)

        def stuck_backend() -> int | None:
            row = db.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = 'ops' AND wait_event_type = 'Lock' "
                "AND query LIKE '%%INSERT INTO ops_tenant_metrics%%'"
            ).fetchone()
            return None if row is None else int(row[0])

        wait_until(lambda: stuck_backend() is not None, timeout=60, what="the recompute to reach its write")
        yield worker, blocker, stuck_backend()


def test_a_worker_killed_mid_recompute_is_redelivered_and_ends_equal_to_a_full_rebuild(tmp_path):
    with private_postgres() as pg, private_redis() as (redis_url, _):
        env = _worker_env(pg.url, redis_url)
        dsn = pg.server.get_uri(database="ops")  # type: ignore[attr-defined]
        with psycopg.connect(dsn, autocommit=True) as db:
            _events_load(db, first=0, count=20_000)
            manage(["recompute_metrics"], **env)  # the cache the pages show before the killed run
            _events_load(db, first=20_000, count=20_000)  # what the killed run is folding
            before, watermark_before = _cache(db), _watermark(db)

            held = _recompute_held_at_its_write(db, dsn, tmp_path / "worker-1.log", env)
            with held as (worker, blocker, orphan):
                # Mid-run, from another connection (what every page and API call reads): the
                # previous run's numbers, not half of this one.
                assert _cache(db) == before
                assert _watermark(db) == watermark_before

                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()

            # The dead worker's backend notices the closed socket (client_connection_check_interval)
            # and rolls back, releasing the metrics lock, although its INSERT is still blocked by us.
            wait_until(
                lambda: db.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [orphan]).fetchone()[0] == 0,
                timeout=30,
                what="the killed worker's backend to roll back",
            )
            blocker.rollback()
            blocker.close()
            assert db.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0] == 0
            assert _cache(db) == before  # nothing of the killed run was committed
            # The message was taken but never acknowledged (acks_late): Redis still holds it.
            assert redis.Redis.from_url(redis_url).hlen("unacked") == 1

            second_log = tmp_path / "worker-2.log"
            with celery_worker(log_path=second_log, **env):
                wait_until(
                    lambda: (_watermark(db) or 0) > (watermark_before or 0),
                    timeout=90,
                    what="the redelivered recompute to commit",
                )
                # The task commits, then returns and is acknowledged: the worker stops only after that.
                wait_until(
                    lambda: "succeeded" in second_log.read_text(errors="replace"),
                    timeout=60,
                    what="the redelivered task to finish",
                )
            log = second_log.read_text(errors="replace")
            assert "customers.metrics_recompute" in log and "succeeded" in log, log[-3000:]
            assert "metrics recompute (incremental): 20000 events folded" in log, log[-3000:]
            assert redis.Redis.from_url(redis_url).hlen("unacked") == 0

            after_redelivery = _cache(db)
            assert after_redelivery != before
            manage(["recompute_metrics", "--full"], **env)
            assert _cache(db) == after_redelivery
            assert db.execute("SELECT sum(value) FROM ops_rollup_tenant_day").fetchone()[0] == 40_000


def test_a_pool_process_killed_mid_recompute_requeues_the_task_at_once(tmp_path):
    """The OOM killer picks the pool process, not the worker: the worker survives and, with
    CELERY_TASK_REJECT_ON_WORKER_LOST, requeues the task instead of acknowledging it as failed."""
    import psutil

    with private_postgres() as pg, private_redis() as (redis_url, _):
        env = {**_worker_env(pg.url, redis_url), "CELERY_BROKER_VISIBILITY_TIMEOUT": "3600"}  # no sweep can help
        dsn = pg.server.get_uri(database="ops")  # type: ignore[attr-defined]
        with psycopg.connect(dsn, autocommit=True) as db:
            _events_load(db, first=0, count=10_000)
            manage(["recompute_metrics"], **env)
            _events_load(db, first=10_000, count=10_000)
            watermark_before = _watermark(db)
            log = tmp_path / "worker.log"
            with _recompute_held_at_its_write(db, dsn, log, env) as (worker, blocker, _):
                (pool_process,) = psutil.Process(worker.pid).children()
                pool_process.send_signal(signal.SIGKILL)
                wait_until(
                    lambda: (
                        db.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%INSERT INTO ops_tenant_metrics%%' "
                            "AND pid <> pg_backend_pid()"
                        ).fetchone()[0]
                        == 0
                    ),
                    timeout=30,
                    what="the killed process's backend to roll back",
                )
                blocker.rollback()
                blocker.close()
                wait_until(
                    lambda: (_watermark(db) or 0) > (watermark_before or 0),
                    timeout=60,
                    what="the requeued recompute to commit",
                )
                assert worker.poll() is None
            text = log.read_text(errors="replace")
            assert "WorkerLostError" in text or "exited prematurely" in text, text[-3000:]
            assert db.execute("SELECT sum(value) FROM ops_rollup_tenant_day").fetchone()[0] == 20_000
            folded = _cache(db)
            manage(["recompute_metrics", "--full"], **env)
            assert _cache(db) == folded


def test_two_recomputes_started_at_once_one_runs_one_skips_and_both_say_so(tmp_path):
    with private_postgres() as pg:
        dsn = pg.server.get_uri(database="ops")  # type: ignore[attr-defined]
        with psycopg.connect(dsn, autocommit=True) as db:
            _events_load(db, first=0, count=5_000)
            # Hold the lock table write so the first run is still running when the second starts.
            blocker = psycopg.connect(dsn)
            blocker.execute("LOCK TABLE ops_tenant_metrics IN EXCLUSIVE MODE")
            command = [sys.executable, "manage.py", "recompute_metrics"]
            run_env = project_env(DATABASE_URL=pg.url)
            first = subprocess.Popen(command, cwd=BASE_DIR, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            wait_until(
                lambda: (
                    db.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted").fetchone()[0]
                    == 1
                ),
                timeout=60,
                what="the first recompute to take the lock",
            )
            second = subprocess.run(command, cwd=BASE_DIR, env=run_env, capture_output=True, text=True, check=True)
            blocker.rollback()
            blocker.close()
            out, err = first.communicate(timeout=120)
            assert first.returncode == 0, err

    # The skipping run says so on stdout and in the log; the one that ran says what it did.
    assert "skipped: another recompute is running" in second.stdout
    assert "metrics recompute skipped: another run holds the lock" in second.stderr
    assert "full: 5000 events folded" in out.decode()
    assert "metrics recompute (full): 5000 events folded" in err.decode()


def test_the_recompute_catches_up_on_events_ingested_while_redis_was_down(tmp_path):
    with private_postgres() as pg, private_redis() as (redis_url, redis_process):
        env = _worker_env(pg.url, redis_url)
        dsn = pg.server.get_uri(database="ops")  # type: ignore[attr-defined]
        raw_key = manage(["create_api_key", "fault", "--scope", "ingest"], DATABASE_URL=pg.url).strip().splitlines()[-1]
        log = tmp_path / "worker.log"
        with (
            psycopg.connect(dsn, autocommit=True) as db,
            gunicorn(**env, INGEST_RATE_LIMIT_PER_MINUTE="0") as url,
            celery_worker(log_path=log, **env) as worker,
        ):
            wait_until(lambda: _ready(log), timeout=60, what="the worker")
            # A fresh web worker loads the project on its first request: seconds on a loaded machine.
            emitter = OpsEmitter(url, raw_key, batch_size=50, max_retries=0, timeout=60)
            for index in range(100):
                emitter.export_completed(tenant_id=f"t{index % 5}", user_id=f"u{index}")
            emitter.flush()
            _task_send("customers.metrics_recompute", **env)
            wait_until(
                lambda: (db.execute("SELECT sum(events_30d) FROM ops_tenant_metrics").fetchone()[0] or 0) == 100,
                timeout=60,
                what="the first recompute",
            )

            redis_process.send_signal(signal.SIGKILL)
            redis_process.wait()
            # Redis is down: ingestion must not notice (max_retries=0 raises on a non-2xx, and the
            # default timeout on a request that waits for Redis).
            emitter = OpsEmitter(url, raw_key, batch_size=50, max_retries=0)
            for index in range(250):
                emitter.export_completed(tenant_id=f"t{index % 5}", user_id=f"v{index}")
            emitter.flush()
            assert set(emitter.attempts) == {"200"}
            assert worker.poll() is None, "the worker died with its broker"

            # Redis comes back on the same port; the worker reconnects and the next recompute
            # (sent as beat would) folds everything that arrived during the outage.
            port = redis_url.rsplit(":", 1)[1].split("/")[0]
            with _redis_on(port):
                wait_until(lambda: _redis_ping(redis_url), timeout=30, what="Redis to come back")
                _task_send("customers.metrics_recompute", **env)
                wait_until(
                    lambda: (db.execute("SELECT sum(events_30d) FROM ops_tenant_metrics").fetchone()[0] or 0) == 350,
                    timeout=90,
                    what="the recompute to catch up after the outage",
                )
            assert db.execute("SELECT count(*), count(DISTINCT event_id) FROM ops_events").fetchone() == (350, 350)


def _redis_ping(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


class _redis_on:
    """Start redis-server again on a fixed port (the worker's broker URL)."""

    def __init__(self, port: str) -> None:
        self.port = port

    def __enter__(self) -> subprocess.Popen[bytes]:
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", self.port, "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        return self.process

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait()
