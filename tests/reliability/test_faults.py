"""Faults with real processes: PostgreSQL restarted under an ingest stream, Redis
stopped during ingestion. Each test owns private instances it may stop."""

from __future__ import annotations

import shutil
import threading
import time

import psycopg
import pytest

from events.emitter import OpsEmitter
from tests.conftest import skip_or_fail
from tests.processes import gunicorn, manage, private_postgres, private_redis

pytestmark = pytest.mark.slow


def _raw_key(database_url: str) -> str:
    return (
        manage(["create_api_key", "fault-test", "--scope", "ingest"], DATABASE_URL=database_url)
        .strip()
        .splitlines()[-1]
    )


def test_a_postgres_restart_mid_stream_gives_503_and_loses_or_duplicates_nothing():
    with private_postgres() as pg, gunicorn(DATABASE_URL=pg.url, INGEST_RATE_LIMIT_PER_MINUTE="0") as url:
        emitter = OpsEmitter(url, _raw_key(pg.url), batch_size=100, backoff_base=0.2, backoff_max=2.0, max_retries=20)
        sent_ids: list[str] = []
        done = threading.Event()

        def stream() -> None:
            for index in range(6000):
                sent_ids.append(emitter.login(tenant_id=f"t{index % 20}", user_id=f"u{index % 300}"))
                if index % 100 == 99:
                    time.sleep(0.02)
            emitter.flush()
            done.set()

        sender = threading.Thread(target=stream)
        sender.start()
        time.sleep(1.0)
        pg.stop()
        time.sleep(3.0)  # requests during this window must be refused with 503, not 500
        pg.start()
        sender.join(timeout=120)
        assert done.is_set(), f"the stream did not finish: {emitter.attempts}"

        assert emitter.attempts["500"] == 0
        assert emitter.attempts["503"] + emitter.attempts["connection_error"] > 0, emitter.attempts
        with psycopg.connect(pg.server.get_uri(database="ops")) as conn:  # type: ignore[attr-defined]
            rows, distinct = conn.execute("SELECT count(*), count(DISTINCT event_id) FROM ops_events").fetchone()
        assert rows == distinct == len(set(sent_ids)) == 6000
        assert emitter.sent + emitter.duplicates == 6000


def test_ingestion_keeps_answering_while_redis_is_down():
    if shutil.which("redis-server") is None:
        skip_or_fail("redis-server is not installed")
    with private_postgres() as pg, private_redis() as (redis_url, redis_process):
        with gunicorn(DATABASE_URL=pg.url, REDIS_URL=redis_url, CELERY_BROKER_URL=redis_url) as url:
            emitter = OpsEmitter(url, _raw_key(pg.url), max_retries=0)
            emitter.login(tenant_id="acme", user_id="u1")
            emitter.flush()
            redis_process.kill()
            redis_process.wait()
            for index in range(5):
                emitter.login(tenant_id="acme", user_id=f"u{index}")
                emitter.flush()  # max_retries=0: any non-2xx would raise
            assert emitter.sent == 6
            assert set(emitter.attempts) == {"200"}
