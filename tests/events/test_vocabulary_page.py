"""The Vocabulary page: the names the product sends against the registry, and Today's link to it."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client

from events.registry import event_type_put
from events.vocabulary import seen_names
from tests.customers.conftest import NOW, Ev, days_ago, events_store

pytestmark = pytest.mark.django_db


def _page(client: Any, path: str = "/vocabulary/") -> str:
    with time_machine.travel(NOW, tick=False):
        response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def test_it_is_for_staff_only(db):
    assert Client().get("/vocabulary/").status_code == 302  # to the login page
    user = get_user_model().objects.create_user("viewer", "v@example.com", "pw-viewer-1")
    client = Client()
    client.force_login(user)
    assert client.get("/vocabulary/").status_code == 403


def test_it_lists_each_name_seen_with_counts_times_and_roles(staff_client):
    events_store(
        [Ev("acme", "INCIDENT_VIEWED", days_ago(d)) for d in (1, 2, 3)]
        + [Ev("acme", "INCIDENT_VIEWED", days_ago(40))]  # before the window: not counted
        + [Ev("acme", "login", days_ago(5, hour=9))]  # the registry spells it LOGIN
        + [Ev("acme", "Order Completed", days_ago(2))] * 2  # sent, never registered
    )
    body = _page(staff_client)
    assert seen_names(now=NOW)[0].name == "INCIDENT_VIEWED" and seen_names(now=NOW)[0].events == 3
    viewed = body.split('data-testid="seen-INCIDENT_VIEWED"')[1].split("</tr>")[0]
    assert '<td class="num">3</td>' in viewed
    assert "12 Mar 2026 12:00" in viewed and "14 Mar 2026 12:00" in viewed
    assert "core value; engagement weight 0.2" in viewed
    login = body.split('data-testid="seen-login"')[1].split("</tr>")[0]
    assert "yes (as <code>LOGIN</code>)" in login and "north star: login" in login
    assert "/admin/events/eventtype/LOGIN/change/" in login
    unknown = body.split('data-testid="seen-Order Completed"')[1].split("</tr>")[0]
    assert "<strong>no</strong>" in unknown
    assert 'href="/admin/events/eventtype/add/?name=Order+Completed"' in unknown
    # Registered types the product never sent, each with its edit link.
    assert 'data-testid="not-seen-CERT_GENERATED"' in body
    assert 'data-testid="not-seen-LOGIN"' not in body
    assert "/admin/events/eventtype/CERT_5FGENERATED/change/" in body  # admin's own quoting of "_"
    assert "1 event name(s) arriving that are not registered (Order Completed)" in body


def test_the_console_navigation_links_to_it(staff_client):
    assert 'href="/vocabulary/"' in _page(staff_client, "/infra/")


def test_today_links_to_it_while_no_core_value_type_has_been_seen(staff_client):
    events_store([Ev("acme", "API_CALL", days_ago(d)) for d in range(3)])
    body = _page(staff_client, "/")
    link = body.split('data-testid="vocabulary-link"')[1].split("</p>")[0]
    assert "no type marked as your core value has been seen in 30 days" in link
    assert 'href="/vocabulary/"' in link


def test_today_has_no_link_once_the_events_fit_the_registry(staff_client):
    event_type_put(name="api_ping", data={"category": "engagement"})
    events_store([Ev("acme", "INCIDENT_VIEWED", days_ago(1)), Ev("acme", "api_ping", days_ago(1))])
    assert 'data-testid="vocabulary-link"' not in _page(staff_client, "/")


def test_today_names_unregistered_names_sent_in_the_window_only(staff_client):
    events_store(
        [
            Ev("acme", "INCIDENT_VIEWED", days_ago(1)),
            Ev("acme", "Order Completed", days_ago(2)),  # sent this month, never registered
            Ev("acme", "legacy_click", days_ago(45)),  # unregistered, but not sent for 45 days
        ]
    )
    link = _page(staff_client, "/").split('data-testid="vocabulary-link"')[1].split("</p>")[0]
    assert "1 event name(s) arriving that are not registered (Order Completed)" in link
    assert "core value" not in link  # INCIDENT_VIEWED was seen


def test_names_sent_through_the_api_before_they_are_described_are_parked_and_listed(staff_client, ingest_client):
    sent = [
        {"tenant_id": "acme", "user_id": "u1", "event_type": name, "occurred_at": days_ago(1).isoformat()}
        for name in ("Task moved", "Task moved", "INCIDENT_VIEWED")
    ]
    with time_machine.travel(NOW, tick=False):
        receipt = ingest_client.post("/api/v1/events", {"events": sent}, format="json").json()
    assert (receipt["accepted"], receipt["parked_types"]) == (3, ["Task moved"])
    page = _page(staff_client)
    moved = page.split('data-testid="seen-Task moved"')[1].split("</tr>")[0]
    assert '<td class="num">2</td>' in moved and "<strong>no</strong>" in moved
    assert "are parked: kept, never counted, until you register them" in page
    link = _page(staff_client, "/").split('data-testid="vocabulary-link"')[1].split("</p>")[0]
    assert "1 event name(s) arriving that are not registered (Task moved)" in link


def test_one_action_removes_every_example_type_the_product_never_sent(staff_client):
    from events.models import EventType

    event_type_put(name="Task moved", data={"category": "value", "core_value": True})
    events_store([Ev("acme", "LOGIN", days_ago(1)), Ev("acme", "EXPORT_FAILED", days_ago(90))])
    page = _page(staff_client)
    assert 'data-testid="remove-examples"' in page
    with time_machine.travel(NOW, tick=False):
        response = staff_client.post("/vocabulary/examples/remove", follow=True)
    body = response.content.decode()
    assert "Removed 25 example types your product never sent: API_CALL, CERT_DOWNLOADED," in body
    # Sent (this month or long ago) or the founder's own: kept.
    assert set(EventType.objects.values_list("name", flat=True)) == {"LOGIN", "EXPORT_FAILED", "Task moved"}
    # EXPORT_FAILED, sent long ago, is still offered (the page reads 30 days); the action keeps it.
    assert "1 not sent in 30 days" in _page(staff_client)


def test_removing_the_examples_is_a_post_for_staff_only(db, staff_client):
    assert staff_client.get("/vocabulary/examples/remove").status_code == 405
    assert Client().post("/vocabulary/examples/remove").status_code == 302  # to the login page
