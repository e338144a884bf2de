"""Playbooks are edited in admin: conditions are validated, read as text, previewed live, and logged."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry

from playbooks.conditions import condition_problems, condition_text
from playbooks.models import Playbook, TriggerCondition
from tests.customers.conftest import example_types_sent
from tests.playbooks.conftest import admin_form_data

pytestmark = pytest.mark.django_db


def _errors(response) -> str:
    return response.content.decode()


def test_the_five_playbooks_are_in_admin_with_their_conditions_as_text(admin_client):
    example_types_sent()
    body = admin_client.get("/admin/playbooks/playbook/").content.decode()
    for name in (
        "Silent churn",
        "Repeatedly blocked",
        "Abandoned workflows",
        "Engagement decay",
        "One side feature only",
    ):
        assert name in body
    assert "3+ POLICY_BLOCK_REPEAT in 7 days" in body
    change = admin_client.get("/admin/playbooks/playbook/engagement_decay/change/")
    assert change.status_code == 200
    assert "Founder call, same day" in change.content.decode()


def test_it_rejects_an_unknown_metric_with_a_clear_message(admin_client):
    playbook = Playbook.objects.get(pk="policy_friction")
    data = admin_form_data(playbook, conditions=[{"metric": "happiness"}])
    response = admin_client.post("/admin/playbooks/playbook/policy_friction/change/", data)
    assert response.status_code == 200
    assert "Unknown metric &#x27;happiness&#x27;. Choose one of: event_count, real_events" in _errors(response)
    assert TriggerCondition.objects.get(playbook=playbook).metric == "event_count"


def test_it_rejects_an_unknown_operator_with_a_clear_message(admin_client):
    playbook = Playbook.objects.get(pk="policy_friction")
    response = admin_client.post(
        "/admin/playbooks/playbook/policy_friction/change/", admin_form_data(playbook, conditions=[{"operator": "~"}])
    )
    assert response.status_code == 200
    assert "Unknown operator &#x27;~&#x27;. Choose one of: &lt;, &lt;=, &gt;, &gt;=, ==." in _errors(response)
    assert TriggerCondition.objects.get(playbook=playbook).operator == ">="


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"event_types": "POLICY_BLOK"}, "Unknown event type(s): POLICY_BLOK"),
        ({"event_types": ""}, "event_count needs at least one event type"),
        ({"window_days": ""}, "is measured over a window: give window_days"),
        ({"window_days": "400"}, "window_days must be between 1 and 90"),
        ({"metric": "stickiness_delta", "event_types": "", "window_days": "7"}, "has a fixed window"),
    ],
)
def test_it_rejects_inconsistent_conditions(admin_client, change, message):
    playbook = Playbook.objects.get(pk="policy_friction")
    response = admin_client.post(
        "/admin/playbooks/playbook/policy_friction/change/", admin_form_data(playbook, conditions=[change])
    )
    assert response.status_code == 200
    assert message in response.content.decode().replace("&#x27;", "'")
    assert TriggerCondition.objects.get(playbook=playbook).window_days == 7


def test_a_new_playbook_added_in_admin_is_logged_in_its_history(admin_client):
    data = {
        "id": "champion_left",
        "name": "Champion left",
        "risk_level": "high",
        "purpose": "risk",
        "success_metric": "A second user active within 14 days",
        "notes": "",
        "enabled": "on",
        "conditions-TOTAL_FORMS": "1",
        "conditions-INITIAL_FORMS": "0",
        "conditions-MIN_NUM_FORMS": "1",
        "conditions-MAX_NUM_FORMS": "1000",
        "conditions-0-order": "1",
        "conditions-0-metric": "active_days",
        "conditions-0-event_types": "",
        "conditions-0-operator": "<",
        "conditions-0-threshold": "2",
        "conditions-0-window_days": "14",
        "actions-TOTAL_FORMS": "1",
        "actions-INITIAL_FORMS": "0",
        "actions-MIN_NUM_FORMS": "0",
        "actions-MAX_NUM_FORMS": "1000",
        "actions-0-order": "1",
        "actions-0-timing": "day 0",
        "actions-0-channel": "email",
        "actions-0-step": "Ask who took over",
        "actions-0-talk_track": "Hi, I noticed Sam hasn't logged in for two weeks. Who should I keep in the loop?",
    }
    response = admin_client.post("/admin/playbooks/playbook/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    playbook = Playbook.objects.get(pk="champion_left")
    assert [str(c) for c in playbook.conditions.all()] == ["fewer than 2 active days in 14 days"]
    assert LogEntry.objects.filter(object_id="champion_left").count() == 1
    history = admin_client.get("/admin/playbooks/playbook/champion_left/history/")
    assert history.status_code == 200 and "Added" in history.content.decode()


def test_the_change_page_previews_the_tenants_that_match_now(admin_client):
    from datetime import date

    from django.utils import timezone

    from customers.models import Tenant, TenantMetrics

    for tenant_id, delta in (("sliding", 0.3), ("steady", 1.1)):
        tenant = Tenant.objects.create(tenant_id=tenant_id)
        TenantMetrics.objects.create(
            tenant=tenant, computed_at=timezone.now(), as_of=date(2026, 3, 15), stickiness_delta=delta
        )
    body = admin_client.get("/admin/playbooks/playbook/engagement_decay/change/").content.decode()
    assert "1 tenant(s), evaluated live" in body
    assert "/customers/sliding/" in body and "this week&#x27;s use below 50% of normal: 0.3" in body
    assert "/customers/steady/" not in body


@pytest.mark.parametrize(
    ("metric", "op", "threshold", "window", "types", "text"),
    [
        ("event_count", ">=", 3, 7, "POLICY_BLOCK_REPEAT", "3+ POLICY_BLOCK_REPEAT in 7 days"),
        ("event_count", ">", 2, 1, "REPLAY_ABORTED", "more than 2 REPLAY_ABORTED in 1 day"),
        ("event_count", "==", 0, 30, "A,B,C", "no A, B or C in 30 days"),
        ("real_events", "<", 5, 14, "", "fewer than 5 real events in 14 days"),
        ("stickiness_delta", "<", 0.5, None, "", "this week's use below 50% of normal"),
        ("days_since_investigation", ">=", 7, None, "", "7+ days since the last core-value event"),
        ("days_since_last_seen", ">", 3, None, "", "more than 3 days since the last real event"),
    ],
)
def test_conditions_read_as_plain_text(metric, op, threshold, window, types, text):
    condition = TriggerCondition(metric=metric, operator=op, threshold=threshold, window_days=window, event_types=types)
    assert condition_text(condition) == text


def test_the_engine_applies_the_same_checks_as_the_form():
    problems = condition_problems(
        metric="nope", operator="=", threshold=None, window_days=None, event_types=[], known_event_types=[]
    )
    assert set(problems) == {"metric", "operator", "threshold"}
