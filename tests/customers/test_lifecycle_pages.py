"""The lifecycle chart on Today and Customers, and the Retention page, as the founder reads them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from customers.metrics.recompute import metrics_recompute
from tests.customers.conftest import Ev


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    cache.clear()  # drawn once per recompute; frozen clocks repeat run stamps across tests


@pytest.fixture
def history(metrics_db) -> None:
    # NOW is Sunday 15 March 2026 (UTC). alpha: February and March; bravo: only this month.
    metrics_db(
        [
            Ev("alpha", "API_CALL", at("2026-02-18")),
            Ev("alpha", "API_CALL", at("2026-03-10")),
            Ev("bravo", "API_CALL", at("2026-03-04")),
        ]
    )
    metrics_recompute()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/", "/customers/", "/retention/"])
def test_the_lifecycle_chart_shows_each_weeks_stages(history, staff_client, path):
    body = staff_client.get(path).content.decode()
    chart = re.search(r'data-testid="lifecycle-chart">(.*?)</div>', body, re.S).group(1)
    # This week (9 Mar): alpha back after a week off, bravo gone quiet; last week bravo was new.
    assert "<title>09 Mar: 1 resurrecting</title>" in chart
    assert "<title>09 Mar: 1 dormant</title>" in chart
    assert "<title>02 Mar: 1 new</title>" in chart
    assert "Resurrecting</strong>: active this week after at least one week without real activity" in body


@pytest.mark.django_db(transaction=True)
def test_the_retention_page_shows_each_cohort_by_month(history, staff_client):
    body = staff_client.get("/retention/").content.decode()
    february = re.search(r'data-testid="cohort-2026-02">(.*?)</tr>', body, re.S).group(1)
    assert '<th scope="row">Feb 2026</th>' in february
    assert [cell for cell in re.findall(r">(\d+%)<", february)] == ["100%", "100%"]
    march = re.search(r'data-testid="cohort-2026-03">(.*?)</tr>', body, re.S).group(1)
    assert re.findall(r">(\d+%)<", march) == ["100%"]
    assert 'aria-current="page"' in body.split('href="/retention/"')[1][:40]


@pytest.mark.django_db
def test_the_retention_page_is_for_staff_only():
    assert Client().get("/retention/").status_code == 302
    client = Client()
    client.force_login(get_user_model().objects.create_user("customer", password="pw-customer-1"))
    assert client.get("/retention/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_without_any_activity_the_pages_say_so(metrics_db, staff_client):
    metrics_recompute()
    today = staff_client.get("/").content.decode()
    assert "No data yet" in re.search(r'data-testid="lifecycle-chart">(.*?)</div>', today, re.S).group(1)
    assert "No cohorts yet" in staff_client.get("/retention/").content.decode()
