"""``GET /ops/infra``: who may read it, what it answers, and that it is documented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import override_settings

from infra.models import ApiRequestCount

pytestmark = pytest.mark.django_db

GIB = 1024**3
NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
HOUR = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SPEC_FIELDS = {
    "db_storage_days_to_limit",
    "redis_memory_days_to_limit",
    "db_growth_rate_gb_per_day",
    "api_growth_rate_pct_per_week",
}


def test_it_answers_401_without_credentials(client):
    response = client.get("/ops/infra")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_answers_403_to_an_ingest_key(ingest_client):
    assert ingest_client.get("/ops/infra").status_code == 403


def test_it_answers_a_read_key_and_a_staff_session(read_client, staff_client):
    for api_client in (read_client, staff_client):
        response = api_client.get("/ops/infra")
        assert response.status_code == 200
        assert SPEC_FIELDS <= response.json().keys()


@pytest.mark.parametrize("days", ["0", "366", "abc", "-1"])
def test_it_rejects_a_bad_series_length(read_client, days):
    response = read_client.get("/ops/infra", {"days": days})
    assert response.status_code == 400
    assert "days" in response.json()


@time_machine.travel(NOW, tick=False)
@override_settings(INFRA_DB_STORAGE_LIMIT_GB=20, INFRA_REDIS_MEMORY_LIMIT_MB=None)
def test_it_answers_the_spec_fields_from_the_snapshots(read_client, make_snapshot):
    # Daily readings at 00:30 for 7 days, 10 GiB + 1 GiB/day: the latest (today) 16 GiB;
    # headroom 4 GiB at 1 GiB/day = 4 days, a warning.
    for k in range(7):
        make_snapshot(
            NOW - timedelta(days=6 - k, hours=12),
            (10 + k) * GIB,
            redis_used_memory_bytes=1000,
            redis_maxmemory_bytes=None,
            api_requests_24h=100 * k,
        )
    # API requests: 300 in the prior week, 450 in the last: +50 % per week.
    ApiRequestCount.objects.bulk_create(
        [
            ApiRequestCount(hour=HOUR - timedelta(days=14), count=300),
            ApiRequestCount(hour=HOUR - timedelta(days=3), count=400),
            ApiRequestCount(hour=HOUR - timedelta(hours=1), count=50),
            ApiRequestCount(hour=HOUR, count=9999),  # the current hour is not whole yet
        ]
    )
    body = read_client.get("/ops/infra", {"days": 3}).json()
    assert body["db_storage_days_to_limit"] == 4
    assert body["db_growth_rate_gb_per_day"] == pytest.approx(1.0)
    assert body["api_growth_rate_pct_per_week"] == pytest.approx(50.0)
    # Redis: flat at 1000 bytes and no limit anywhere.
    assert body["redis_memory_days_to_limit"] is None
    assert body["redis_memory"]["limit_bytes"] is None
    assert "No limit is set" in body["redis_memory"]["reason"]
    db = body["db_storage"]
    assert db["current_bytes"] == 16 * GIB
    assert db["limit_bytes"] == 20 * GIB and db["limit_source"] == "settings"
    assert db["points"] == 7 and db["method"] == "least_squares" and db["level"] == "warning"
    assert db["days_to_limit"] == pytest.approx(4.0)
    assert db["fit"]["slope_bytes_per_day"] == pytest.approx(GIB)
    assert db["fit"]["intercept_bytes"] == pytest.approx(10 * GIB)
    assert db["projected_limit_at"] == "2026-03-14T00:30:00Z"
    assert body["api_requests"]["last_7d"] == 450 and body["api_requests"]["prior_7d"] == 300
    # Three days of series asked for: the readings of 8, 9 and 10 March.
    assert [(r["day"], r["db_size_bytes"]) for r in body["series"]] == [
        ("2026-03-08", 14 * GIB),
        ("2026-03-09", 15 * GIB),
        ("2026-03-10", 16 * GIB),
    ]


@time_machine.travel(NOW, tick=False)
def test_it_has_no_api_growth_without_a_full_prior_week(read_client):
    ApiRequestCount.objects.create(hour=HOUR - timedelta(days=10), count=5)
    body = read_client.get("/ops/infra").json()
    assert body["api_growth_rate_pct_per_week"] is None
    assert "counted only since 2026-02-28" in body["api_requests"]["reason"]


@time_machine.travel(NOW, tick=False)
def test_it_has_no_api_growth_from_a_silent_prior_week(read_client):
    ApiRequestCount.objects.create(hour=HOUR - timedelta(days=20), count=5)
    ApiRequestCount.objects.create(hour=HOUR - timedelta(days=2), count=5)
    body = read_client.get("/ops/infra").json()
    assert body["api_growth_rate_pct_per_week"] is None
    assert body["api_requests"]["prior_7d"] == 0
    assert "No API requests in the prior week" in body["api_requests"]["reason"]


def test_it_is_documented_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/ops/infra"]["get"]
    assert operation["operationId"] == "ops_infra"
    assert {"200", "401", "403"} <= operation["responses"].keys()
    assert any(p["name"] == "days" for p in operation["parameters"])
    component = schema["components"]["schemas"]["InfraLimits"]
    assert SPEC_FIELDS <= component["properties"].keys()
    assert "fit" in schema["components"]["schemas"]["ResourceProjection"]["properties"]
