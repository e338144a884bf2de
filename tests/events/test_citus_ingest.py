"""Ingest through HTTP on a Citus cluster while a worker restarts mid-stream: every batch the
server accepted is stored exactly once, and a batch it refused (a 503 while the worker was down)
is stored when the client resends it."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import requests
from django.db import connection

from core.services import api_key_create
from tests.cluster import as_server_user

# exclusive: it restarts a worker node of the cluster every other test uses.
pytestmark = [pytest.mark.citus, pytest.mark.slow, pytest.mark.exclusive, pytest.mark.django_db(transaction=True)]

BATCHES = 60
PER_BATCH = 50
RESTART_AT = 10  # the batch before which the worker restart starts
TENANTS = [f"acct-{i}" for i in range(40)]


# One second per event from three days back: however many batches the restart takes, none is in the future.
START = datetime.now(UTC) - timedelta(days=3)


def _batch(n: int) -> list[dict[str, Any]]:
    return [
        {
            "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"citus-ingest/{n}/{i}")),
            "event_type": "INCIDENT_VIEWED",
            "tenant_id": TENANTS[(n * PER_BATCH + i) % len(TENANTS)],
            "user_id": f"user-{i % 7}",
            "occurred_at": (START + timedelta(seconds=n * PER_BATCH + i)).isoformat(),
        }
        for i in range(PER_BATCH)
    ]


@dataclass(frozen=True)
class _Worker:
    port: int
    data_directory: str
    bin_directory: str

    def started_at(self) -> datetime:
        with psycopg.connect(host="127.0.0.1", port=self.port, dbname="postgres", user="postgres") as worker:
            (started,) = worker.execute("SELECT pg_postmaster_start_time()").fetchone()
        return started


def _first_worker() -> _Worker:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nodeport FROM pg_dist_node WHERE groupid > 0 ORDER BY nodeport LIMIT 1")
        (port,) = cursor.fetchone()
    with psycopg.connect(host="127.0.0.1", port=port, dbname="postgres", user="postgres") as worker:
        (data,) = worker.execute("SHOW data_directory").fetchone()
        # The worker's own binaries: the pg_ctl that started it is the one that may restart it.
        (bin_directory,) = worker.execute("SELECT setting FROM pg_config WHERE name = 'BINDIR'").fetchone()
    return _Worker(port, data, bin_directory)


def _restart(worker: _Worker, failures: list[BaseException]) -> None:
    try:
        pg_ctl = f"{worker.bin_directory}/pg_ctl"
        # -l sends the server's output to its log: without it the server holds this pipe open for ever.
        log = f"{worker.data_directory}/log"
        subprocess.run(
            as_server_user([pg_ctl, "-D", worker.data_directory, "-l", log, "-m", "fast", "-w", "restart"]),
            check=True,
            capture_output=True,
        )
    except BaseException as error:
        # The main thread fails the test with it: a restart that did not happen proves nothing.
        failures.append(error)


def _send(session: requests.Session, url: str, events: list[dict[str, Any]]) -> tuple[dict[str, Any], int]:
    """POST the batch until it is answered 200, as a client honouring 503 + Retry-After does.
    Returns the 200's body and how many 503s came before it."""
    refused = 0
    while True:
        response = session.post(f"{url}/api/v1/events", json={"events": events}, timeout=30)
        if response.status_code == 200:
            return response.json(), refused
        # The only refusal a worker restart may cause: a 503 the client retries after a pause.
        assert response.status_code == 503, (response.status_code, response.text[:300])
        assert "Retry-After" in response.headers
        refused += 1
        time.sleep(0.2)


def test_http_ingest_stores_exactly_the_accepted_events_across_a_worker_restart(live_server, settings):
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 0
    _, raw = api_key_create(name="citus", scope="ingest")
    worker = _first_worker()
    started_before = worker.started_at()
    failures: list[BaseException] = []
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {raw}"
    accepted = first_try_duplicates = resent_duplicates = refused = 0
    restarted_after: int | None = None
    restarter = threading.Thread(target=_restart, args=(worker, failures))
    n = 0
    deadline = time.monotonic() + 180  # a restart that hangs fails the test instead of sending for ever
    try:
        # Batches before, during and after the restart: at least BATCHES, and ten after it finished.
        while n < BATCHES or restarted_after is None or n < restarted_after + 10:
            assert time.monotonic() < deadline, f"the worker restart had not finished after {n} batches"
            if n == RESTART_AT:
                restarter.start()  # once the server is warm, so that the restart overlaps batches in flight
            elif n > RESTART_AT and restarted_after is None and not restarter.is_alive():
                restarted_after = n
            body, refusals = _send(session, live_server.url, _batch(n))
            accepted += body["accepted"]
            refused += refusals
            if refusals:
                resent_duplicates += body["duplicates"]  # a 503 may come after its commit: the resend finds the rows
            else:
                first_try_duplicates += body["duplicates"]
            if n == 5:
                # A resend of a stored batch stores nothing.
                again, _ = _send(session, live_server.url, _batch(n))
                assert again["accepted"] == 0 and again["duplicates"] == PER_BATCH
            n += 1
    finally:
        # A failure above must not leave the worker down for the tests after this one.
        if restarter.ident is not None:
            restarter.join()
        # This test's own coordinator session cached a connection to the worker that went away.
        connection.close()
    assert not failures, failures
    assert worker.started_at() > started_before  # the worker really went down and came back mid-stream
    assert restarted_after is not None
    with connection.cursor() as cursor:
        # A second phase the restart interrupted is Citus's recovery's to finish (it runs each minute).
        cursor.execute("SELECT recover_prepared_transactions()")
        cursor.execute("SELECT count(*), count(DISTINCT (tenant_id, event_id)) FROM ops_events")
        rows, distinct = cursor.fetchone()
    # Every batch stored exactly once, and every event answered as stored exactly once.
    assert rows == distinct == n * PER_BATCH, (rows, distinct, n, refused)
    assert accepted + resent_duplicates == n * PER_BATCH
    assert first_try_duplicates == 0
