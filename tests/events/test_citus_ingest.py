"""Ingest through HTTP on a Citus cluster while a worker restarts mid-stream: every batch the
server accepted is stored exactly once, and a batch it refused (a 503 while the worker was down)
is stored when the client resends it."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import requests
from django.db import connection

from events.services import api_key_create

pytestmark = [pytest.mark.citus, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BATCHES = 60
PER_BATCH = 50
TENANTS = [f"acct-{i}" for i in range(40)]


def _batch(n: int) -> list[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(days=1)
    return [
        {
            "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"citus-ingest/{n}/{i}")),
            "event_type": "INCIDENT_VIEWED",
            "tenant_id": TENANTS[(n * PER_BATCH + i) % len(TENANTS)],
            "user_id": f"user-{i % 7}",
            "occurred_at": (start + timedelta(seconds=n * PER_BATCH + i)).isoformat(),
        }
        for i in range(PER_BATCH)
    ]


def _worker_data_directory() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nodeport FROM pg_dist_node WHERE groupid > 0 ORDER BY nodeport LIMIT 1")
        (port,) = cursor.fetchone()
    with psycopg.connect(host="127.0.0.1", port=port, dbname="postgres", user="postgres") as worker:
        (data,) = worker.execute("SHOW data_directory").fetchone()
    return data


def _restart(data: str) -> None:
    subprocess.run(
        ["runuser", "-u", "postgres", "--", "pg_ctl", "-D", data, "-m", "fast", "-w", "restart"],
        check=True,
        capture_output=True,
        env={"PATH": "/usr/lib/postgresql/15/bin:/usr/bin:/bin"},
    )


def test_http_ingest_stores_exactly_the_accepted_events_across_a_worker_restart(live_server, settings):
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 0
    _, raw = api_key_create(name="citus", scope="ingest")
    data = _worker_data_directory()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {raw}"
    accepted = duplicates = refused = 0
    restarted_after: int | None = None
    restarter = threading.Thread(target=lambda: (time.sleep(0.5), _restart(data)))
    restarter.start()
    n = 0
    # Batches before, during and after the restart: at least BATCHES, and ten after it finished.
    while n < BATCHES or restarter.is_alive() or n < (restarted_after or 0) + 10:
        if restarted_after is None and not restarter.is_alive():
            restarted_after = n
        while True:
            response = session.post(f"{live_server.url}/api/v1/events", json={"events": _batch(n)}, timeout=30)
            if response.status_code == 200:
                body = response.json()
                accepted += body["accepted"]
                duplicates += body["duplicates"]
                break
            # The only refusal a worker restart may cause: a 503 the client retries after a pause.
            assert response.status_code == 503, (response.status_code, response.text[:300])
            assert "Retry-After" in response.headers
            refused += 1
            time.sleep(0.2)
        if n == 5:
            # A resend of a stored batch stores nothing.
            again = session.post(f"{live_server.url}/api/v1/events", json={"events": _batch(n)}, timeout=30)
            assert again.status_code == 200 and again.json()["accepted"] == 0
        n += 1
    restarter.join()
    assert restarted_after is not None and 0 < restarted_after
    with connection.cursor() as cursor:
        # A second phase the restart interrupted is Citus's recovery's to finish (it runs each minute).
        cursor.execute("SELECT recover_prepared_transactions()")
        cursor.execute("SELECT count(*), count(DISTINCT (tenant_id, event_id)) FROM ops_events")
        rows, distinct = cursor.fetchone()
    assert rows == distinct == accepted == n * PER_BATCH
    assert duplicates == 0
