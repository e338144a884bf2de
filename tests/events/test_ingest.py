"""The ingestion API: receipts, idempotency, partial batches and every error path."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import ApiKey
from customers.models import Tenant
from events.models import Event, EventType

pytestmark = pytest.mark.django_db
URL = "/api/v1/events"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _event(**overrides):
    body = {
        "event_id": str(uuid.uuid4()),
        "tenant_id": "acme",
        "user_id": "u1",
        "session_id": "s1",
        "event_type": "REPLAY_STARTED",
        "occurred_at": "2026-03-02T10:00:00+00:00",
        "metadata": {"user_agent": "Mozilla/5.0"},
    }
    body.update(overrides)
    return body


def _post_raw(client: APIClient, body: bytes | str, content_type: str = "application/json", **extra):
    return client.generic("POST", URL, body, content_type=content_type, **extra)


@time_machine.travel(NOW, tick=False)
def test_it_stores_one_event_with_every_field(ingest_client):
    event = _event(metadata={"user_agent": "Mozilla/5.0", "plan": "pro"})
    response = ingest_client.post(URL, event, format="json")
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    stored = Event.objects.get(event_id=event["event_id"])
    assert (stored.tenant_id, stored.user_id, stored.session_id) == ("acme", "u1", "s1")
    assert stored.occurred_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert stored.received_at == NOW
    assert stored.metadata == {"user_agent": "Mozilla/5.0", "plan": "pro"}
    assert stored.friction_signal == "intent"
    assert stored.source is not None and stored.source.name == "backend"


def test_it_creates_the_tenant_on_first_sight(ingest_client):
    ingest_client.post(URL, {"events": [_event(tenant_id="globex"), _event(tenant_id="globex")]}, format="json")
    assert list(Tenant.objects.values_list("tenant_id", "kind")) == [("globex", "customer")]


def test_it_accepts_a_signup_without_a_tenant(ingest_client):
    response = ingest_client.post(URL, _event(tenant_id=None, event_type="SIGNUP"), format="json")
    assert response.json()["accepted"] == 1
    assert Event.objects.get().tenant_id == ""
    assert not Tenant.objects.exists()


def test_it_generates_an_event_id_and_defaults_occurred_at_to_now(ingest_client):
    with time_machine.travel(NOW, tick=False):
        response = ingest_client.post(URL, {"event_type": "LOGIN", "user_id": "u1"}, format="json")
    assert response.json()["accepted"] == 1
    stored = Event.objects.get()
    assert stored.event_id is not None
    assert stored.occurred_at == NOW


def test_every_utc_spelling_of_occurred_at_is_stored_as_the_instant_it_names(ingest_client):
    sent = {
        "2026-03-02T10:00:00Z": datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
        "2026-03-02T10:00:00.5+00:00": datetime(2026, 3, 2, 10, 0, 0, 500000, tzinfo=UTC),
        "2026-03-02T10:00:00.123456Z": datetime(2026, 3, 2, 10, 0, 0, 123456, tzinfo=UTC),
        # A seventh digit: the stored instant is the one validation read (truncated), not PostgreSQL's rounding.
        "2026-03-02T10:00:00.9999999Z": datetime(2026, 3, 2, 10, 0, 0, 999999, tzinfo=UTC),
        "2026-03-02 10:00:00+00:00": datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
        "2026-03-02T11:30:00+01:30": datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
        "2026-03-02T10:00:00-00:00": datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
    }
    events = [_event(occurred_at=text) for text in sent]
    with time_machine.travel(NOW, tick=False):
        assert ingest_client.post(URL, {"events": events}, format="json").json()["accepted"] == len(sent)
    stored = dict(Event.objects.values_list("event_id", "occurred_at"))
    assert [stored[uuid.UUID(e["event_id"])] for e in events] == list(sent.values())


def test_resending_a_batch_stores_nothing_twice(ingest_client):
    batch = {"events": [_event(), _event(), _event()]}
    first = ingest_client.post(URL, batch, format="json").json()
    second = ingest_client.post(URL, batch, format="json").json()
    assert first == {"accepted": 3, "duplicates": 0, "rejected": []}
    assert second == {"accepted": 0, "duplicates": 3, "rejected": []}
    assert Event.objects.count() == 3


def test_the_same_event_id_twice_in_one_batch_is_stored_once(ingest_client):
    event = _event()
    response = ingest_client.post(URL, {"events": [event, event]}, format="json")
    assert response.json() == {"accepted": 1, "duplicates": 1, "rejected": []}


def test_a_partial_batch_stores_the_valid_items_and_explains_the_rest(ingest_client):
    good = [_event(), _event()]
    bad_time = _event(occurred_at="yesterday")
    response = ingest_client.post(URL, {"events": [good[0], bad_time, good[1], "nope"]}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert [r["index"] for r in body["rejected"]] == [1, 3]
    assert body["rejected"][0]["event_id"] == bad_time["event_id"]
    assert "ISO 8601" in body["rejected"][0]["errors"]["occurred_at"][0]
    assert body["rejected"][1]["errors"] == {"non_field_errors": ["Each event must be a JSON object."]}
    assert set(Event.objects.values_list("event_id", flat=True)) == {uuid.UUID(e["event_id"]) for e in good}


def test_a_name_the_registry_does_not_know_is_parked_and_named_in_the_receipt(ingest_client):
    own = [_event(event_type="Task moved"), _event(event_type="Task moved"), _event(event_type="Board opened")]
    response = ingest_client.post(URL, {"events": [_event(), *own]}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 4,
        "duplicates": 0,
        "rejected": [],
        "parked": 3,
        "parked_types": ["Board opened", "Task moved"],
    }
    parked = Event.objects.filter(exclusion_reason="unregistered", is_real=False)
    assert sorted(parked.values_list("event_type", flat=True)) == ["Board opened", "Task moved", "Task moved"]


def test_the_strict_mode_rejects_an_unregistered_name_naming_it(ingest_client, settings):
    settings.INGEST_REJECT_UNREGISTERED = True
    good, own = _event(), _event(event_type="TELEPORTED")
    body = ingest_client.post(URL, {"events": [good, own]}, format="json").json()
    assert (body["accepted"], [r["index"] for r in body["rejected"]]) == (1, [1])
    assert body["rejected"][0]["event_id"] == own["event_id"]
    assert "Unknown event type 'TELEPORTED'" in body["rejected"][0]["errors"]["event_type"][0]
    assert list(Event.objects.values_list("event_type", flat=True)) == ["REPLAY_STARTED"]


def test_a_key_asking_to_park_still_parks_in_the_strict_mode(make_key, settings):
    settings.INGEST_REJECT_UNREGISTERED = True
    key, raw = make_key("ingest", "legacy-backend")
    ApiKey.objects.filter(pk=key.pk).update(park_unregistered=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = client.post(URL, _event(event_type="TELEPORTED"), format="json").json()
    assert (body["accepted"], body["rejected"], body["parked_types"]) == (1, [], ["TELEPORTED"])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tenant_id", 42, "Must be a string, not int."),
        ("user_id", ["u"], "Must be a string, not list."),
        ("session_id", {"a": 1}, "Must be a string, not dict."),
        ("event_type", 7, "Must be a string, not int."),
        ("event_id", "not-a-uuid", "'not-a-uuid' is not a valid UUID."),
        ("event_id", 12, "Must be a UUID string."),
        ("occurred_at", 1700000000, "Must be an ISO 8601 string with a UTC offset"),
        ("occurred_at", "2026-03-02T10:00:00", "Must include a UTC offset"),
        ("occurred_at", "1999-12-31T23:59:59Z", "Is before 2000-01-01"),
        ("metadata", "plain", "Must be a JSON object, not str."),
        ("metadata", {"note": "a\x00b"}, "NUL character"),
        ("tenant_id", "x" * 129, "Is 129 characters long; the limit is 128."),
    ],
)
def test_a_wrong_field_is_rejected_with_its_reason(ingest_client, field, value, message):
    response = ingest_client.post(URL, {"events": [_event(**{field: value})]}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 0
    assert message in body["rejected"][0]["errors"][field][0]
    assert not Event.objects.exists()


def test_an_unknown_field_is_rejected_so_typos_are_not_lost(ingest_client):
    response = ingest_client.post(URL, _event(occured_at="2026-03-02T10:00:00Z"), format="json")
    assert response.status_code == 400
    assert "Unknown field(s): occured_at" in response.json()["rejected"][0]["errors"]["non_field_errors"][0]


@time_machine.travel(NOW, tick=False)
def test_occurred_at_more_than_five_minutes_ahead_is_rejected_per_item(ingest_client):
    ok = _event(occurred_at=(NOW + timedelta(minutes=4, seconds=59)).isoformat())
    ahead = _event(occurred_at=(NOW + timedelta(minutes=5, seconds=1)).isoformat())
    body = ingest_client.post(URL, {"events": [ok, ahead]}, format="json").json()
    assert body["accepted"] == 1
    assert "more than 5 minutes in the future" in body["rejected"][0]["errors"]["occurred_at"][0]


def test_a_type_added_in_the_registry_is_accepted_at_once(ingest_client):
    assert ingest_client.post(URL, _event(event_type="INVOICE_PAID"), format="json").json()["parked"] == 1
    EventType.objects.create(name="INVOICE_PAID", category="custom")
    assert ingest_client.post(URL, _event(event_type="INVOICE_PAID"), format="json").json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": [],
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Malformed JSON"),
        (b"", "Request body is empty"),
        (b"42", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b'{"events": {"a": 1}}', "'events' must be an array"),
        (b'{"events": []}', "'events' is empty"),
        (b'{"events": [], "extra": 1}', "unexpected keys: extra"),
        (b'{"event_type": "LOGIN", "metadata": {"x": "\xff"}}', "not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "Malformed JSON"),
    ],
)
def test_a_malformed_body_is_a_400_that_changes_nothing(ingest_client, body, message):
    response = _post_raw(ingest_client, body)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert not Event.objects.exists()


def test_a_wrong_content_type_is_415(ingest_client):
    response = _post_raw(ingest_client, json.dumps(_event()), content_type="text/plain")
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]
    assert not Event.objects.exists()


def test_an_encoding_it_cannot_inflate_is_415(ingest_client):
    response = _post_raw(ingest_client, b"\x1f\x8b...", HTTP_CONTENT_ENCODING="br")
    assert response.status_code == 415
    assert "not accepted" in response.json()["detail"]


def test_a_corrupt_gzip_body_is_400(ingest_client):
    response = _post_raw(ingest_client, b"\x1f\x8b...", HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert "corrupt" in response.json()["detail"]
    assert not Event.objects.exists()


def test_more_than_1000_events_is_413_and_stores_nothing(ingest_client):
    response = ingest_client.post(URL, {"events": [_event() for _ in range(1001)]}, format="json")
    assert response.status_code == 413
    assert "1001 events" in response.json()["detail"]
    assert not Event.objects.exists()


def test_exactly_1000_events_are_accepted(ingest_client):
    response = ingest_client.post(URL, {"events": [_event() for _ in range(1000)]}, format="json")
    assert response.json()["accepted"] == 1000


def _body_of_size(size: int) -> str:
    """A well-formed batch whose encoded size is exactly ``size`` bytes."""
    template = json.dumps({"events": [_event(metadata={"pad": ""})]})
    return template.replace('"pad": ""', '"pad": "' + "x" * (size - len(template)) + '"')


def test_a_body_one_byte_over_1_mib_is_413(ingest_client):
    body = _body_of_size(1024 * 1024 + 1)
    assert len(body.encode()) == 1024 * 1024 + 1
    response = _post_raw(ingest_client, body)
    assert response.status_code == 413
    assert "1048576 byte limit" in response.json()["detail"]
    assert not Event.objects.exists()


def test_a_body_of_exactly_1_mib_is_read_and_judged_per_item(ingest_client):
    response = _post_raw(ingest_client, _body_of_size(1024 * 1024))
    assert response.status_code == 400  # parsed: only the 64 KiB metadata limit rejects it
    assert "64 KiB limit" in response.json()["rejected"][0]["errors"]["metadata"][0]


def test_no_key_is_401(db):
    response = APIClient().post(URL, _event(), format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_key_is_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer oc_not_a_real_key")
    response = client.post(URL, _event(), format="json")
    assert response.status_code == 401
    assert response.json()["detail"] == "Unknown API key."


def test_a_revoked_key_is_401(make_key):
    key, raw = make_key("ingest")
    key.revoked_at = timezone.now()
    key.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.post(URL, _event(), format="json")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert not Event.objects.exists()


def test_it_rejects_a_read_key_on_ingest(read_client):
    response = read_client.post(URL, _event(), format="json")
    assert response.status_code == 403
    assert "scope 'read'" in response.json()["detail"]
    assert not Event.objects.exists()


def test_a_key_in_the_query_string_is_not_accepted(make_key):
    _, raw = make_key("ingest")
    response = Client().post(f"{URL}?key={raw}", json.dumps(_event()), content_type="application/json")
    assert response.status_code == 401


def test_keys_are_stored_hashed(make_key):
    key, raw = make_key("ingest")
    assert raw not in (key.key_hash, key.prefix)
    assert key.key_hash == __import__("hashlib").sha256(raw.encode()).hexdigest()


def test_nan_in_the_body_is_a_400(ingest_client):
    response = _post_raw(ingest_client, b'{"event_type": "LOGIN", "metadata": {"score": NaN}}')
    assert response.status_code == 400
    assert "NaN is not valid JSON" in response.json()["detail"]


def test_a_lone_surrogate_in_metadata_is_rejected_per_item(ingest_client):
    body = (
        '{"events": [{"user_id": "u1", "event_type": "LOGIN", "metadata": {"name": "\\ud800"}},'
        ' {"user_id": "u1", "event_type": "LOGIN"}]}'
    )
    response = _post_raw(ingest_client, body)
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert "unpaired surrogate" in response.json()["rejected"][0]["errors"]["metadata"][0]


def test_a_literal_backslash_u0000_text_is_stored_as_written(ingest_client):
    response = ingest_client.post(URL, _event(metadata={"path": "C:\\u0000dir"}), format="json")
    assert response.json()["accepted"] == 1
    assert Event.objects.get().metadata == {"path": "C:\\u0000dir"}


def test_an_upper_case_event_id_is_the_same_event(ingest_client):
    event = _event()
    ingest_client.post(URL, event, format="json")
    again = ingest_client.post(URL, {**event, "event_id": event["event_id"].upper()}, format="json")
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": []}


def test_deeply_nested_metadata_is_stored_or_rejected_never_a_500(ingest_client):
    body = '{"event_type": "LOGIN", "metadata": {"a": ' + "[" * 900 + "]" * 900 + "}}"
    response = _post_raw(ingest_client, body)
    assert response.status_code in (200, 400)


def test_it_stores_ids_and_metadata_with_tabs_backslashes_and_line_breaks_exactly(ingest_client):
    # The batch travels to PostgreSQL in COPY's text format, where these characters mean something.
    event = _event(
        tenant_id="acme\\eu",
        user_id="u\t1",
        session_id="s\n1\r",
        metadata={"path": "C:\\Users\\a", "note": "two\nlines\ttab", "quote": '"\\"', "unicode": "é\u2028"},
    )
    response = ingest_client.post(URL, {"events": [event, _event()]}, format="json")
    assert response.json()["accepted"] == 2
    stored = Event.objects.get(event_id=event["event_id"])
    assert (stored.tenant_id, stored.user_id, stored.session_id) == ("acme\\eu", "u\t1", "s\n1")
    assert stored.metadata == {"path": "C:\\Users\\a", "note": "two\nlines\ttab", "quote": '"\\"', "unicode": "é\u2028"}


def test_two_batches_in_one_transaction_store_each_once(ingest_client):
    # The staging table is emptied by the insert that reads it, not only at commit.
    from django.db import transaction

    from events.ingestion.services import events_ingest

    first, second = [_event(), _event()], [_event()]
    with transaction.atomic():
        assert events_ingest(items=first, source=None).accepted == 2
        receipt = events_ingest(items=second + first, source=None)
    assert (receipt.accepted, receipt.duplicates) == (1, 2)
    assert Event.objects.count() == 3
