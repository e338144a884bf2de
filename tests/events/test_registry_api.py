"""The registry's REST contract: GET /ops/event-types, GET, PUT and DELETE /ops/event-types/{name}."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from customers.metrics.recompute import metrics_recompute
from customers.models import TenantMetrics
from events.models import ClassificationState, EventType
from tests.customers.conftest import Ev, days_ago, events_store

pytestmark = pytest.mark.django_db

INVOICE_SENT = {
    "label": "Invoice sent",
    "category": "value",
    "description": "An invoice went to a customer",
    "core_value": True,
    "friction_signal": "",
    "friction_weight": 0,
    "engagement_weight": 1.5,
    "north_star_role": "core_action",
    "page_view": False,
    "counts_as_real_interaction": True,
}


def _client(make_key: Any, scope: str) -> APIClient:
    _, raw = make_key(scope, f"k-{scope}")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_the_list_gives_every_type_with_every_field(read_client):
    body = read_client.get("/ops/event-types").json()
    assert len(body) == EventType.objects.count()
    blocked = next(e for e in body if e["name"] == "POLICY_BLOCK_REPEAT")
    assert blocked == {
        "name": "POLICY_BLOCK_REPEAT",
        "label": "Policy block repeat",
        "category": "friction",
        "description": "The same policy blocked repeatedly",
        "core_value": False,
        "friction_signal": "blocked",
        "friction_weight": 2.0,
        "engagement_weight": 0.0,
        "north_star_role": "",
        "page_view": False,
        "counts_as_real_interaction": False,
    }
    login = next(e for e in body if e["name"] == "LOGIN")
    assert login["north_star_role"] == "login" and login["counts_as_real_interaction"] is True


def test_a_staff_session_reads_and_writes(staff_client):
    assert staff_client.get("/ops/event-types").status_code == 200
    assert staff_client.put("/ops/event-types/invoice_sent", INVOICE_SENT, format="json").status_code == 201


def test_it_creates_with_201_and_replaces_with_200(make_key):
    writer = _client(make_key, "write")
    created = writer.put("/ops/event-types/invoice_sent", INVOICE_SENT, format="json")
    assert created.status_code == 201
    assert created.json() == {"name": "invoice_sent", **INVOICE_SENT, "friction_weight": 0.0}
    replaced = writer.put(
        "/ops/event-types/invoice_sent", {"label": "Invoice emailed", "engagement_weight": 2}, format="json"
    )
    assert replaced.status_code == 200
    # A replace: what the body leaves out goes back to its default.
    assert replaced.json()["label"] == "Invoice emailed" and replaced.json()["core_value"] is False
    stored = EventType.objects.get(name="invoice_sent")
    assert (stored.engagement_weight, stored.core_value, stored.category) == (2.0, False, "custom")


def test_names_match_in_any_case_and_keep_their_first_spelling(make_key):
    writer = _client(make_key, "write")
    assert writer.get("/ops/event-types/login").json()["name"] == "LOGIN"
    answer = writer.put(
        "/ops/event-types/login", {"north_star_role": "login", "counts_as_real_interaction": True}, format="json"
    )
    assert answer.status_code == 200 and answer.json()["name"] == "LOGIN"
    assert list(EventType.objects.filter(name__iexact="login").values_list("name", flat=True)) == ["LOGIN"]


def test_names_with_spaces_and_dollars_travel_percent_encoded(make_key):
    writer = _client(make_key, "write")
    assert writer.put("/ops/event-types/Order%20Completed", {"core_value": True}, format="json").status_code == 201
    assert writer.put("/ops/event-types/%24pageview", {"page_view": True}, format="json").status_code == 201
    assert writer.get("/ops/event-types/order%20completed").json()["label"] == "Order Completed"
    assert writer.get("/ops/event-types/%24PAGEVIEW").json()["page_view"] is True


def test_an_unknown_name_is_404(read_client):
    answer = read_client.get("/ops/event-types/nope")
    assert answer.status_code == 404 and "nope" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"friction_weight": 1e308}, "friction_weight"),
        ({"engagement_weight": -1}, "engagement_weight"),
        ({"friction_weight": 100.5}, "friction_weight"),
        ({"friction_weight": "banana"}, "friction_weight"),
        ({"friction_signal": "banana"}, "friction_signal"),
        ({"north_star_role": "banana"}, "north_star_role"),
        ({"category": "banana"}, "category"),
        ({"label": "x" * 101}, "label"),
        ({"core_value": "banana"}, "core_value"),
        ({"name": "other"}, "name"),
    ],
)
def test_a_bad_value_is_a_400_naming_the_field_and_changes_nothing(make_key, body, field):
    writer = _client(make_key, "write")
    before = list(EventType.objects.order_by("name").values())
    answer = writer.put("/ops/event-types/LOGIN", body, format="json")
    assert answer.status_code == 400
    assert field in answer.json() and answer.json()[field][0]
    assert list(EventType.objects.order_by("name").values()) == before


@pytest.mark.parametrize("name", ["x" * 65, "tab%09inside", "%20leading"])
def test_a_bad_name_is_a_400(make_key, name):
    writer = _client(make_key, "write")
    answer = writer.put(f"/ops/event-types/{name}", {}, format="json")
    assert answer.status_code == 400 and answer.json()["name"][0]
    assert not EventType.objects.filter(name__startswith="x" * 65).exists()


def test_a_name_of_64_characters_is_accepted(make_key):
    assert _client(make_key, "write").put(f"/ops/event-types/{'y' * 64}", {}, format="json").status_code == 201


def test_a_read_key_may_read_but_not_write(read_client):
    answer = read_client.put("/ops/event-types/invoice_sent", INVOICE_SENT, format="json")
    assert answer.status_code == 403 and answer.json()["detail"]
    assert not EventType.objects.filter(name="invoice_sent").exists()


def test_an_ingest_key_may_neither_read_nor_write(ingest_client):
    assert ingest_client.get("/ops/event-types").status_code == 403
    assert ingest_client.get("/ops/event-types/LOGIN").status_code == 403
    assert ingest_client.put("/ops/event-types/invoice_sent", INVOICE_SENT, format="json").status_code == 403


def test_anonymous_is_401():
    client = APIClient()
    assert client.get("/ops/event-types").status_code == 401
    assert client.put("/ops/event-types/invoice_sent", INVOICE_SENT, format="json").status_code == 401


def test_an_edit_of_what_counts_reclassifies_history(make_key, django_capture_on_commit_callbacks):
    ClassificationState.objects.get_or_create(pk=1)
    version = ClassificationState.objects.get(pk=1).rules_version
    writer = _client(make_key, "write")
    with django_capture_on_commit_callbacks() as callbacks:
        writer.put("/ops/event-types/PAGE_VIEW", {"category": "lifecycle", "page_view": False}, format="json")
    assert ClassificationState.objects.get(pk=1).rules_version == version + 1
    assert len(callbacks) == 1  # the reclassification of history, queued on commit
    # A label edit changes nothing about what is real.
    writer.put("/ops/event-types/PAGE_VIEW", {"category": "lifecycle", "label": "Page seen"}, format="json")
    assert ClassificationState.objects.get(pk=1).rules_version == version + 1


def test_the_schema_describes_the_registry_field_by_field(staff_client):
    schema = staff_client.get("/api/schema/?format=json").json()
    assert {"get", "put"} <= set(schema["paths"]["/ops/event-types/{name}"])
    assert "get" in schema["paths"]["/ops/event-types"]
    props = schema["components"]["schemas"]["EventType"]["properties"]
    assert set(props) == set(INVOICE_SENT) | {"name"}
    assert "0-100" in props["friction_weight"]["description"]
    assert "blocked" in props["friction_signal"]["description"]


@pytest.mark.django_db(transaction=True)
def test_a_weight_put_takes_effect_at_the_next_incremental_recompute(make_key, metrics_db):
    metrics_db([Ev("acme", "INCIDENT_VIEWED", days_ago(d)) for d in range(7)])
    metrics_recompute()
    assert TenantMetrics.objects.get(tenant_id="acme").stickiness_7d == pytest.approx(1.4)  # 7 x 0.2
    viewed = _client(make_key, "write").get("/ops/event-types/incident_viewed").json()
    answer = _client(make_key, "write").put(
        "/ops/event-types/incident_viewed", {**viewed, "label": "", "engagement_weight": 1}, format="json"
    )
    assert answer.status_code == 200
    assert metrics_recompute().mode == "incremental"
    assert TenantMetrics.objects.get(tenant_id="acme").stickiness_7d == pytest.approx(7.0)  # 7 x 1


def test_a_name_with_a_newline_is_a_400_not_a_404(make_key, read_client):
    answer = _client(make_key, "write").put("/ops/event-types/two%0Alines", {}, format="json")
    assert answer.status_code == 400 and answer.json()["name"][0]
    assert read_client.get("/ops/event-types/two%0Alines").status_code == 404  # GET: simply not registered


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (
            "friction_signal",
            "'banana' is not a friction signal; choose one of: "
            "friction, hesitation, intent, system_issue, blocked, engagement or leave it empty.",
        ),
        (
            "north_star_role",
            "'banana' is not a north-star role; choose one of: "
            "signup, login, core_action, decision, feedback or leave it empty.",
        ),
        (
            "category",
            "'banana' is not a category; choose one of: friction, intent, value, engagement, lifecycle, change, custom.",
        ),
    ],
)
def test_a_bad_choice_is_answered_with_the_valid_choices(make_key, field, message):
    answer = _client(make_key, "write").put("/ops/event-types/LOGIN", {field: "banana"}, format="json")
    assert answer.status_code == 400
    assert answer.json()[field] == [message]


def test_the_weight_scales_say_what_1_and_100_mean(staff_client):
    props = staff_client.get("/api/schema/?format=json").json()["components"]["schemas"]["EventType"]["properties"]
    assert (
        "1 is a small stumble, 100 means one event alone fills the session's cap"
        in props["friction_weight"]["description"]
    )
    assert (
        "1 is one unit of use, 100 counts one event like 100 events of weight 1"
        in props["engagement_weight"]["description"]
    )


def test_a_type_never_sent_is_deleted_and_its_name_parks_afterwards(make_key, ingest_client):
    writer = _client(make_key, "write")
    assert writer.delete("/ops/event-types/cert_generated").status_code == 204  # any case
    assert not EventType.objects.filter(name="CERT_GENERATED").exists()
    assert writer.get("/ops/event-types/CERT_GENERATED").status_code == 404
    sent = {"tenant_id": "acme", "user_id": "u1", "event_type": "CERT_GENERATED"}
    assert ingest_client.post("/api/v1/events", sent, format="json").json()["parked_types"] == ["CERT_GENERATED"]
    assert writer.delete("/ops/event-types/CERT_GENERATED").status_code == 404


def test_a_type_with_stored_events_is_409_unless_asked_to_retire_it(make_key):
    events_store([Ev("acme", "REPLAY_FAILED", days_ago(3)), Ev("acme", "REPLAY_FAILED", days_ago(2), is_real=False)])
    writer = _client(make_key, "write")
    refused = writer.delete("/ops/event-types/REPLAY_FAILED")
    assert refused.status_code == 409
    assert "?retire=1" in refused.json()["detail"]
    assert EventType.objects.get(name="REPLAY_FAILED").friction_signal == "system_issue"  # unchanged

    retired = writer.delete("/ops/event-types/REPLAY_FAILED?retire=1")
    assert retired.status_code == 200
    assert retired.json() == {
        "name": "REPLAY_FAILED",
        "label": "Replay failed",
        "category": "custom",
        "description": "Replay failed with an error",
        "core_value": False,
        "friction_signal": "",
        "friction_weight": 0.0,
        "engagement_weight": 0.0,
        "north_star_role": "",
        "page_view": False,
        "counts_as_real_interaction": False,
    }
    with connection.cursor() as cursor:  # the history is kept, neither deleted nor parked
        cursor.execute("SELECT count(*) FROM ops_events WHERE event_type = 'REPLAY_FAILED'")
        assert cursor.fetchone()[0] == 2


def test_a_bad_retire_value_lists_the_valid_ones(make_key):
    answer = _client(make_key, "write").delete("/ops/event-types/LOGIN?retire=please")
    assert answer.status_code == 400
    assert answer.json() == {"retire": ["'please' is not one of: 1, true, 0, false."]}
    assert EventType.objects.filter(name="LOGIN").exists()


def test_only_a_write_key_or_staff_may_delete(read_client, ingest_client, staff_client):
    assert read_client.delete("/ops/event-types/CERT_GENERATED").status_code == 403
    assert ingest_client.delete("/ops/event-types/CERT_GENERATED").status_code == 403
    assert APIClient().delete("/ops/event-types/CERT_GENERATED").status_code == 401
    assert EventType.objects.filter(name="CERT_GENERATED").exists()
    assert staff_client.delete("/ops/event-types/CERT_GENERATED").status_code == 204
