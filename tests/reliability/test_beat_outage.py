"""Celery beat across a PostgreSQL outage at the moment it re-reads its schedule (issue 19).

A private cluster (tests/cluster.py) is stopped while beat re-reads the schedule; with
django-celery-beat's own DatabaseScheduler beat dies there, with ours it keeps running
and the next recompute runs once PostgreSQL is back. *process*
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.cluster import postgres_bin_dir, private_cluster
from tests.conftest import skip_or_fail
from tests.processes import BASE_DIR, celery_worker, manage, private_redis, project_env, wait_until

pytestmark = pytest.mark.slow

# The library's scheduler, with only its re-read interval made shorter for the test.
STOCK = "opsconsole.beat:RereadIntervalScheduler"
OURS = "opsconsole.beat:ResilientDatabaseScheduler"

SCHEDULE_A_RECOMPUTE_EVERY_2_SECONDS = """
from django_celery_beat.models import IntervalSchedule, PeriodicTask
every = IntervalSchedule.objects.create(every=2, period=IntervalSchedule.SECONDS)
PeriodicTask.objects.create(name="test: recompute", task="customers.metrics_recompute", interval=every)
"""

LAST_RUN_SQL = "SELECT last_incremental_at FROM ops_metrics_state LIMIT 1"


def _last_recompute(conninfo: str) -> object:
    try:
        with psycopg.connect(conninfo, connect_timeout=2) as conn:
            row = conn.execute(LAST_RUN_SQL).fetchone()
            return row[0] if row else None
    except psycopg.OperationalError:
        return None


@pytest.mark.parametrize("scheduler", [STOCK, OURS], ids=["django-celery-beat's scheduler", "ours"])
def test_beat_survives_postgres_stopped_at_the_schedule_re_read_and_runs_the_next_recompute(scheduler, tmp_path):
    if postgres_bin_dir() is None:
        skip_or_fail("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with private_cluster() as cluster, private_redis() as (redis_url, _redis):
        cluster.psql("CREATE DATABASE ops")
        env = {
            "DATABASE_URL": cluster.url("ops"),
            "CELERY_BROKER_URL": redis_url,
            "REDIS_URL": redis_url,
            # Re-read every 4 s (the library: 300 s) so an outage of a few seconds spans a re-read.
            "BEAT_SCHEDULE_REREAD_SECONDS": "4",
            "BEAT_SCHEDULE_RETRY_SECONDS": "1",
            "CONN_MAX_AGE": "0",
        }
        manage(["migrate", "--noinput", "-v", "0"], **env)
        manage(["shell", "-c", SCHEDULE_A_RECOMPUTE_EVERY_2_SECONDS], **env)
        beat_log = tmp_path / "beat.log"
        beat_args = [sys.executable, "-m", "celery", "-A", "opsconsole", "beat", "-l", "info", "-S", scheduler]
        beat_args += ["--max-interval", "1", "-s", str(tmp_path / "beat-schedule")]
        with celery_worker(log_path=tmp_path / "worker.log", **env), open(beat_log, "ab") as log:
            beat = subprocess.Popen(beat_args, cwd=BASE_DIR, env=project_env(**env), stdout=log, stderr=log)
            try:
                conninfo = cluster.conninfo("ops")
                wait_until(lambda: _last_recompute(conninfo) is not None, timeout=90, what="a first recompute")

                cluster.stop()
                time.sleep(9)  # at least two re-reads (every 4 s) fall in the outage
                text = Path(beat_log).read_text()
                if scheduler == STOCK:
                    # The failure of issue 19: the re-read's OperationalError ends beat for good.
                    wait_until(lambda: beat.poll() is not None, timeout=30, what="the stock beat to die")
                    assert "OperationalError" in Path(beat_log).read_text()
                    return
                assert beat.poll() is None, text[-3000:]
                assert "reading the schedule from the database failed" in text

                cluster.start()
                with psycopg.connect(conninfo) as conn:
                    back_at = conn.execute("SELECT now()").fetchone()[0]
                wait_until(
                    lambda: (_last_recompute(conninfo) or back_at) > back_at,
                    timeout=60,
                    what="a recompute after PostgreSQL came back",
                )
                assert beat.poll() is None
                assert "schedule read from the database again" in Path(beat_log).read_text()
            finally:
                if beat.poll() is None:
                    beat.terminate()
                    beat.wait(timeout=30)
