"""GET /ops/playbooks[/{id}], effectiveness, signal validation; POST interventions, outcomes and churns."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine
from rest_framework.test import APIClient

from customers.models import Tenant
from playbooks.models import ChurnRecord, InterventionRecord
from tests.customers.conftest import example_types_sent

pytestmark = pytest.mark.django_db
TODAY = date(2026, 3, 15)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel("2026-03-15 12:00Z", tick=False):
        yield


@pytest.fixture
def acme(db) -> Tenant:
    # A customer since January: the interventions below are dated within its life.
    return Tenant.objects.create(tenant_id="acme", name="Acme", first_seen_at=datetime(2026, 1, 5, tzinfo=UTC))


def test_it_lists_the_five_seeded_playbooks_in_the_spec_shape(read_client):
    example_types_sent()  # the spec's own product: its types read by name
    response = read_client.get("/ops/playbooks")
    assert response.status_code == 200
    body = {p["id"]: p for p in response.json()}
    assert sorted(body) == ["abandonment", "engagement_decay", "legal_only", "policy_friction", "silent_churn"]
    assert {k: body[k]["risk_level"] for k in body} == {
        "abandonment": "high",
        "engagement_decay": "critical",
        "legal_only": "medium",
        "policy_friction": "medium",
        "silent_churn": "high",
    }
    assert body["policy_friction"]["trigger_conditions"] == ["3+ POLICY_BLOCK_REPEAT in 7 days"]
    assert body["abandonment"]["trigger_conditions"] == ["3+ REPLAY_ABORTED or EXPORT_ABORTED in 7 days"]
    assert body["engagement_decay"]["trigger_conditions"] == ["this week's use below 50% of normal"]
    assert body["silent_churn"]["trigger_conditions"] == [
        "1+ real events in 7 days",
        "7+ days since the last Incident viewed or Replay completed",
    ]
    for playbook in body.values():
        assert set(playbook) >= {
            "id",
            "name",
            "trigger_conditions",
            "risk_level",
            "actions",
            "success_metric",
            "notes",
            "matched_tenants",
        }
        assert len(playbook["actions"]) >= 3
        assert all(a["timing"] and a["channel"] and len(a["talk_track"]) > 40 for a in playbook["actions"])
        assert len(playbook["success_metric"]) > 20 and len(playbook["notes"]) > 40
        assert playbook["matched_tenants"] == []


def test_it_returns_one_playbook_and_404_for_an_unknown_one(read_client):
    response = read_client.get("/ops/playbooks/engagement_decay")
    assert response.status_code == 200
    assert response.json()["actions"][1]["timing"] == "day 0"
    assert response.json()["actions"][1]["channel"] == "call"
    missing = read_client.get("/ops/playbooks/nope")
    assert missing.status_code == 404
    assert "No playbook 'nope'" in missing.json()["detail"]


@pytest.mark.parametrize(
    "url", ["/ops/playbooks", "/ops/playbooks/silent_churn", "/ops/playbooks/effectiveness", "/ops/signal-validation"]
)
def test_reads_need_a_read_key_or_staff(url, ingest_client, staff_client, client):
    assert client.get(url).status_code == 401
    assert ingest_client.get(url).status_code == 403
    assert staff_client.get(url).status_code == 200


def test_effectiveness_and_validation_answer_with_their_notes(read_client):
    eff = read_client.get("/ops/playbooks/effectiveness").json()
    assert eff["note"].startswith("Observational")
    assert len(eff["playbooks"]) == 5
    val = read_client.get("/ops/signal-validation").json()
    assert val["churns_recorded"] == 0
    assert val["warning"].startswith("No churn recorded yet: nothing to judge the risk signal against.")


def test_a_read_write_key_records_an_intervention_and_later_its_outcome(write_client, acme):
    response = write_client.post(
        "/ops/interventions",
        {
            "tenant_id": "acme",
            "playbook_id": "silent_churn",
            "action": "Emailed the main user",
            "channel": "email",
            "date": "2026-03-10",
            "note": "They said alerts go to an old channel",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["tenant_id"] == "acme" and body["playbook_id"] == "silent_churn" and body["outcome"] is None
    assert body["created_by"].startswith("key:")
    record = InterventionRecord.objects.get()
    assert record.date == date(2026, 3, 10)

    outcome = write_client.post(
        f"/ops/interventions/{record.pk}/outcome", {"outcome": "retained", "outcome_at": "2026-03-14"}, format="json"
    )
    assert outcome.status_code == 200, outcome.content
    assert (outcome.json()["outcome"], outcome.json()["outcome_at"]) == ("retained", "2026-03-14")
    listed = write_client.get("/ops/interventions?tenant_id=acme").json()
    assert [(i["id"], i["outcome"]) for i in listed] == [(record.pk, "retained")]


def test_a_staff_session_can_write_too(staff_client, acme):
    response = staff_client.post(
        "/ops/interventions", {"tenant_id": "acme", "action": "Called", "channel": "call"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["date"] == "2026-03-15"
    assert response.json()["created_by"] == "founder"


def test_read_and_ingest_keys_cannot_write(read_client, ingest_client, acme):
    payload = {"tenant_id": "acme", "action": "Called", "channel": "call"}
    for client in (read_client, ingest_client):
        assert client.post("/ops/interventions", payload, format="json").status_code == 403
        assert client.post("/ops/churns", {"tenant_id": "acme"}, format="json").status_code == 403
    refused = read_client.post("/ops/interventions", payload, format="json")
    assert "needs one of: write" in refused.json()["detail"]
    assert APIClient().post("/ops/interventions", payload, format="json").status_code == 401
    assert not InterventionRecord.objects.exists() and not ChurnRecord.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"tenant_id": "ghost", "action": "x", "channel": "call"}, "tenant_id", "Unknown tenant 'ghost'."),
        ({"tenant_id": "acme", "action": "x", "channel": "pigeon"}, "channel", "is not a valid choice"),
        ({"tenant_id": "acme", "action": "x", "channel": "call", "playbook_id": "nope"}, "playbook_id", "Unknown"),
        ({"tenant_id": "acme", "action": "  ", "channel": "call"}, "action", "may not be blank"),
        ({"tenant_id": "acme", "action": "x", "channel": "call", "date": "2026-04-01"}, "date", "future"),
        ({"tenant_id": "acme", "action": "x", "channel": "call", "date": "yesterday"}, "date", "wrong format"),
        ({"tenant_id": "acme", "action": "x", "channel": "call", "outcome": "won"}, "outcome", "not a valid choice"),
    ],
)
def test_bad_interventions_are_400s_that_name_the_field_and_write_nothing(write_client, acme, payload, field, message):
    response = write_client.post("/ops/interventions", payload, format="json")
    assert response.status_code == 400, response.content
    assert message in str(response.json()[field])
    assert not InterventionRecord.objects.exists()


def test_bad_outcomes_are_rejected(write_client, acme):
    record = InterventionRecord.objects.create(tenant=acme, action="Called", channel="call", date=date(2026, 3, 10))
    assert write_client.post(f"/ops/interventions/{record.pk}/outcome", {"outcome": "won"}).status_code == 400
    early = write_client.post(
        f"/ops/interventions/{record.pk}/outcome", {"outcome": "retained", "outcome_at": "2026-03-01"}, format="json"
    )
    assert early.status_code == 400
    assert "cannot come before the intervention (2026-03-10)" in early.json()["outcome_at"][0]
    assert write_client.post("/ops/interventions/999999/outcome", {"outcome": "retained"}).status_code == 404
    record.refresh_from_db()
    assert record.outcome is None


def test_churns_are_recorded_once_per_day_and_listed(write_client, read_client, acme):
    response = write_client.post(
        "/ops/churns", {"tenant_id": "acme", "date": "2026-03-01", "reason": "Budget cut"}, format="json"
    )
    assert response.status_code == 201, response.content
    again = write_client.post("/ops/churns", {"tenant_id": "acme", "date": "2026-03-01"}, format="json")
    assert again.status_code == 400
    assert "already recorded" in again.json()["date"][0]
    assert write_client.post("/ops/churns", {"tenant_id": "ghost"}, format="json").status_code == 400
    assert (
        write_client.post("/ops/churns", {"tenant_id": "acme", "date": "2027-01-01"}, format="json").status_code == 400
    )
    listed = read_client.get("/ops/churns").json()
    assert [(c["tenant_id"], c["date"], c["reason"]) for c in listed] == [("acme", "2026-03-01", "Budget cut")]


def test_the_endpoints_are_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in (
        "/ops/playbooks",
        "/ops/playbooks/{playbook_id}",
        "/ops/playbooks/effectiveness",
        "/ops/signal-validation",
        "/ops/interventions",
        "/ops/interventions/{intervention_id}/outcome",
        "/ops/churns",
    ):
        assert path in schema["paths"], path
    assert "post" in schema["paths"]["/ops/interventions"]
    at_risk = schema["components"]["schemas"]["CustomerAtRisk"]["properties"]
    assert "matched_playbooks" in at_risk
