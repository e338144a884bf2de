"""The call list with memory (issue 17): what the founder did shows on Today, in the at-risk API
and on the Customer page; a churned customer leaves every list; a snooze parks a customer.

The clock is the metrics tests' (2026-03-15 12:00 UTC, a Sunday). "decay" is at risk through the
Engagement decay playbook (stickiness_delta < 0.5, critical), "policy" through Policy friction.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import time_machine
from django.core.cache import cache

from customers.metrics.recompute import metrics_recompute
from customers.models import Tenant, TenantMetrics
from customers.selectors import at_risk_counts_by_level
from opsconsole.checkin import weekly_checkin_compose
from playbooks.followup import step_offset_days
from playbooks.models import ChurnRecord, InterventionRecord, PlaybookMatch, Snooze
from tests.customers.conftest import Ev, days_ago

pytestmark = pytest.mark.django_db(transaction=True)


def _follow_ups(client: Any) -> dict[str, dict[str, Any]]:
    response = client.get("/ops/customers/at-risk?limit=10")
    assert response.status_code == 200
    return {entry["tenant_id"]: entry["follow_up"] for entry in response.json()}


def _call_rows(client: Any) -> list[tuple[str, str]]:
    """(tenant_id, state) of Today's call list rows, top to bottom."""
    body = client.get("/").content.decode()
    start = body.index('<table class="at-risk">')
    table = body[start : body.index("</table>", start)]
    rows = []
    for chunk in table.split('data-testid="call-row-')[1:]:
        tenant_id, rest = chunk.split('"', 1)
        rows.append((tenant_id, rest.split('data-state="', 1)[1].split('"', 1)[0]))
    return rows


def _log(client: Any, **fields: str) -> Any:
    data = {"tenant_id": "decay", "playbook_id": "engagement_decay", "channel": "call", "next": "/", **fields}
    return client.post("/playbooks/interventions/new/", data)


@pytest.mark.parametrize(
    ("timing", "days"),
    [
        ("day 0", 0),
        ("day 3", 3),
        ("within 24h", 1),
        ("within 48h if no reply", 2),
        ("within 1 week", 7),
        ("soon", None),
    ],
)
def test_it_reads_a_playbook_steps_timing_as_days_after_day_zero(timing, days):
    assert step_offset_days(timing) == days


def test_nobody_contacted_is_to_call_with_a_first_step_of_its_own_playbook(at_risk, staff_client):
    follow_ups = _follow_ups(staff_client)
    assert follow_ups["decay"]["state"] == "to_call" and follow_ups["decay"]["last_action"] is None
    assert follow_ups["decay"]["next_step"]["step"] == "Look for what changed"
    assert follow_ups["policy"]["next_step"]["step"] == "Find what blocks them and decide whether the blocks are right"


def test_a_logged_call_shows_what_was_done_and_the_next_step_with_its_due_day(at_risk, staff_client):
    # Two steps of Engagement decay done on Tuesday 10 March: the third is "within 24h" of day 0.
    assert _log(staff_client, action="Read the customer page", channel="internal", date="2026-03-10").status_code == 302
    assert _log(staff_client, action="Called the CTO", date="2026-03-10").status_code == 302
    follow_up = _follow_ups(staff_client)["decay"]
    assert follow_up["state"] == "in_progress"
    assert follow_up["last_action"] == {
        "action": "Called the CTO",
        "channel": "call",
        "date": "2026-03-10",
        "playbook_id": "engagement_decay",
        "outcome": None,
    }
    assert follow_up["next_step"]["step"] == "Short personal email if the call doesn't happen"
    assert follow_up["next_step"]["timing"] == "within 24h"
    assert follow_up["due"] == "2026-03-11" and follow_up["overdue"] is True
    assert follow_up["sentence"].startswith("Called the CTO (phone call) on Tue 10 Mar → Within 24h: Short personal")
    # Overdue rises to the top of Today, above a customer nobody has called yet.
    assert _call_rows(staff_client)[0] == ("decay", "in_progress")


def test_a_step_not_due_yet_comes_after_whom_to_call_and_comes_due_with_the_date(at_risk, staff_client):
    _log(staff_client, action="Read the customer page", channel="internal")
    _log(staff_client, action="Called the CTO")
    _log(staff_client, action="Emailed a summary", channel="email")
    follow_up = _follow_ups(staff_client)["decay"]
    assert follow_up["next_step"]["step"] == "Deliver what you promised"
    assert follow_up["due"] == "2026-03-18" and follow_up["overdue"] is False  # day 3 after Sunday the 15th
    assert [state for _, state in _call_rows(staff_client)] == ["to_call", "in_progress"]
    with time_machine.travel("2026-03-19 09:00Z", tick=False):
        assert _follow_ups(staff_client)["decay"]["overdue"] is True
        assert _call_rows(staff_client)[0] == ("decay", "in_progress")


def test_a_retained_outcome_is_won_back_for_a_week_then_leaves_the_list(at_risk, staff_client):
    _log(staff_client, action="Called the CTO")
    record = InterventionRecord.objects.get(tenant_id="decay")
    response = staff_client.post(
        f"/playbooks/interventions/{record.pk}/outcome/", {"outcome": "retained", "tenant_id": "decay", "next": "/"}
    )
    assert response.status_code == 302
    assert _follow_ups(staff_client)["decay"]["state"] == "won_back"
    body = staff_client.get("/").content.decode()
    assert 'data-testid="parked-decay" data-state="won_back"' in body
    assert ("decay", "to_call") not in _call_rows(staff_client)
    with time_machine.travel("2026-03-23 09:00Z", tick=False):
        # A week on and still flagged by the engine: a new cycle starts.
        assert _follow_ups(staff_client)["decay"]["state"] == "to_call"


def test_no_response_puts_the_customer_back_to_call_with_the_last_attempt(at_risk, staff_client):
    _log(staff_client, action="Called, voicemail")
    record = InterventionRecord.objects.get(tenant_id="decay")
    staff_client.post(f"/playbooks/interventions/{record.pk}/outcome/", {"outcome": "no_response"})
    follow_up = _follow_ups(staff_client)["decay"]
    assert follow_up["state"] == "to_call" and follow_up["last_action"]["outcome"] == "no_response"


def test_a_churned_customer_leaves_every_list_and_comes_back_only_with_real_activity(at_risk, staff_client, metrics_db):
    assert PlaybookMatch.objects.filter(tenant_id="decay").exists()
    response = staff_client.post(
        "/playbooks/churns/new/", {"tenant_id": "decay", "reason": "Moved to a competitor", "confirm": "yes"}
    )
    assert response.status_code == 302
    assert Tenant.objects.get(tenant_id="decay").churned_at == date(2026, 3, 15)
    # At once, before any recompute: the API, Today, the gauge, the matches, the check-in.
    assert "decay" not in _follow_ups(staff_client)
    assert "decay" not in dict(_call_rows(staff_client))
    assert at_risk_counts_by_level() == {"critical": 0, "high": 0, "medium": 1}
    assert not PlaybookMatch.objects.filter(tenant_id="decay").exists()
    assert "decay" not in weekly_checkin_compose()[1]
    metrics_recompute(full=True)
    cache.clear()
    assert TenantMetrics.objects.get(tenant_id="decay").risk_level is None
    assert not PlaybookMatch.objects.filter(tenant_id="decay").exists()
    assert ChurnRecord.objects.filter(tenant_id="decay").count() == 1  # kept for validation
    body = staff_client.get("/customers/decay/").content.decode()
    assert "Churned on Sun 15 Mar" in body
    # Real activity on a later day: it came back, and is on the list again, marked.
    with time_machine.travel("2026-03-16 12:00Z", tick=False):
        metrics_db([Ev("decay", "EXPORT_COMPLETED", days_ago(-1))])
        metrics_recompute()
        cache.clear()
        follow_up = _follow_ups(staff_client)["decay"]
        assert follow_up["state"] == "to_call" and follow_up["came_back"] is True
        assert "came back" in staff_client.get("/").content.decode()
        # Its page no longer calls it churned: the header reads the same follow-up.
        header = staff_client.get("/customers/decay/").content.decode().split("</h1>")[0]
        assert "churned 15 Mar 2026" not in header


def test_a_churned_outcome_records_the_churn(at_risk, staff_client):
    _log(staff_client, action="Renewal call")
    record = InterventionRecord.objects.get(tenant_id="decay")
    staff_client.post(f"/playbooks/interventions/{record.pk}/outcome/", {"outcome": "churned"})
    assert ChurnRecord.objects.filter(tenant_id="decay", date=date(2026, 3, 15)).exists()
    assert "decay" not in _follow_ups(staff_client)


def test_a_snooze_parks_the_customer_until_its_day(at_risk, staff_client):
    response = staff_client.post(
        "/playbooks/snoozes/new/", {"tenant_id": "policy", "until": "2026-03-20", "reason": "On holiday", "next": "/"}
    )
    assert response.status_code == 302
    follow_up = _follow_ups(staff_client)["policy"]
    assert follow_up["state"] == "snoozed" and follow_up["snoozed_until"] == "2026-03-20"
    assert follow_up["snooze_reason"] == "On holiday"
    assert "policy" not in dict(_call_rows(staff_client))
    assert "Snoozed until Fri 20 Mar: On holiday" in staff_client.get("/").content.decode()
    with time_machine.travel("2026-03-20 08:00Z", tick=False):
        assert _follow_ups(staff_client)["policy"]["state"] == "to_call"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"until": "2026-03-15", "reason": "x"}, "Snooze until a day after today"),
        ({"until": "2026-09-01", "reason": "x"}, "At most 90 days ahead"),
        ({"until": "2026-03-20", "reason": ""}, "reason"),
        ({"until": "2026-03-20", "reason": "x" * 301}, "no more than 300 characters"),
        ({"until": "next week", "reason": "x"}, "is not a date"),
    ],
)
def test_a_bad_snooze_is_a_400_page_and_saves_nothing(at_risk, staff_client, data, field):
    response = staff_client.post("/playbooks/snoozes/new/", {"tenant_id": "policy", **data})
    assert response.status_code == 400
    assert field in response.content.decode()
    assert not Snooze.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "x" * 301}, "no more than 300 characters"),
        ({"action": "Called", "note": "n" * 5001}, "no more than 5000 characters"),
    ],
)
def test_an_intervention_form_longer_than_the_api_allows_is_a_400_not_a_500(at_risk, staff_client, data, message):
    response = _log(staff_client, **data)
    assert response.status_code == 400
    assert message in response.content.decode() and "Nothing was saved" in response.content.decode()
    assert not InterventionRecord.objects.exists()


def test_an_outcome_note_or_churn_reason_longer_than_the_api_allows_is_a_400(at_risk, staff_client):
    _log(staff_client, action="Called")
    record = InterventionRecord.objects.get()
    response = staff_client.post(
        f"/playbooks/interventions/{record.pk}/outcome/", {"outcome": "retained", "note": "n" * 5001}
    )
    assert response.status_code == 400
    record.refresh_from_db()
    assert record.outcome is None
    response = staff_client.post("/playbooks/churns/new/", {"tenant_id": "decay", "reason": "r" * 5001})
    assert response.status_code == 400 and not ChurnRecord.objects.exists()


def test_the_outcome_picker_starts_empty(at_risk, staff_client):
    _log(staff_client, action="Called")
    body = staff_client.get("/customers/decay/").content.decode()
    picker = body[body.index('name="outcome"') : body.index("</select>", body.index('name="outcome"'))]
    assert '<option value="" selected disabled>Choose the outcome' in picker
    assert "selected" not in picker.replace('<option value="" selected disabled>', "")
    # Submitted without a choice: a 400 that names the field, nothing recorded.
    record = InterventionRecord.objects.get()
    response = staff_client.post(f"/playbooks/interventions/{record.pk}/outcome/", {"outcome": ""})
    assert response.status_code == 400
    record.refresh_from_db()
    assert record.outcome is None


def test_the_weekly_checkin_says_each_customers_follow_up(at_risk, staff_client):
    _log(staff_client, action="Called the CTO", date="2026-03-10")
    _, body = weekly_checkin_compose()
    line = next(line for line in body.splitlines() if "decay" in line)
    assert "In progress" in line and "Called the CTO" in line and "overdue" in line
