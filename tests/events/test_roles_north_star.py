"""The north star and the single-page rule read roles, on a second product's vocabulary (Slotwise)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from events.classification import classification_pass, rules_fingerprint
from events.models import Event
from events.registry import event_type_put
from tests.scheduling_vocabulary import SCHEDULING_TYPES, scheduling_vocabulary_install

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 2, 8, 12, 0, tzinfo=UTC)


def item(event_type: str, user_id: str, occurred_at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "user_id": user_id,
        "tenant_id": "acme",
        "occurred_at": occurred_at.isoformat(),
        **fields,
    }


def test_the_current_state_rows_read_the_types_of_each_role(read_client, ingest):
    scheduling_vocabulary_install()
    ingest(
        item("account_created", "a", T0 - timedelta(days=6)),
        item("user_signed_in", "a", T0 - timedelta(days=2)),
        item("user_signed_in", "b", T0 - timedelta(hours=12)),
        item("Booking Created", "a", T0 - timedelta(days=1)),
        item("booking_confirmed", "demo-user", T0, metadata={"demo": True}),  # not real: never counts
        now=T0,
    )
    with time_machine.travel(T0, tick=False):
        body = read_client.get("/metrics/days-since-last-interaction").json()
    rows = {r["metric"]: r for r in body["current_state"]}
    assert (rows["signup"]["event_type"], rows["signup"]["days_since_last"]) == ("account_created", 6.0)
    assert (rows["login"]["event_type"], rows["login"]["days_since_first"]) == ("user_signed_in", 2.0)
    assert rows["login"]["days_since_last"] == 0.5
    assert rows["core_action"]["event_type"] == "Booking Created" and rows["core_action"]["status"] == "warning"
    assert rows["decision"]["event_type"] == "booking_confirmed" and rows["decision"]["status"] == "no_users_yet"
    assert body["total_users"] == 2


def test_a_role_held_by_two_types_reads_both(read_client, ingest):
    scheduling_vocabulary_install()
    event_type_put(name="sso_login", data={"north_star_role": "login", "counts_as_real_interaction": True})
    ingest(
        item("user_signed_in", "a", T0 - timedelta(days=3)),
        item("sso_login", "b", T0 - timedelta(days=1)),
        now=T0,
    )
    with time_machine.travel(T0, tick=False):
        rows = {r["metric"]: r for r in read_client.get("/metrics/days-since-last-interaction").json()["current_state"]}
    assert rows["login"]["event_type"] == "user_signed_in, sso_login"
    assert (rows["login"]["days_since_first"], rows["login"]["days_since_last"]) == (3.0, 1.0)


def test_the_single_page_rule_reads_the_products_page_views(ingest):
    scheduling_vocabulary_install()
    at = T0 - timedelta(hours=1)
    lone_view = item("$pageview", "u1", at, session_id="s-lone")
    lone_login = item("user_signed_in", "u2", at, session_id="s-login")  # alone, but not a page view
    ingest(lone_view, lone_login, now=T0)
    classification_pass(now=T0)
    assert Event.objects.get(event_id=lone_view["event_id"]).exclusion_reason == "single_page_visit"
    assert Event.objects.get(event_id=lone_login["event_id"]).is_real is True


def test_a_page_view_edit_changes_the_rules_fingerprint():
    before = rules_fingerprint()
    event_type_put(name="$pageview", data=SCHEDULING_TYPES["$pageview"])
    assert rules_fingerprint() != before
