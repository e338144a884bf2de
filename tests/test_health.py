"""/healthz and /readyz, and the operator-true 503s of opsconsole/middleware.py."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta

import psycopg
import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from customers.metrics.recompute import metrics_recompute
from events.models import Event
from opsconsole import health
from tests.processes import database_conninfo


@pytest.fixture(autouse=True)
def _migrations_not_remembered() -> None:
    health._migrations_applied = False


def test_healthz_answers_ok_without_the_database():
    response = Client().get("/healthz")
    assert (response.status_code, response.content) == (200, b"ok")


@pytest.mark.django_db
def test_readyz_is_ready_with_a_fresh_recompute_and_a_beating_beat():
    metrics_recompute()
    every = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.create(name="t", task="x", interval=every, last_run_at=timezone.now() - timedelta(seconds=70))
    response = Client().get("/readyz")
    body = response.json()
    assert (response.status_code, body["status"]) == (200, "ready"), body
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["database_writable"] == {"ok": True}
    assert body["checks"]["disk"]["ok"] is True
    assert body["checks"]["migrations"] == {"ok": True, "pending": []}
    assert body["checks"]["recompute"]["ok"] and body["checks"]["recompute"]["age_seconds"] < 60
    assert body["checks"]["beat"]["ok"] and 69 <= body["checks"]["beat"]["last_run_age_seconds"] < 130


@pytest.mark.django_db
def test_readyz_stays_200_but_degraded_when_beat_is_silent_and_metrics_never_ran():
    every = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    silent_for = settings.BEAT_HEARTBEAT_STALE_SECONDS + 60
    PeriodicTask.objects.create(
        name="t", task="x", interval=every, last_run_at=timezone.now() - timedelta(seconds=silent_for)
    )
    response = Client().get("/readyz")
    body = response.json()
    assert (response.status_code, body["status"]) == (200, "degraded")
    assert body["checks"]["recompute"] == {
        "ok": False,
        "age_seconds": None,
        "stale_after_seconds": settings.METRICS_STALE_AFTER_MINUTES * 60,
    }
    assert body["checks"]["beat"]["ok"] is False and body["checks"]["beat"]["last_run_age_seconds"] >= silent_for


@pytest.mark.django_db
def test_readyz_is_503_while_a_migration_is_not_applied():
    latest = MigrationRecorder.Migration.objects.filter(app="events").order_by("-name").first()
    latest.delete()  # as if the new code were deployed before `migrate` ran (rolled back after the test)
    response = Client().get("/readyz")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["migrations"] == {"ok": False, "pending": [f"events.{latest.name}"]}


def _ingest(client: Client, key: str, count: int = 3) -> object:
    events = [{"event_id": str(uuid.uuid4()), "tenant_id": "acme", "event_type": "LOGIN"} for _ in range(count)]
    return client.post(
        "/api/v1/events",
        data=json.dumps({"events": events}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


def _database_setting(name: str, value: str | None) -> None:
    """ALTER DATABASE ... SET for new connections of the test database (RESET with None)."""
    with psycopg.connect(_conninfo(), autocommit=True) as admin:
        database = settings.DATABASES["default"]["NAME"]
        if value is None:
            admin.execute(f'ALTER DATABASE "{database}" RESET {name}')
        else:
            admin.execute(f"ALTER DATABASE \"{database}\" SET {name} = '{value}'")
    connection.close()  # the next request opens a connection with the new setting


def _conninfo() -> str:
    return database_conninfo()


@pytest.mark.django_db(transaction=True)
def test_a_read_only_database_gets_its_own_503_message_and_log_line(make_key, caplog):
    _, key = make_key("ingest")
    _database_setting("default_transaction_read_only", "on")
    try:
        with caplog.at_level(logging.WARNING, logger="opsconsole.middleware"):
            response = _ingest(Client(), key)
    finally:
        _database_setting("default_transaction_read_only", None)
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response.json()["reason"] == "read_only"
    assert "read-only" in response.json()["detail"] and "nothing was stored" in response.json()["detail"]
    assert any("database is read-only: DATABASE_URL points at a standby" in r.getMessage() for r in caplog.records)
    assert Event.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_database_timeout_gets_its_own_503_message_and_log_line(make_key, caplog):
    _, key = make_key("ingest")
    _database_setting("lock_timeout", "300ms")
    database = settings.DATABASES["default"]["NAME"]
    try:
        with psycopg.connect(database_conninfo(database)) as locker:
            # A long migration holding its lock: every statement touching ops_events waits, then times out.
            locker.execute("LOCK TABLE ops_events IN ACCESS EXCLUSIVE MODE")
            with caplog.at_level(logging.WARNING, logger="opsconsole.middleware"):
                response = _ingest(Client(), key)
            locker.rollback()
    finally:
        _database_setting("lock_timeout", None)
    assert response.status_code == 503
    assert response.json() == {
        "detail": "The database did not answer in time; nothing was stored. Retry after a few seconds.",
        "reason": "timeout",
    }
    assert any(r.getMessage().startswith("database timeout") for r in caplog.records)
    assert Event.objects.count() == 0


def test_a_worker_lost_behind_a_citus_coordinator_is_a_503_not_a_500():
    from django.db import InternalError

    from opsconsole.middleware import database_failure_classify

    for text in (
        "terminating connection due to administrator command",
        "failure on connection marked as essential: 127.0.0.1:5451",
        "connection to the remote node postgres@127.0.0.1:5451 failed with the following error: Connection refused",
    ):
        failure = database_failure_classify(InternalError(text))
        assert failure is not None and failure.reason == "connection_lost", text
    assert database_failure_classify(InternalError("some other internal error")) is None


@pytest.fixture
def write_failure_file(settings, tmp_path):
    settings.DATABASE_WRITE_FAILURE_FILE = tmp_path / "database_write_failure.json"
    return settings.DATABASE_WRITE_FAILURE_FILE


def test_readyz_fails_while_ingest_is_refused_for_a_full_disk_and_recovers_once_an_event_is_stored(
    make_key, write_failure_file, monkeypatch
):
    from django.db import OperationalError

    from events.ingestion import services

    _, key = make_key("ingest")
    client = Client()
    assert _ingest(client, key).status_code == 200
    assert client.get("/readyz").json()["checks"]["database_writable"] == {"ok": True}

    stored = services.validated_store

    def disk_full(*args: object, **kwargs: object) -> object:
        raise OperationalError('could not extend file "base/16384/16390": No space left on device')

    monkeypatch.setattr(services, "validated_store", disk_full)
    refused = _ingest(client, key)
    assert (refused.status_code, refused.json()["reason"]) == (503, "disk_full")
    ready = client.get("/readyz")
    body = ready.json()
    # The database answers a probe, but nothing can be stored: the node is not ready.
    assert (ready.status_code, body["status"], body["checks"]["database"]) == (503, "not_ready", {"ok": True})
    assert body["checks"]["database_writable"]["ok"] is False
    assert body["checks"]["database_writable"]["reason"] == "disk_full"
    assert "disk is full" in body["checks"]["database_writable"]["detail"]

    # No new refusal for READYZ_WRITE_FAILURE_SECONDS: the load balancer may try the node again.
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.READYZ_WRITE_FAILURE_SECONDS + 5)):
        assert client.get("/readyz").json()["checks"]["database_writable"] == {"ok": True}

    monkeypatch.setattr(services, "validated_store", stored)
    assert _ingest(client, key).status_code == 200  # space was freed: the next batch is stored
    assert client.get("/readyz").json()["checks"]["database_writable"] == {"ok": True}
    assert not write_failure_file.exists()


@pytest.mark.django_db(transaction=True)
def test_readyz_fails_on_a_read_only_database(write_failure_file):
    _database_setting("default_transaction_read_only", "on")
    try:
        ready = Client().get("/readyz")
    finally:
        _database_setting("default_transaction_read_only", None)
    assert ready.status_code == 503
    assert ready.json()["checks"]["database_writable"]["reason"] == "read_only"


@pytest.mark.django_db
def test_readyz_reports_a_low_disk_and_fails_only_when_it_holds_the_database(settings, tmp_path):
    settings.READYZ_MIN_FREE_MB = 10**12  # more than any disk has
    settings.VAR_DIR = tmp_path
    settings.EMBEDDED_DATABASE = False
    ready = Client().get("/readyz")
    assert (ready.status_code, ready.json()["status"]) == (200, "degraded")
    assert ready.json()["checks"]["disk"]["low"] == ["var"]

    (tmp_path / "pgdata").mkdir()
    settings.EMBEDDED_DATABASE = True  # the database's own disk is the one running out
    ready = Client().get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["disk"]["low"] == ["database", "var"]
