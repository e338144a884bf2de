"""Per-key ingest rate limits: 429 with Retry-After, exact under concurrent bursts."""

from __future__ import annotations

import json
import os
import socket
import threading
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime

import pytest
import time_machine

from core.models import ApiKey
from core.services import api_key_create
from events.ingestion.ratelimit import ingest_rate_windows_prune, redis_counter_key
from events.models import Event, IngestRateWindow

URL = "/api/v1/events"


def _login_event() -> dict:
    return {"event_id": str(uuid.uuid4()), "tenant_id": "acme", "event_type": "LOGIN"}


@pytest.mark.django_db
@time_machine.travel(datetime(2026, 3, 2, 12, 0, 45, tzinfo=UTC), tick=False)
def test_the_request_over_the_limit_gets_429_with_retry_after_and_stores_nothing(ingest_client, settings):
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 2
    assert ingest_client.post(URL, _login_event(), format="json").status_code == 200
    assert ingest_client.post(URL, _login_event(), format="json").status_code == 200
    refused = ingest_client.post(URL, _login_event(), format="json")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "15"  # 45 s into the minute
    assert "Rate limit" in refused.json()["detail"]
    assert Event.objects.count() == 2


@pytest.mark.django_db
def test_the_budget_is_per_key_and_resets_each_minute(make_key, settings):
    from rest_framework.test import APIClient

    settings.INGEST_RATE_LIMIT_PER_MINUTE = 1
    clients = []
    for name in ("a", "b"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key('ingest', name)[1]}")
        clients.append(client)
    with time_machine.travel(datetime(2026, 3, 2, 12, 0, 10, tzinfo=UTC), tick=False):
        assert [c.post(URL, _login_event(), format="json").status_code for c in clients] == [200, 200]
        assert clients[0].post(URL, _login_event(), format="json").status_code == 429
    with time_machine.travel(datetime(2026, 3, 2, 12, 1, 0, tzinfo=UTC), tick=False):
        assert clients[0].post(URL, _login_event(), format="json").status_code == 200


@pytest.mark.django_db
def test_a_per_key_limit_overrides_the_default_and_zero_means_unlimited(make_key, settings):
    from rest_framework.test import APIClient

    settings.INGEST_RATE_LIMIT_PER_MINUTE = 1
    key, raw = make_key("ingest", "bulk-loader")
    key.rate_limit_per_minute = 0
    key.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert [client.post(URL, _login_event(), format="json").status_code for _ in range(5)] == [200] * 5


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_burst_is_cut_at_exactly_the_limit(live_server, settings):
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 30
    _, raw = api_key_create(name="burst", scope="ingest")
    statuses: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def burst() -> None:
        barrier.wait()
        for _ in range(5):
            request = urllib.request.Request(
                live_server.url + URL,
                data=json.dumps(_login_event()).encode(),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {raw}"},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
                assert exc.headers["Retry-After"]
            with lock:
                statuses.append(status)

    with time_machine.travel(datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC), tick=False):
        threads = [threading.Thread(target=burst) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(set(statuses)) == [200, 429]
    assert statuses.count(200) == 30
    assert statuses.count(429) == 30
    assert Event.objects.count() == 30


@pytest.mark.django_db
def test_pruning_removes_only_finished_windows(make_key):
    key, _ = make_key("ingest")
    with time_machine.travel(datetime(2026, 3, 2, 12, 0, tzinfo=UTC), tick=False):
        IngestRateWindow.objects.create(api_key=key, window_start=datetime(2026, 3, 2, 10, 0, tzinfo=UTC), requests=5)
        IngestRateWindow.objects.create(api_key=key, window_start=datetime(2026, 3, 2, 11, 59, tzinfo=UTC), requests=5)
        assert ingest_rate_windows_prune() == 1
    assert IngestRateWindow.objects.get().window_start.hour == 11


@pytest.fixture
def redis_answering_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget a Redis failure an earlier test made this process remember."""
    monkeypatch.setattr("events.ingestion.ratelimit._redis_failed_at", float("-inf"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the socket is: nothing listens there


@pytest.mark.django_db
@time_machine.travel(datetime(2026, 3, 2, 12, 0, 45, tzinfo=UTC), tick=False)
def test_with_redis_configured_the_count_is_kept_there_with_the_same_429(
    ingest_client, settings, redis_url, redis_answering_again
):
    import redis

    settings.INGEST_RATE_LIMIT_REDIS_URL = redis_url
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 2
    statuses = [ingest_client.post(URL, _login_event(), format="json") for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[2]["Retry-After"] == "15"
    assert Event.objects.count() == 2
    assert not IngestRateWindow.objects.exists()  # nothing written to PostgreSQL for the count
    key = ApiKey.objects.get()
    window = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    client = redis.Redis.from_url(redis_url)
    assert int(client.get(redis_counter_key(key, window))) == 3
    assert 0 < client.ttl(redis_counter_key(key, window)) <= 120  # Redis drops it; nothing to prune


@pytest.mark.django_db
@time_machine.travel(datetime(2026, 3, 2, 12, 0, 45, tzinfo=UTC), tick=False)
def test_a_redis_that_forgot_the_counting_script_still_counts(
    ingest_client, settings, redis_url, redis_answering_again
):
    """The count is a script sent by its digest; a Redis restarted (or flushed) since has none, and
    the script is sent again rather than the count moving to PostgreSQL."""
    import redis

    settings.INGEST_RATE_LIMIT_REDIS_URL = redis_url
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 2
    client = redis.Redis.from_url(redis_url)
    assert ingest_client.post(URL, _login_event(), format="json").status_code == 200
    client.script_flush()
    assert ingest_client.post(URL, _login_event(), format="json").status_code == 200
    client.script_flush()
    assert ingest_client.post(URL, _login_event(), format="json").status_code == 429
    assert not IngestRateWindow.objects.exists()
    window = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert int(client.get(redis_counter_key(ApiKey.objects.get(), window))) == 3


@pytest.mark.django_db
@time_machine.travel(datetime(2026, 3, 2, 12, 0, 45, tzinfo=UTC), tick=False)
def test_while_redis_does_not_answer_requests_are_counted_in_postgresql(ingest_client, settings, redis_answering_again):
    settings.INGEST_RATE_LIMIT_REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 2
    statuses = [ingest_client.post(URL, _login_event(), format="json") for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[2]["Retry-After"] == "15"
    assert Event.objects.count() == 2
    assert IngestRateWindow.objects.get().requests == 3


@pytest.mark.django_db
@time_machine.travel(datetime(2026, 3, 2, 12, 0, 10, tzinfo=UTC), tick=False)
def test_once_redis_answers_again_the_count_goes_back_to_it(
    ingest_client, settings, redis_url, redis_answering_again, monkeypatch
):
    import redis

    monkeypatch.setattr("events.ingestion.ratelimit.REDIS_RETRY_SECONDS", 0.0)  # ask Redis again at once
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 10
    settings.INGEST_RATE_LIMIT_REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    assert ingest_client.post(URL, _login_event(), format="json").status_code == 200
    settings.INGEST_RATE_LIMIT_REDIS_URL = redis_url
    assert ingest_client.post(URL, _login_event(), format="json").status_code == 200
    key = ApiKey.objects.get()
    assert IngestRateWindow.objects.get().requests == 1
    window = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert int(redis.Redis.from_url(redis_url).get(redis_counter_key(key, window))) == 1


@pytest.mark.django_db
def test_a_redis_url_that_is_not_one_stops_the_start(monkeypatch):
    import subprocess
    import sys

    env = {**os.environ, "INGEST_RATE_LIMIT_REDIS_URL": "http://127.0.0.1:6379", "DEBUG": "1"}
    out = subprocess.run(
        [sys.executable, "-c", "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'opsconsole.settings'); django.setup()"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode != 0
    assert "INGEST_RATE_LIMIT_REDIS_URL must be a redis://" in out.stderr


@pytest.mark.django_db(transaction=True)
def test_the_postgresql_count_on_its_own_skips_the_disk_flush_and_leaves_the_session_as_it_was(make_key):
    from django.db import connection, transaction

    from events.ingestion.ratelimit import _count_in_postgres

    key, _ = make_key("ingest")

    def durability() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return str(cursor.fetchone()[0])

    server_default = durability()  # "on" as PostgreSQL ships; the test cluster's Citus runs with "off"
    window = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    sent: list[str] = []

    def record(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert _count_in_postgres(key, window) == 1
        with transaction.atomic():
            assert _count_in_postgres(key, window) == 2
            assert durability() == server_default  # a caller's transaction keeps its commit as it was
    assert "synchronous_commit TO OFF" in sent[0]
    assert "synchronous_commit" not in sent[1]
    assert durability() == server_default  # SET LOCAL ended with the count's own transaction
    assert IngestRateWindow.objects.get(api_key=key, window_start=window).requests == 2
