"""The API request counter: per-hour totals across workers, and never a failed request."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection, connections
from django.test import override_settings

from infra.middleware import HourlyRequestCounter, request_counter
from infra.models import ApiRequestCount

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
HOUR = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
@override_settings(INFRA_REQUEST_COUNTER_FLUSH_SECONDS=0)
def test_it_counts_api_requests_and_not_other_pages(read_client, ingest_client, client):
    assert read_client.get("/ops/infra").status_code == 200
    assert (
        ingest_client.post("/api/v1/events", {"event_type": "LOGIN", "user_id": "u1"}, format="json").status_code == 200
    )
    # A rejected request is load too.
    assert client.get("/ops/infra").status_code == 401
    client.get("/admin/login/")
    client.get("/api/schema/")
    assert list(ApiRequestCount.objects.values_list("hour", "count")) == [(HOUR, 3)]


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
@override_settings(INFRA_REQUEST_COUNTER_FLUSH_SECONDS=3600)
def test_it_holds_counts_in_memory_until_the_flush_interval(read_client):
    read_client.get("/ops/infra")
    read_client.get("/ops/infra")
    assert ApiRequestCount.objects.count() == 0
    assert request_counter.pending() == {HOUR: 2}
    assert request_counter.flush() == 2
    assert ApiRequestCount.objects.get(hour=HOUR).count == 2


@pytest.mark.django_db
def test_two_workers_add_up_instead_of_overwriting():
    first, second = HourlyRequestCounter(), HourlyRequestCounter()
    for _ in range(3):
        first.add(NOW)
    for _ in range(4):
        second.add(NOW)
    second.add(datetime(2026, 3, 10, 13, 59, tzinfo=UTC))
    assert first.flush() == 3
    assert second.flush() == 5
    assert dict(ApiRequestCount.objects.values_list("hour", "count")) == {
        HOUR: 7,
        datetime(2026, 3, 10, 13, 0, tzinfo=UTC): 1,
    }
    # Flushed counts are gone from memory: a second flush writes nothing more.
    assert first.flush() == 0
    assert ApiRequestCount.objects.get(hour=HOUR).count == 7


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_lose_no_count():
    # 8 threads (each its own database connection, like 8 gunicorn workers) flush
    # 25 times each into the same two hour rows: 8 x 25 x 2 = 400 in total.
    hours = [datetime(2026, 3, 10, 12, 5, tzinfo=UTC), datetime(2026, 3, 10, 13, 5, tzinfo=UTC)]
    errors: list[BaseException] = []

    def worker() -> None:
        counter = HourlyRequestCounter()
        try:
            for _ in range(25):
                for at in hours:
                    counter.add(at)
                counter.flush()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(ApiRequestCount.objects.values_list("count", flat=True)) == [200, 200]


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
@override_settings(INFRA_REQUEST_COUNTER_FLUSH_SECONDS=0)
def test_a_failing_flush_keeps_the_counts_and_the_request_succeeds(ingest_client):
    with connection.cursor() as cursor:
        # A real database error for the counter's table only.
        cursor.execute("ALTER TABLE infra_api_request_count RENAME TO infra_api_request_count_away")
    response = ingest_client.post("/api/v1/events", {"event_type": "LOGIN", "user_id": "u1"}, format="json")
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert request_counter.pending() == {HOUR: 1}
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE infra_api_request_count_away RENAME TO infra_api_request_count")
    ingest_client.post("/api/v1/events", {"event_type": "LOGIN", "user_id": "u1"}, format="json")
    assert request_counter.pending() == {}
    assert ApiRequestCount.objects.get(hour=HOUR).count == 2


@pytest.mark.django_db
@override_settings(INFRA_REQUEST_COUNTER_FLUSH_SECONDS=0, INFRA_REDIS_URL="redis://127.0.0.1:1/0")
def test_requests_do_not_need_redis(read_client):
    # Redis down: the counter and the endpoint still answer.
    assert read_client.get("/ops/infra").status_code == 200
    assert ApiRequestCount.objects.get().count == 1
