"""GET /ops/lifecycle and GET /ops/retention: who may read them, what a bad parameter gets, what they say."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from customers.metrics.recompute import metrics_recompute
from tests.customers.conftest import Ev


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/ops/lifecycle?weeks=0", "greater than or equal to 1"),
        ("/ops/lifecycle?weeks=53", "less than or equal to 52"),
        ("/ops/lifecycle?weeks=twelve", "valid integer"),
        ("/ops/lifecycle?weeks=1.5", "valid integer"),
        ("/ops/lifecycle?weeks=99999999999999999999999", "less than or equal to 52"),
        ("/ops/retention?months=-1", "greater than or equal to 1"),
        ("/ops/retention?months=25", "less than or equal to 24"),
        ("/ops/retention?months=twelve", "valid integer"),
        ("/ops/retention?months=%00", "valid integer"),
    ],
)
def test_a_bad_window_is_a_400_naming_the_parameter(db, read_client, url, message):
    response = read_client.get(url)
    assert response.status_code == 400
    [field] = response.json()
    assert field in ("weeks", "months")
    assert message in response.json()[field][0]


@pytest.mark.parametrize("url", ["/ops/lifecycle", "/ops/retention"])
def test_only_a_read_key_or_staff_reads_them(db, ingest_client, staff_client, read_client, url):
    assert APIClient().get(url).status_code in (401, 403)
    assert ingest_client.get(url).status_code == 403
    assert staff_client.get(url).status_code == 200
    assert read_client.get(url).status_code == 200


def test_the_answers_carry_the_weeks_and_cohorts_as_computed(metrics_db, read_client):
    # UTC weeks and months; NOW is Sunday 15 March 2026 (week of Monday 9 March).
    metrics_db(
        [
            Ev("alpha", "API_CALL", at("2026-02-18")),
            Ev("alpha", "API_CALL", at("2026-03-10")),
            Ev("bravo", "API_CALL", at("2026-03-04")),
        ]
    )
    metrics_recompute()
    lifecycle = read_client.get("/ops/lifecycle?weeks=3").json()
    assert lifecycle == {
        "time_zone": "UTC",
        "weeks": [
            {"week": "2026-02-23", "new": 0, "returning": 0, "resurrecting": 0, "dormant": 1, "partial": False},
            {"week": "2026-03-02", "new": 1, "returning": 0, "resurrecting": 0, "dormant": 0, "partial": False},
            {"week": "2026-03-09", "new": 0, "returning": 0, "resurrecting": 1, "dormant": 1, "partial": True},
        ],
    }
    retention = read_client.get("/ops/retention?months=2").json()
    assert retention["currency"] == "USD"
    assert [
        (c["cohort"], c["accounts"], [(x["accounts"], x["share"]) for x in c["cells"]]) for c in retention["cohorts"]
    ] == [
        ("2026-02-01", 1, [(1, 1.0), (1, 1.0)]),
        ("2026-03-01", 1, [(1, 1.0)]),
    ]
    assert read_client.get("/ops/retention?months=1").json()["cohorts"][0]["cohort"] == "2026-03-01"
