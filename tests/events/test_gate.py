"""The one ingestion gate, item by item, on every ingest endpoint: content types, gzip
(and its bombs), duplicate keys, events that belong to nobody, format size limits, the
per-key rate limit, and keys however they travel."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from core.models import ApiKey
from core.services import api_key_create
from events.models import Event

pytestmark = pytest.mark.django_db

NATIVE = "/api/v1/events"
INTERACTION = "/metrics/interaction"
POSTHOG_PATHS = ["/batch/", "/capture/", "/e/", "/i/v0/e/"]
SEGMENT_CALLS = ["track", "identify", "group", "page", "screen", "alias"]


def _key(**kwargs: Any) -> tuple[ApiKey, str]:
    return api_key_create(name="gate", scope="ingest", **kwargs)


def _native_body() -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "user_id": "u1", "tenant_id": "acme", "event_type": "LOGIN"}


def _bodies(raw: str) -> dict[str, tuple[dict[str, str], dict[str, Any]]]:
    """One valid body per ingest endpoint, with the headers that carry the key its way."""
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    basic = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{raw}:".encode()).decode()}
    posthog_event = {"event": "LOGIN", "distinct_id": "u1", "uuid": str(uuid.uuid4()), "properties": {}}
    out = {
        NATIVE: (bearer, _native_body()),
        INTERACTION: (bearer, {"user_id": "u1", "interaction_type": "login"}),
        "/v1/batch": (basic, {"batch": [{"type": "track", "userId": "u1", "event": "LOGIN", "messageId": "m-1"}]}),
    }
    for path in POSTHOG_PATHS:
        out[path] = ({}, {"api_key": raw, "batch": [posthog_event]})
    return out


def _post(client: Client, path: str, body: bytes, headers: dict[str, str], **extra: Any) -> Any:
    content_type = extra.pop("content_type", "application/json")
    return client.generic("POST", path, body, content_type=content_type, **headers, **extra)


@pytest.mark.parametrize("path", [NATIVE, INTERACTION, "/v1/batch", *POSTHOG_PATHS])
def test_every_endpoint_takes_gzip(path):
    _, raw = _key()
    headers, body = _bodies(raw)[path]
    response = _post(Client(), path, gzip.compress(json.dumps(body).encode()), headers, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200, response.content
    assert Event.objects.count() == 1


@pytest.mark.parametrize("path", [NATIVE, INTERACTION, "/v1/batch", *POSTHOG_PATHS])
def test_a_duplicate_key_is_refused_on_every_endpoint_and_stores_nothing(path):
    _, raw = _key()
    headers, body = _bodies(raw)[path]
    text = json.dumps(body)
    # The same key twice at the top level: {"a": 1, ..., "a": 1}.
    first_key = next(iter(body))
    doubled = text[:-1] + f", {json.dumps(first_key)}: {json.dumps(body[first_key])}" + "}"
    response = _post(Client(), path, doubled.encode(), headers)
    assert response.status_code == 400
    assert f"the key '{first_key}' appears twice" in response.json()["detail"]
    assert not Event.objects.exists()


def test_two_events_arrays_in_one_batch_are_refused_not_merged():
    _, raw = _key()
    a, b = json.dumps(_native_body()), json.dumps(_native_body())
    body = f'{{"events": [{a}], "events": [{b}]}}'.encode()
    response = _post(Client(), NATIVE, body, {"HTTP_AUTHORIZATION": f"Bearer {raw}"})
    assert response.status_code == 400
    assert "'events' appears twice" in response.json()["detail"]
    assert not Event.objects.exists()


def test_a_duplicate_key_deep_in_metadata_is_refused():
    _, raw = _key()
    body = b'{"user_id": "u1", "event_type": "LOGIN", "metadata": {"a": {"b": 1, "b": 2}}}'
    response = _post(Client(), NATIVE, body, {"HTTP_AUTHORIZATION": f"Bearer {raw}"})
    assert response.status_code == 400
    assert "'b' appears twice" in response.json()["detail"]


def test_a_one_gib_gzip_bomb_is_refused_without_inflating_it():
    # 1,024 gzip members of 1 MiB each: a valid gzip body that inflates to 1 GiB.
    member = gzip.compress(b" " * (1024 * 1024), compresslevel=9)
    bomb = member * 1024
    assert len(bomb) < 2 * 1024 * 1024
    assert zlib.decompressobj(31).decompress(member) == b" " * (1024 * 1024)
    _, raw = _key()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    for path in ("/batch/", NATIVE, "/v1/batch"):
        response = _post(Client(), path, bomb, headers, HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 413, path
        assert "byte limit" in response.json()["detail"]
    assert not Event.objects.exists()


def test_several_gzip_members_are_all_read():
    _, raw = _key()
    events = [_native_body() for _ in range(3)]
    body = gzip.compress(b'{"events": [') + gzip.compress(",".join(json.dumps(e) for e in events).encode())
    body += gzip.compress(b"]}")
    response = _post(Client(), NATIVE, body, {"HTTP_AUTHORIZATION": f"Bearer {raw}"}, HTTP_CONTENT_ENCODING="gzip")
    assert response.json()["accepted"] == 3


@pytest.mark.parametrize("path", [NATIVE, "/v1/batch", "/batch/"])
def test_an_event_with_neither_user_nor_account_is_refused(path):
    _, raw = _key()
    bodies = {
        NATIVE: {"event_type": "LOGIN", "tenant_id": " ", "user_id": ""},
        "/v1/batch": {"batch": [{"type": "track", "event": "LOGIN", "messageId": "m-9"}]},
        "/batch/": {"api_key": raw, "batch": [{"event": "LOGIN", "properties": {}}]},
    }
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    response = _post(Client(), path, json.dumps(bodies[path]).encode(), headers)
    assert response.status_code == 400
    assert "user" in json.dumps(response.json()["rejected"][0]["errors"]).lower()
    assert not Event.objects.exists()


@pytest.mark.parametrize("path", [NATIVE, INTERACTION, "/v1/batch", "/v1/track", *POSTHOG_PATHS])
def test_every_endpoint_counts_against_the_keys_rate_limit(path):
    _, raw = _key()
    ApiKey.objects.update(rate_limit_per_minute=1)
    headers, body = _bodies(raw).get(path, ({"HTTP_AUTHORIZATION": f"Bearer {raw}"}, None))
    if body is None:
        body = {"userId": "u1", "event": "LOGIN", "messageId": "m-2"}
    client = Client()
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    assert _post(client, path, json.dumps(body).encode(), headers).status_code == 200
    again = _post(client, path, json.dumps(body).encode(), headers)
    if again.status_code == 200 and datetime.now(UTC).replace(second=0, microsecond=0) != minute:
        # The limit counts per UTC minute: on a slow run the two requests fell in two minutes and
        # the second was the new minute's first; the next one is that minute's second.
        again = _post(client, path, json.dumps(body).encode(), headers)
    assert again.status_code == 429
    assert 1 <= int(again["Retry-After"]) <= 60
    assert "Rate limit" in again.json()["detail"]
    if path.startswith("/v1/"):
        assert again.json()["code"] == "rate_limited" and again.json()["message"]  # what RudderStack reads
    assert Event.objects.count() == 1


def test_a_wrong_content_type_is_415_on_the_sdk_endpoints_too():
    _, raw = _key()
    for path in ("/v1/batch", "/batch/"):
        response = _post(Client(), path, b"<xml/>", {"HTTP_AUTHORIZATION": f"Bearer {raw}"}, content_type="text/xml")
        assert response.status_code == 415
        assert "Content-Type must be" in response.json()["detail"]


def test_segment_refuses_a_batch_over_500_kb_and_a_call_over_32_kb():
    _, raw = _key()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    message = {"type": "track", "userId": "u1", "event": "LOGIN", "properties": {"pad": "x" * 20_000}}
    batch = {"batch": [{**message, "messageId": f"m-{i}"} for i in range(26)]}  # ~520 KB
    assert len(json.dumps(batch)) > 500 * 1024
    response = _post(Client(), "/v1/batch", json.dumps(batch).encode(), headers)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    big = {**message, "properties": {"pad": "x" * (33 * 1024)}}
    assert _post(Client(), "/v1/track", json.dumps(big).encode(), headers).status_code == 413
    assert not Event.objects.exists()


@pytest.mark.parametrize("call_type", [["track"], {"track": 1}, 7, None])
def test_segment_rejects_a_message_whose_type_is_not_a_string(call_type):
    _, raw = _key()
    good = {"type": "track", "userId": "u1", "event": "LOGIN", "messageId": "good"}
    odd = {**good, "messageId": "odd", "type": call_type}
    body = json.dumps({"batch": [good, odd]}).encode()
    response = _post(Client(), "/v1/batch", body, {"HTTP_AUTHORIZATION": f"Bearer {raw}"})
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"] == [
        {
            "index": 1,
            "event_id": "odd",
            "errors": {"type": ["Must be one of alias, group, identify, page, screen, track."]},
        }
    ]
    assert Event.objects.count() == 1


def test_segment_rejects_only_the_message_over_32_kb_in_a_batch():
    _, raw = _key()
    small = {"type": "track", "userId": "u1", "event": "LOGIN", "messageId": "small"}
    big = {**small, "messageId": "big", "properties": {"pad": "x" * (33 * 1024)}}
    body = json.dumps({"batch": [small, big]}).encode()
    response = _post(Client(), "/v1/batch", body, {"HTTP_AUTHORIZATION": f"Bearer {raw}"})
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"][0]["index"] == 1
    assert "32 KiB limit" in response.json()["rejected"][0]["errors"]["metadata"][0]


def test_posthog_refuses_an_event_over_1_mib_per_item():
    _, raw = _key()
    events = [
        {"event": "LOGIN", "distinct_id": "u1", "properties": {}},
        {"event": "LOGIN", "distinct_id": "u2", "properties": {"pad": "x" * (1024 * 1024 + 10)}},
    ]
    response = _post(Client(), "/batch/", json.dumps({"api_key": raw, "batch": events}).encode(), {})
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert "1024 KiB limit" in response.json()["rejected"][0]["errors"]["metadata"][0]


@pytest.mark.parametrize(
    ("headers_for", "expected"),
    [
        (lambda raw: {"HTTP_AUTHORIZATION": f"Bearer {raw}"}, 200),
        (lambda raw: {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{raw}:".encode()).decode()}, 200),
        (lambda raw: {}, 200),  # writeKey in the body
        (lambda raw: {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"oc_wrong:").decode()}, 401),
    ],
)
def test_segment_takes_the_write_key_as_basic_auth_bearer_or_body(headers_for, expected):
    _, raw = _key()
    body = {"writeKey": raw, "batch": [{"type": "track", "userId": "u1", "event": "LOGIN", "messageId": "k"}]}
    response = _post(Client(), "/v1/batch", json.dumps(body).encode(), headers_for(raw))
    assert response.status_code == expected
    if expected == 401:
        assert response.json() == {"code": "unauthorized", "message": "Unknown API key.", "detail": "Unknown API key."}


def test_a_revoked_or_read_key_cannot_send_through_an_sdk_endpoint():
    revoked, raw_revoked = _key()
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at="2026-01-01T00:00:00Z")
    _, raw_read = api_key_create(name="reader", scope="read")
    for raw, status in ((raw_revoked, 401), (raw_read, 403)):
        body = {"api_key": raw, "batch": [{"event": "LOGIN", "distinct_id": "u1"}]}
        response = _post(Client(), "/batch/", json.dumps(body).encode(), {})
        assert response.status_code == status
        assert response.json()["detail"]
    assert not Event.objects.exists()


def test_posthog_js_form_base64_and_gzip_js_bodies_are_read():
    _, raw = _key()
    events = [{"event": "LOGIN", "distinct_id": "u1", "properties": {"token": raw}, "uuid": str(uuid.uuid4())}]
    data = base64.b64encode(json.dumps(events).encode()).decode()
    form = urlencode({"data": data, "compression": "base64"})
    response = Client().post("/e/", form, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200, response.content
    again = [{**events[0], "uuid": str(uuid.uuid4())}]
    response = Client().generic(
        "POST", "/e/?compression=gzip-js", gzip.compress(json.dumps(again).encode()), content_type="text/plain"
    )
    assert response.status_code == 200, response.content
    assert Event.objects.count() == 2


def test_the_interaction_endpoint_refuses_what_the_gate_refuses():
    _, raw = _key()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    response = _post(Client(), INTERACTION, b'{"user_id": "u1", "user_id": "u2", "interaction_type": "login"}', headers)
    assert response.status_code == 400 and "appears twice" in response.json()["detail"]
    response = _post(Client(), INTERACTION, b"x", headers, HTTP_CONTENT_ENCODING="br")
    assert response.status_code == 415


def test_posthog_refuses_a_body_over_20_mib_and_reads_one_at_the_limit():
    _, raw = _key()
    limit = 20 * 1024 * 1024
    template = json.dumps({"api_key": raw, "batch": [{"event": "LOGIN", "distinct_id": "u1"}], "pad": ""})
    at_limit = template.replace('"pad": ""', '"pad": "' + "x" * (limit - len(template)) + '"').encode()
    assert len(at_limit) == limit
    assert _post(Client(), "/batch/", at_limit, {}).status_code == 200
    over = at_limit[:-2] + b' "}'
    assert len(over) == limit + 1
    response = _post(Client(), "/batch/", over, {})
    assert response.status_code == 413
    assert response.json()["detail"] == f"Request body is over the {limit} byte limit."
    assert Event.objects.count() == 1
