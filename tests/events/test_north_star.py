"""The metric: days since last real user interaction, its API and its cache."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.classification import events_reclassify, real_users_rebuild
from events.models import Event, EventType, Milestone, NorthStarSettings, RealUser
from tests.conftest import ON_CITUS

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 2, 8, 12, 32, 15, tzinfo=UTC)
URL = "/metrics/days-since-last-interaction"


def login(user_id: str = "u1", **fields: Any) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "event_type": "LOGIN", "user_id": user_id, "tenant_id": "acme", **fields}


def read_at(client: Any, moment: datetime) -> dict[str, Any]:
    with time_machine.travel(moment, tick=False):
        response = client.get(URL)
    assert response.status_code == 200, response.content
    return response.json()


def test_it_answers_the_spec_shape_before_any_real_user(read_client, ingest):
    ingest(login("bot", metadata={"user_agent": "curl/8.5.0"}))  # traffic, but not a real user
    body = read_at(read_client, T0)
    assert {k: body[k] for k in ("metric", "value", "status", "target", "last_interaction", "total_users")} == {
        "metric": "days_since_last_real_user_interaction",
        "value": None,
        "status": "no_users_yet",
        "target": 0,
        "last_interaction": None,
        "total_users": 0,
    }
    assert body["daily_active_users"] == {"value": 0, "target": 10, "status": "below_target"}
    assert body["monthly_active_users"] == {"value": 0, "target": 50, "status": "below_target"}


@pytest.mark.parametrize(
    ("elapsed", "value", "status"),
    [
        (timedelta(0), 0.0, "active"),
        (timedelta(days=1) - timedelta(seconds=1), 1 - 1 / 86400, "active"),
        (timedelta(days=1), 1.0, "warning"),
        (timedelta(days=7) - timedelta(seconds=1), 7 - 1 / 86400, "warning"),
        (timedelta(days=7), 7.0, "critical"),
        (timedelta(days=30), 30.0, "critical"),
    ],
)
def test_it_reports_each_status_boundary(read_client, ingest, elapsed, value, status):
    with time_machine.travel(T0, tick=False):
        ingest(login())
    body = read_at(read_client, T0 + elapsed)
    assert body["value"] == pytest.approx(value, abs=1e-9)
    assert body["status"] == status
    assert body["last_interaction"] == "2026-02-08T12:32:15+00:00"
    assert body["total_users"] == 1


def test_it_counts_only_real_users_and_registry_types_that_count(read_client, ingest):
    with time_machine.travel(T0, tick=False):
        ingest(
            login("alice", occurred_at="2026-02-06T12:32:15+00:00"),
            login("bob", event_type="CORE_ACTION", occurred_at="2026-02-07T12:32:15+00:00"),
            login("carol", event_type="PAGE_VIEW"),  # a page view does not count
            login("dave", event_type="REPLAY_STARTED"),  # nor does an intent signal
            login("", event_type="LOGIN"),  # nor an event without a user
            login("erin", metadata={"test": True}),  # nor test traffic
        )
    body = read_at(read_client, T0 + timedelta(hours=12))
    assert body["total_users"] == 2
    assert body["value"] == pytest.approx(1.5)
    assert body["status"] == "warning"
    assert body["daily_active_users"]["value"] == 0
    assert body["monthly_active_users"]["value"] == 2


def test_marking_a_type_as_counting_in_admin_moves_the_metric(
    read_client, ingest, eager_celery, django_capture_on_commit_callbacks, admin_client
):
    with time_machine.travel(T0, tick=False):
        ingest(
            login("carol", event_type="PAGE_VIEW", session_id="s1"),
            login("carol", event_type="PAGE_VIEW", session_id="s1"),
        )
    assert read_at(read_client, T0)["total_users"] == 0
    with time_machine.travel(T0, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/events/eventtype/PAGE_VIEW/change/",
            {
                "name": "PAGE_VIEW",
                "category": "lifecycle",
                "description": "Viewed a page",
                "friction_signal": "",
                "friction_weight": "0",
                "engagement_weight": "0",
                "counts_as_real_interaction": "on",
            },
        )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert EventType.objects.get(name="PAGE_VIEW").counts_as_real_interaction
    assert read_at(read_client, T0)["total_users"] == 1


def test_it_shows_the_current_state_table(read_client, ingest):
    with time_machine.travel(T0, tick=False):
        ingest(
            login("a", event_type="SIGNUP", occurred_at="2026-02-01T12:32:15+00:00"),
            login("b", event_type="SIGNUP", occurred_at="2026-02-05T12:32:15+00:00"),
            login("a", event_type="LOGIN", occurred_at="2026-02-07T12:32:15+00:00"),
            login("a", event_type="CORE_ACTION", occurred_at="2026-02-08T00:32:15+00:00"),
            login("founder", event_type="DECISION", metadata={"demo": True}),  # excluded
        )
    rows = {r["metric"]: r for r in read_at(read_client, T0)["current_state"]}
    assert (rows["signup"]["days_since_first"], rows["signup"]["days_since_last"]) == (7.0, 3.0)
    assert (rows["login"]["days_since_first"], rows["login"]["days_since_last"]) == (1.0, 1.0)
    assert rows["core_action"]["days_since_last"] == 0.5
    assert rows["decision"] == {
        "metric": "decision",
        "event_type": "DECISION",
        "days_since_first": None,
        "days_since_last": None,
        "first_at": None,
        "last_at": None,
        "status": "no_users_yet",
    }


def test_it_reports_dau_mau_against_editable_targets_and_milestones(read_client, ingest):
    NorthStarSettings.objects.filter(pk=1).update(dau_target=2, mau_target=3)
    with time_machine.travel(T0, tick=False):
        ingest(
            login("u1", occurred_at="2026-02-01T08:00:00+00:00"),
            login("u2", occurred_at="2026-02-03T08:00:00+00:00"),
            login("u3", occurred_at="2026-02-08T08:00:00+00:00"),
            login("u1", occurred_at="2026-02-08T09:00:00+00:00"),
        )
    Milestone.objects.filter(users=5).update(users=3)  # edited in admin
    body = read_at(read_client, T0)
    assert body["daily_active_users"] == {"value": 2, "target": 2, "status": "on_target"}
    assert body["monthly_active_users"] == {"value": 3, "target": 3, "status": "on_target"}
    milestones = {m["name"]: m for m in body["milestones"]}
    assert milestones["No users yet"]["reached"] is True
    assert milestones["First user signs up"]["reached_at"] == "2026-02-01T08:00:00+00:00"
    assert milestones["First user signs up"]["on_time"] is True
    assert milestones["5 active users"]["reached_at"] == "2026-02-08T08:00:00+00:00"
    assert milestones["5 active users"]["days_metric_met"] is True  # 0.15 days < 1
    assert milestones["10 paying users"] == {
        "name": "10 paying users",
        "target_date": "2026-03-01",
        "users": 10,
        "max_days": 0.5,
        "reached": False,
        "reached_at": None,
        "on_time": None,
        "days_metric_met": True,
    }


def test_it_never_scans_the_event_table_to_answer(read_client, ingest):
    with time_machine.travel(T0, tick=False):
        ingest(login())
    with CaptureQueriesContext(connection) as queries:
        read_at(read_client, T0)
    event_queries = [q["sql"] for q in queries if "ops_events" in q["sql"]]
    # Only the Current State probes touch ops_events; each must be an index probe of the partial index.
    assert len(event_queries) == 4
    with connection.cursor() as cursor:
        if ON_CITUS:
            # EXPLAIN shows a shard's plan, made on a worker: the SET below must reach it too.
            cursor.execute("SET LOCAL citus.propagate_set_commands = 'local'")
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table would otherwise be seq-scanned
        cursor.execute("EXPLAIN " + event_queries[0])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "ops_events_real_type_time" in plan


def test_the_cache_rebuilt_from_events_equals_the_one_ingestion_maintained(ingest):
    with time_machine.travel(T0, tick=False):
        for day in range(5):
            ingest(
                login(f"u{day % 3}", occurred_at=(T0 - timedelta(days=day)).isoformat()),
                login(f"u{day % 3}", event_type="SIGNUP", occurred_at=(T0 - timedelta(days=day, hours=3)).isoformat()),
                login(f"x{day}", metadata={"demo": True}),
            )
        dup = login("u9", occurred_at=(T0 - timedelta(days=9)).isoformat())
        ingest(dup)
        ingest({**dup, "occurred_at": T0.isoformat()})  # a resend with another time: the stored row wins
    incremental = sorted(RealUser.objects.values_list("user_id", "first_interaction_at", "last_interaction_at"))
    RealUser.objects.all().delete()
    real_users_rebuild()
    rebuilt = sorted(RealUser.objects.values_list("user_id", "first_interaction_at", "last_interaction_at"))
    assert rebuilt == incremental
    assert [u for u, _, _ in rebuilt] == ["u0", "u1", "u2", "u9"]
    assert dict((u, last) for u, _, last in rebuilt)["u9"] == T0 - timedelta(days=9)


# --- POST /metrics/interaction ---------------------------------------------------------
def test_it_records_an_interaction_by_its_spec_name(ingest_client, read_client):
    with time_machine.travel(T0, tick=False):
        response = ingest_client.post(
            "/metrics/interaction",
            {"user_id": "u_42", "interaction_type": "coach_call", "metadata": {"agent": "sre"}},
            format="json",
        )
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "recorded"}
    stored = Event.objects.get()
    assert (stored.event_type, stored.user_id, stored.is_real) == ("CORE_ACTION", "u_42", True)
    assert stored.metadata == {"interaction_type": "coach_call", "agent": "sre"}
    body = read_at(read_client, T0 + timedelta(hours=1))
    assert (body["total_users"], body["value"]) == (1, pytest.approx(1 / 24))


def test_it_records_a_registry_type_with_tenant_and_time(ingest_client):
    response = ingest_client.post(
        "/metrics/interaction",
        {
            "user_id": "u1",
            "interaction_type": "FEEDBACK",
            "tenant_id": "acme",
            "occurred_at": "2026-02-08T14:32:15+02:00",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    stored = Event.objects.get()
    assert (stored.event_type, stored.tenant_id, stored.occurred_at) == (
        "FEEDBACK",
        "acme",
        datetime(2026, 2, 8, 12, 32, 15, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"interaction_type": "login"}, "user_id"),
        ({"user_id": "", "interaction_type": "login"}, "user_id"),
        ({"user_id": 7, "interaction_type": "login"}, "user_id"),
        ({"user_id": "u1"}, "interaction_type"),
        ({"user_id": "u1", "interaction_type": "teleport"}, "interaction_type"),
        ({"user_id": "u1", "interaction_type": "login", "metadata": "x"}, "metadata"),
        ({"user_id": "u1", "interaction_type": "login", "occurred_at": "yesterday"}, "occurred_at"),
        ({"user_id": "u1", "interaction_type": "login", "colour": "red"}, "non_field_errors"),
    ],
)
def test_it_rejects_a_bad_interaction_and_stores_nothing(ingest_client, body, field):
    response = ingest_client.post("/metrics/interaction", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert Event.objects.count() == 0


def test_it_rejects_malformed_json_a_batch_and_the_wrong_key(ingest_client, read_client):
    bad = ingest_client.post("/metrics/interaction", b"{nope", content_type="application/json")
    assert bad.status_code == 400 and "Malformed JSON" in bad.json()["detail"]
    batch = ingest_client.post("/metrics/interaction", [{"user_id": "u1", "interaction_type": "login"}], format="json")
    assert batch.status_code == 400
    wrong = read_client.post("/metrics/interaction", {"user_id": "u1", "interaction_type": "login"}, format="json")
    assert wrong.status_code == 403
    assert Event.objects.count() == 0


def test_reading_the_metric_needs_a_read_key_or_staff(ingest_client, staff_client, client):
    assert client.get(URL).status_code == 401
    assert ingest_client.get(URL).status_code == 403
    assert staff_client.get(URL).status_code == 200


def test_a_rule_change_on_history_keeps_the_cache_exact(ingest):
    with time_machine.travel(T0, tick=False):
        ingest(login("u1", occurred_at="2026-02-01T00:00:00+00:00"), login("u1", metadata={"email": "me@us.example"}))
    from events.models import InternalUserRule

    InternalUserRule.objects.create(kind="email_domain", value="us.example")
    events_reclassify(now=T0)
    assert list(RealUser.objects.values_list("user_id", "last_interaction_at")) == [
        ("u1", datetime(2026, 2, 1, tzinfo=UTC))
    ]
