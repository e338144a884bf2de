"""Playbook conditions in roles: names in any case, roles resolved from the registry, values that
could break a recompute refused, and the seeded playbooks matching their archetypes in a second
product (Slotwise, tests/scheduling_vocabulary.py) with hand-worked values.

The frozen clock puts as_of on 2026-03-15 (UTC), as in test_evaluation.py.
"""

from __future__ import annotations

import math

import pytest

from customers.metrics.recompute import metrics_recompute
from customers.models import TenantMetrics
from events.registry import event_type_put, event_type_registry
from playbooks.conditions import condition_text
from playbooks.models import Playbook, PlaybookMatch, TriggerCondition
from tests.customers.conftest import Ev, days_ago, example_types_sent
from tests.playbooks.conftest import admin_form_data, matched, side_output_only
from tests.scheduling_vocabulary import scheduling_vocabulary_install

CHANGE_URL = "/admin/playbooks/playbook/policy_friction/change/"


def measured(tenant_id: str, playbook_id: str) -> list[dict[str, object]]:
    return PlaybookMatch.objects.get(playbook__purpose="risk", tenant_id=tenant_id, playbook_id=playbook_id).measured


def bookings(tenant_id: str, days: range) -> list[Ev]:
    return [Ev(tenant_id, "Booking Created", days_ago(d)) for d in days]


# --- The seeded playbooks on the default vocabulary ------------------------------------------------
@pytest.mark.django_db
def test_the_seeded_playbooks_are_stored_in_roles_and_read_as_the_default_types():
    stored = {
        p.pk: [c.event_types for c in p.conditions.all() if c.event_types]
        for p in Playbook.objects.prefetch_related("conditions")
    }
    assert stored["policy_friction"] == ["blocked events"]
    assert stored["abandonment"] == ["friction events weighing 2+"]
    assert stored["legal_only"] == ["side_value events", "engaged events"]
    legal_only = TriggerCondition.objects.filter(playbook="legal_only")
    # Before the product sends them, the example types are not named: the roles read in plain words.
    texts = [condition_text(c, registry=event_type_registry()) for c in legal_only]
    assert texts == ["1+ side-feature events in 30 days", "no events that count as use in 30 days"]
    example_types_sent()
    texts = [condition_text(c, registry=event_type_registry()) for c in legal_only]
    assert texts == [
        "1+ CERT_GENERATED or CERT_DOWNLOADED in 30 days",
        "no INCIDENT_VIEWED, REPLAY_COMPLETED or EXPORT_COMPLETED in 30 days",
    ]


# --- Names in any case and roles, in admin -----------------------------------------------------------
@pytest.mark.django_db
def test_admin_accepts_a_registered_type_in_any_case_and_keeps_its_spelling(admin_client):
    event_type_put(name="invoice_sent", data={"category": "value", "core_value": True})
    playbook = Playbook.objects.get(pk="policy_friction")
    data = admin_form_data(playbook, conditions=[{"event_types": "INVOICE_SENT", "operator": "==", "threshold": "0"}])
    response = admin_client.post(CHANGE_URL, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    condition = TriggerCondition.objects.get(playbook=playbook)
    assert condition.event_types == "invoice_sent"
    assert str(condition) == "no invoice_sent in 7 days"


@pytest.mark.django_db
def test_admin_accepts_roles_and_saves_them_in_one_spelling(admin_client):
    playbook = Playbook.objects.get(pk="policy_friction")
    data = admin_form_data(playbook, conditions=[{"event_types": " Core_Value  Events , login", "threshold": "1"}])
    assert admin_client.post(CHANGE_URL, data).status_code == 302
    condition = TriggerCondition.objects.get(playbook=playbook)
    assert condition.event_types == "core_value events,LOGIN"
    # The example core-value types were never sent: the role reads in plain words, the named type by name.
    assert str(condition) == "1+ core actions or LOGIN in 7 days"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"event_types": "banana events"}, "Unknown event type(s): banana events"),
        ({"threshold": "1e308"}, "The threshold must be a number from 0 to 1,000,000,000"),
        ({"threshold": "-5"}, "The threshold must be a number from 0 to 1,000,000,000"),
        ({"threshold": "inf"}, "Enter a number."),
        ({"window_days": "40000"}, "window_days must be between 1 and 90"),
        ({"window_days": "91"}, "window_days must be between 1 and 90"),
        ({"window_days": "0"}, "window_days must be between 1 and 90"),
    ],
)
def test_admin_refuses_a_value_that_would_break_a_recompute(admin_client, change, message):
    playbook = Playbook.objects.get(pk="policy_friction")
    response = admin_client.post(CHANGE_URL, admin_form_data(playbook, conditions=[change]))
    assert response.status_code == 200
    assert message in response.content.decode().replace("&#x27;", "'")
    condition = TriggerCondition.objects.get(playbook=playbook)
    assert (condition.event_types, condition.threshold, condition.window_days) == ("blocked events", 3.0, 7)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("threshold", "window_days"),
    [(1e308, 7), (-5.0, 7), (math.nan, 7), (3.0, 32767), (3.0, 0)],
)
def test_the_evaluation_never_stops_on_an_admin_value(metrics_db, threshold, window_days):
    """Values written past admin (a shell, SQL) are skipped with the playbook, never half-evaluated,
    and every other playbook still matches."""
    broken = Playbook.objects.create(id="broken", name="Broken", risk_level="critical", success_metric="-")
    TriggerCondition.objects.create(
        playbook=broken,
        metric="event_count",
        event_types="blocked events",
        operator=">=",
        threshold=threshold,
        window_days=window_days,
    )
    metrics_db(
        [Ev("blocked", "INCIDENT_VIEWED", days_ago(d)) for d in range(30)]
        + [Ev("blocked", "POLICY_BLOCK_REPEAT", days_ago(1), session_id="s9") for _ in range(4)]
    )
    metrics_recompute()
    assert matched("blocked") == ["policy_friction"]
    assert TenantMetrics.objects.get(tenant_id="blocked").risk_level == "medium"


# --- A second product: Slotwise ----------------------------------------------------------------------
@pytest.fixture
def slotwise(metrics_db):
    scheduling_vocabulary_install()
    return metrics_db


@pytest.mark.django_db(transaction=True)
def test_policy_friction_matches_the_products_own_block(slotwise):
    slotwise(
        bookings("acme", range(30))
        + [Ev("acme", "double_booking_blocked", days_ago(1), session_id="s9") for _ in range(4)]
        + bookings("calm", range(30))
    )
    metrics_recompute()
    assert matched("acme") == ["policy_friction"]
    assert measured("acme", "policy_friction") == [
        {"condition": "3+ Double-booking block in 7 days", "metric": "event_count", "value": 4}
    ]
    assert matched("calm") == []


@pytest.mark.django_db(transaction=True)
def test_abandonment_counts_abandoned_bookings_not_idle_searches(slotwise):
    events = bookings("gaveup", range(30)) + bookings("idle", range(30))
    events += [Ev("gaveup", "Booking Abandoned", days_ago(d), session_id=f"a{d}") for d in (2, 3, 6)]
    events += [Ev("gaveup", "Booking Abandoned", days_ago(7), session_id="old")]  # 7 days ago: out of the window
    events += [Ev("idle", "slot_search_idle", days_ago(d), session_id=f"i{d}") for d in range(5)]  # weight 1 < 2
    slotwise(events)
    metrics_recompute()
    assert matched("gaveup") == ["abandonment"]
    assert measured("gaveup", "abandonment") == [
        {"condition": "3+ Booking Abandoned in 7 days", "metric": "event_count", "value": 3}
    ]
    assert TenantMetrics.objects.get(tenant_id="gaveup").risk_level == "high"
    assert matched("idle") == []


@pytest.mark.django_db(transaction=True)
def test_side_output_only_matches_reports_without_any_booking(slotwise):
    slotwise(side_output_only("reports", side_output="availability_report_exported", core_value="Booking Created"))
    metrics_recompute()
    assert matched("reports") == ["legal_only"]
    assert measured("reports", "legal_only") == [
        {"condition": "1+ Availability report in 30 days", "metric": "event_count", "value": 10},
        {"condition": "no Booking Created or Booking confirmed in 30 days", "metric": "event_count", "value": 0},
    ]
    assert matched("mixed") == []


@pytest.mark.django_db(transaction=True)
def test_engagement_decay_reads_the_products_engagement_weights(slotwise):
    # 23 bookings on days 7..29 and one today (weight 1): delta = 1 / (24 / 4.3) = 0.1792.
    slotwise(bookings("decay", range(7, 30)) + bookings("decay", range(1)) + bookings("steady", range(30)))
    metrics_recompute()
    assert matched("decay") == ["engagement_decay"]
    assert measured("decay", "engagement_decay")[0]["value"] == 0.1792
    assert matched("steady") == []


@pytest.mark.django_db(transaction=True)
def test_silent_churn_is_found_from_the_core_value(slotwise):
    # Bookings stopped 7 days ago; confirmations (weight 0.5) keep engagement steady, so only the
    # core-value gap can match: 7d = 3.5, 30d = (23 + 3.5) / 4.3 = 6.16, delta 0.57 (no decay).
    events = bookings("quiet", range(7, 30))
    events += [Ev("quiet", "booking_confirmed", days_ago(d)) for d in range(7)]
    slotwise(events)
    metrics_recompute()
    assert TenantMetrics.objects.get(tenant_id="quiet").days_since_investigation == 7
    assert matched("quiet") == ["silent_churn"]


@pytest.mark.django_db
def test_the_playbooks_api_reads_conditions_in_the_products_types(read_client):
    scheduling_vocabulary_install()
    body = {p["id"]: p["trigger_conditions"] for p in read_client.get("/ops/playbooks").json()}
    assert body["policy_friction"] == ["3+ Double-booking block in 7 days"]
    assert body["abandonment"] == ["3+ Booking Abandoned in 7 days"]
    assert body["legal_only"] == [
        "1+ Availability report in 30 days",
        "no Booking Created or Booking confirmed in 30 days",
    ]
    spec_words = ("POLICY", "REPLAY", "EXPORT", "CERT", "INCIDENT")
    assert not [text for texts in body.values() for text in texts if any(w in text for w in spec_words)]
