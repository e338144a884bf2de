"""Every founder action can be taken back from the Customer page (and the API where it has the
create): a churn (recorded only after a confirmation), an outcome, a snooze and a logged step.
Churned and follow-up states show on the Customers list and in the at-risk CSV.

The clock is the metrics tests' (2026-03-15 12:00 UTC). "decay" and "policy" are at risk
(tests/playbooks/conftest.py). Nothing clears the cache between an action and the read: each
undo must move the answers version itself.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from typing import Any

import pytest
from django.test import Client

from customers.metrics.recompute import metrics_recompute
from customers.models import Tenant
from playbooks.churns import churn_record
from playbooks.models import ChurnRecord, InterventionRecord, Snooze

pytestmark = pytest.mark.django_db(transaction=True)


def _follow_ups(client: Any) -> dict[str, dict[str, Any]]:
    response = client.get("/ops/customers/at-risk?limit=10")
    assert response.status_code == 200
    return {entry["tenant_id"]: entry["follow_up"] for entry in response.json()}


def _page(client: Any, tenant_id: str = "decay") -> str:
    response = client.get(f"/customers/{tenant_id}/")
    assert response.status_code == 200
    return response.content.decode()


def _undo_action(body: str, testid: str) -> str:
    """The action URL of the undo form ``testid`` on a page (it must be there, with a CSRF token)."""
    match = re.search(rf'<form method="post" action="([^"]+)" class="undo" data-testid="{testid}">(.*?)</form>', body)
    assert match is not None, f"no undo form {testid}"
    assert "csrfmiddlewaretoken" in match.group(2)
    return match.group(1)


def _log(client: Any, action: str = "Called the CTO") -> InterventionRecord:
    data = {"tenant_id": "decay", "playbook_id": "engagement_decay", "channel": "call", "action": action}
    assert client.post("/playbooks/interventions/new/", data).status_code == 302
    return InterventionRecord.objects.filter(tenant_id="decay").latest("id")


# --- Churn: a confirmation first, an undo after ---------------------------------------------------
def test_record_churn_asks_for_a_confirmation_and_records_nothing_until_then(at_risk, staff_client):
    form = {"tenant_id": "decay", "date": "2026-03-15", "reason": "Moved to a competitor", "next": "/customers/decay/"}
    response = staff_client.post("/playbooks/churns/new/", form)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Record that decay churned on Sun 15 Mar 2026?" in body and "Moved to a competitor" in body
    assert '<input type="hidden" name="confirm" value="yes">' in body and "csrfmiddlewaretoken" in body
    assert 'href="/customers/decay/">Cancel</a>' in body
    assert not ChurnRecord.objects.exists() and Tenant.objects.get(tenant_id="decay").churned_at is None
    assert "decay" in _follow_ups(staff_client)
    confirmed = staff_client.post("/playbooks/churns/new/", {**form, "confirm": "yes"})
    assert confirmed.status_code == 302 and confirmed["Location"] == "/customers/decay/"
    assert ChurnRecord.objects.get().reason == "Moved to a competitor"
    assert "decay" not in _follow_ups(staff_client)


def test_a_churn_already_recorded_is_refused_before_the_confirmation(at_risk, staff_client):
    churn_record(tenant_id="decay")
    response = staff_client.post("/playbooks/churns/new/", {"tenant_id": "decay", "date": "2026-03-15"})
    assert response.status_code == 400
    assert "already recorded" in response.content.decode().replace("&#x27;", "'")


def test_a_churn_undone_from_the_customer_page_puts_the_customer_back(at_risk, staff_client):
    churn = churn_record(tenant_id="decay", reason="Clicked by mistake")
    body = _page(staff_client)
    assert 'data-state="churned"' in body
    undo = _undo_action(body, "churn-undo-latest")
    assert undo == _undo_action(body, f"churn-undo-{churn.pk}") == f"/playbooks/churns/{churn.pk}/undo/"
    response = staff_client.post(undo, {"tenant_id": "decay", "next": "/customers/decay/"})
    assert response.status_code == 302 and response["Location"] == "/customers/decay/"
    assert not ChurnRecord.objects.exists()
    assert Tenant.objects.get(tenant_id="decay").churned_at is None
    body = _page(staff_client)
    assert "back on the at-risk lists at the next recompute" in body
    assert 'data-state="churned"' not in body
    metrics_recompute()
    assert _follow_ups(staff_client)["decay"]["state"] == "to_call"
    # A second click finds nothing to undo and says so.
    again = staff_client.post(undo, {"tenant_id": "decay"}, follow=True)
    assert "Nothing to undo: this churn was already taken back." in again.content.decode()


def test_undo_forms_without_a_csrf_token_are_refused(at_risk, staff_user):
    churn = churn_record(tenant_id="decay")
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.post(f"/playbooks/churns/{churn.pk}/undo/", {"tenant_id": "decay"}).status_code == 403
    assert ChurnRecord.objects.exists()


# --- Outcome, snooze, logged step --------------------------------------------------------------------
def test_an_outcome_undone_from_the_customer_page_opens_the_step_again(at_risk, staff_client):
    record = _log(staff_client)
    staff_client.post(f"/playbooks/interventions/{record.pk}/outcome/", {"outcome": "retained"})
    assert _follow_ups(staff_client)["decay"]["state"] == "won_back"
    undo = _undo_action(_page(staff_client), f"outcome-undo-{record.pk}")
    assert staff_client.post(undo, {"tenant_id": "decay"}).status_code == 302
    record.refresh_from_db()
    assert (record.outcome, record.outcome_at) == (None, None)
    assert _follow_ups(staff_client)["decay"]["state"] == "in_progress"
    assert f'data-testid="outcome-undo-{record.pk}"' not in _page(staff_client)


def test_a_snooze_undone_from_the_customer_page_puts_the_customer_back_on_the_call_list(at_risk, staff_client):
    form = {"tenant_id": "decay", "until": "2026-03-20", "reason": "On holiday"}
    assert staff_client.post("/playbooks/snoozes/new/", form).status_code == 302
    assert _follow_ups(staff_client)["decay"]["state"] == "snoozed"
    undo = _undo_action(_page(staff_client), "snooze-undo")
    assert staff_client.post(undo, {"tenant_id": "decay"}).status_code == 302
    assert not Snooze.objects.exists()
    assert _follow_ups(staff_client)["decay"]["state"] == "to_call"


def test_a_logged_step_undone_from_the_customer_page_is_gone(at_risk, staff_client):
    first = _log(staff_client, "Read the customer page")
    second = _log(staff_client, "Called the CTO")
    assert _follow_ups(staff_client)["decay"]["last_action"]["action"] == "Called the CTO"
    undo = _undo_action(_page(staff_client), f"intervention-undo-{second.pk}")
    assert staff_client.post(undo, {"tenant_id": "decay"}).status_code == 302
    assert list(InterventionRecord.objects.values_list("pk", flat=True)) == [first.pk]
    assert _follow_ups(staff_client)["decay"]["last_action"]["action"] == "Read the customer page"
    staff_client.post(f"/playbooks/interventions/{first.pk}/undo/", {"tenant_id": "decay"})
    assert _follow_ups(staff_client)["decay"]["state"] == "to_call"


# --- API ----------------------------------------------------------------------------------------------
def test_the_api_takes_back_a_churn_an_outcome_and_an_intervention(at_risk, write_client, read_client):
    churn = churn_record(tenant_id="decay")
    assert read_client.delete(f"/ops/churns/{churn.pk}").status_code == 403
    assert write_client.delete(f"/ops/churns/{churn.pk}").status_code == 204
    assert Tenant.objects.get(tenant_id="decay").churned_at is None
    assert write_client.delete(f"/ops/churns/{churn.pk}").status_code == 404
    metrics_recompute()
    assert "decay" in _follow_ups(read_client)

    created = write_client.post(
        "/ops/interventions",
        {"tenant_id": "decay", "action": "Called", "channel": "call", "outcome": "retained"},
        format="json",
    )
    intervention_id = created.json()["id"]
    assert _follow_ups(read_client)["decay"]["state"] == "won_back"
    assert read_client.delete(f"/ops/interventions/{intervention_id}/outcome").status_code == 403
    cleared = write_client.delete(f"/ops/interventions/{intervention_id}/outcome")
    assert cleared.status_code == 200 and cleared.json()["outcome"] is None
    assert _follow_ups(read_client)["decay"]["state"] == "in_progress"
    again = write_client.delete(f"/ops/interventions/{intervention_id}/outcome")
    assert again.status_code == 400 and "no outcome" in again.json()["outcome"][0]
    assert read_client.delete(f"/ops/interventions/{intervention_id}").status_code == 403
    assert write_client.delete(f"/ops/interventions/{intervention_id}").status_code == 204
    assert not InterventionRecord.objects.exists()
    assert _follow_ups(read_client)["decay"]["state"] == "to_call"
    assert write_client.delete(f"/ops/interventions/{intervention_id}").status_code == 404


# --- The Customers list and the at-risk CSV -------------------------------------------------------------
def _level_cell(body: str, tenant_id: str) -> str:
    row = body[body.index(f'<tr data-tenant="{tenant_id}">') :]
    row = row[: row.index("</tr>")]
    return row[row.index('data-label="Level"') : row.index('data-label="Signal"')]


def test_the_customers_list_says_churned_and_each_follow_up(at_risk, staff_client):
    churn_record(tenant_id="decay")
    staff_client.post("/playbooks/snoozes/new/", {"tenant_id": "policy", "until": "2026-03-20", "reason": "Away"})
    body = staff_client.get("/customers/").content.decode()
    decay = _level_cell(body, "decay")
    assert "churned 15 Mar 2026" in decay and "not at risk" not in decay
    assert "Snoozed until 20 Mar" in _level_cell(body, "policy")


def test_the_at_risk_csv_says_each_follow_up_and_a_churn_the_customer_came_back_from(at_risk, staff_client):
    churn_record(tenant_id="decay", day=date(2026, 3, 10))  # decay was active on the 13th: it came back
    staff_client.post("/playbooks/snoozes/new/", {"tenant_id": "policy", "until": "2026-03-20", "reason": "Away"})
    rows = list(csv.DictReader(io.StringIO(staff_client.get("/customers/at-risk.csv").content.decode())))
    by_id = {r["tenant_id"]: r for r in rows}
    assert (by_id["decay"]["follow_up"], by_id["decay"]["churned_on"], by_id["decay"]["came_back"]) == (
        "to_call",
        "2026-03-10",
        "yes",
    )
    assert (by_id["policy"]["follow_up"], by_id["policy"]["churned_on"], by_id["policy"]["came_back"]) == (
        "snoozed",
        "",
        "",
    )
    assert "decay" in by_id and by_id["decay"]["risk_level"]  # a came-back customer is at risk, never blank


def test_admin_lists_a_churned_customer_as_churned_and_leaves_its_churn_state_to_the_churns(at_risk, admin_client):
    churn_record(tenant_id="decay")
    body = admin_client.get("/admin/customers/tenant/").content.decode()
    assert '<td class="field-risk_level">churned 2026-03-15</td>' in body
    # The churn state is not a field to type in: saving the customer leaves it as the churns say.
    change = admin_client.get("/admin/customers/tenant/decay/change/").content.decode()
    assert 'name="churned_at"' not in change
    saved = admin_client.post(
        "/admin/customers/tenant/decay/change/",
        {"tenant_id": "decay", "name": "Decay", "kind": "customer", "churned_at": ""},
    )
    assert saved.status_code == 302
    assert Tenant.objects.get(tenant_id="decay").churned_at == date(2026, 3, 15)
