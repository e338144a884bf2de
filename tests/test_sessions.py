"""Console sessions and their users remembered by the web process for a moment (opsconsole/sessions.py)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.customers.conftest import NOW, Ev, events_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def remembered(settings):
    settings.SESSION_CACHE_SECONDS = 3600
    settings.METRICS_VERSION_CHECK_SECONDS = 3600


def _logged_in(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def test_a_second_look_at_today_reads_nothing_from_the_database(remembered, staff_user):
    events_store([Ev("acme", "INCIDENT_VIEWED", NOW)])
    client = _logged_in(staff_user)
    assert client.get("/").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    assert [q["sql"] for q in queries.captured_queries] == []


def test_a_logout_ends_a_remembered_session_at_once(remembered, staff_user):
    client = _logged_in(staff_user)
    assert client.get("/").status_code == 200
    cookie = client.cookies["sessionid"].value
    assert client.post("/logout/").status_code == 302
    client.cookies["sessionid"] = cookie  # the old cookie, replayed
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_another_browser_of_the_same_user_gets_its_own_session(remembered, staff_user):
    laptop, phone = _logged_in(staff_user), _logged_in(staff_user)
    assert laptop.get("/").status_code == phone.get("/").status_code == 200
    laptop.post("/logout/")
    assert laptop.get("/").status_code == 302
    assert phone.get("/").status_code == 200
