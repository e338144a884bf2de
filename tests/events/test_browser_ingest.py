"""What a web page's SDK sees from the ingest endpoints: CORS, posthog-js's wire quirks, the
configuration answers, and one person across an anonymous id and a user id. (The real SDKs in
Chromium: tests/browser/test_browser_sdks.py.)"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any
from unittest import mock

import pytest
from django.test import Client

from core.models import ApiKey
from core.services import api_key_create
from events.models import Event, EventType, RealUser, UserAlias

pytestmark = pytest.mark.django_db

PAGE = "https://www.shop.example"


@pytest.fixture
def raw_key(settings: Any) -> str:
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 0
    return api_key_create(name="web", scope="ingest")[1]


def _posthog(client: Client, raw: str, events: list[dict[str, Any]], **extra: Any) -> Any:
    body = [{**e, "properties": {"token": raw, **e.get("properties", {})}} for e in events]
    return client.post("/e/", json.dumps(body), content_type="text/plain", **extra)


def test_a_preflight_is_answered_for_any_ingest_endpoint_without_credentials():
    for path in ("/e/", "/v1/t", "/v1/batch", "/api/v1/events", "/flags/?v=2"):
        answer = Client().options(
            path,
            HTTP_ORIGIN=PAGE,
            HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type",
        )
        assert answer.status_code == 204, path
        assert answer["Access-Control-Allow-Origin"] == PAGE
        assert "POST" in answer["Access-Control-Allow-Methods"]
        assert "Authorization" in answer["Access-Control-Allow-Headers"]
        assert "Access-Control-Allow-Credentials" not in answer


def test_a_path_is_resolved_for_cors_once_and_its_answer_kept_until_the_url_configuration_changes(settings):
    from events import cors

    cors._CORS_PATHS.clear()
    with mock.patch.object(cors, "resolve", wraps=cors.resolve) as resolving:
        for _ in range(3):
            assert (
                Client().options("/e/", HTTP_ORIGIN=PAGE, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST").status_code == 204
            )
            assert "Access-Control-Allow-Origin" not in Client().get("/ops/customers", HTTP_ORIGIN=PAGE)
        assert resolving.call_count == 2
        settings.ROOT_URLCONF = "opsconsole.urls"  # any change of it forgets the answers
        Client().options("/e/", HTTP_ORIGIN=PAGE, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
        assert resolving.call_count == 3


def test_the_read_api_never_answers_a_cross_origin_request(raw_key):
    _, read = api_key_create(name="reader", scope="read")
    preflight = Client().options("/ops/customers", HTTP_ORIGIN=PAGE, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert "Access-Control-Allow-Origin" not in preflight
    answer = Client().get("/ops/customers", HTTP_ORIGIN=PAGE, HTTP_AUTHORIZATION=f"Bearer {read}")
    assert "Access-Control-Allow-Origin" not in answer


def test_errors_are_readable_by_the_page_and_name_the_problem(raw_key):
    unknown = Client().post(
        "/v1/t", json.dumps({"event": "x", "userId": "u"}), content_type="text/plain",
        HTTP_ORIGIN=PAGE, HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"oc_nope:").decode(),
    )  # fmt: skip
    assert unknown.status_code == 401
    assert unknown["Access-Control-Allow-Origin"] == PAGE
    assert unknown["Access-Control-Expose-Headers"] == "Retry-After"
    _, read = api_key_create(name="reader", scope="read")
    refused = _posthog(Client(), read, [{"event": "x", "distinct_id": "u"}], HTTP_ORIGIN=PAGE)
    assert refused.status_code == 403
    assert refused["Access-Control-Allow-Origin"] == PAGE
    assert not Event.objects.exists()


def test_a_key_limited_to_some_origins_refuses_the_others_with_a_403_the_page_can_read(raw_key):
    ApiKey.objects.update(allowed_origins=["https://app.shop.example"])
    refused = _posthog(Client(), raw_key, [{"event": "x", "distinct_id": "u"}], HTTP_ORIGIN=PAGE)
    assert refused.status_code == 403
    assert refused["Access-Control-Allow-Origin"] == PAGE
    assert "does not accept events from web pages on https://www.shop.example" in refused.json()["detail"]
    allowed = _posthog(Client(), raw_key, [{"event": "x", "distinct_id": "u"}], HTTP_ORIGIN="https://app.shop.example")
    assert allowed.status_code == 200
    server = _posthog(Client(), raw_key, [{"event": "y", "distinct_id": "u"}])  # no Origin: a server SDK
    assert server.status_code == 200
    assert Event.objects.count() == 2


def test_posthog_js_gzip_is_recognised_by_its_bytes_and_a_false_claim_is_a_400(raw_key):
    body = json.dumps([{"event": "x", "distinct_id": "u", "properties": {"token": raw_key}}]).encode()
    plain_text_gzip = Client().post("/e/?ver=1.449.2", gzip.compress(body), content_type="text/plain")
    assert plain_text_gzip.status_code == 200
    claimed = Client().post("/e/?compression=gzip-js", body, content_type="text/plain")
    assert claimed.status_code == 400
    assert "not gzip data" in claimed.json()["detail"]
    assert Event.objects.count() == 1


def test_the_project_key_is_never_stored(raw_key):
    assert _posthog(Client(), raw_key, [{"event": "x", "distinct_id": "u", "properties": {"a": 1}}]).status_code == 200
    assert Event.objects.get().metadata == {"a": 1}


def test_events_without_a_uuid_are_told_apart_by_what_they_sent_even_where_it_is_not_stored(raw_key):
    sent = [{"event": "x", "distinct_id": "u", "timestamp": "2026-02-08T14:32:15Z",
             "properties": {"$insert_id": insert_id, "a": 1}} for insert_id in ("k3j5h6g7f8d9s0a1", "p0o9i8u7y6t5r4e3")]  # fmt: skip
    answer = _posthog(Client(), raw_key, sent)
    assert (answer.json()["accepted"], answer.json()["duplicates"]) == (2, 0)
    again = _posthog(Client(), raw_key, sent)
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 2)
    assert [e.metadata for e in Event.objects.all()] == [{"a": 1}, {"a": 1}]


def test_a_property_the_row_holds_in_a_column_and_the_transport_bookkeeping_are_stored_once(raw_key):
    ua = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"
    kept_elsewhere = {"distinct_id": "u1", "$session_id": "s-1", "$groups": {"company": "acme"}, "$raw_user_agent": ua,
                      "$insert_id": "k3j5h6g7f8d9s0a1", "$lib_rate_limit_remaining_tokens": 99}  # fmt: skip
    page = {"$current_url": "https://www.shop.example/cart", "$lib": "web", "$time": 1764892800.123}
    event = {"event": "x", "uuid": "0b6e4a3c-3f7e-4c1e-9b8a-2f4f7d9c1a11", "properties": {**kept_elsewhere, **page}}
    assert _posthog(Client(), raw_key, [event]).status_code == 200
    stored = Event.objects.get()
    assert (stored.user_id, stored.session_id, stored.tenant_id) == ("u1", "s-1", "acme")
    assert stored.metadata == {**page, "user_agent": ua}


def test_a_property_that_differs_from_its_column_is_stored_as_sent(raw_key):
    differing = {
        "distinct_id": "anonymous-7",  # the message's own distinct_id is the user
        "$session_id": 42,  # a number: the column holds its text
        "$groups": {"company": "acme", "project": "p1"},  # another group type besides the account
        "$raw_user_agent": "Mozilla/5.0 (Raw)",  # user_agent is sent too
        "user_agent": "Mozilla/5.0 (Own)",
    }
    event = {"event": "x", "distinct_id": "u1", "properties": differing}
    assert _posthog(Client(), raw_key, [event]).status_code == 200
    stored = Event.objects.get()
    assert (stored.user_id, stored.session_id, stored.tenant_id) == ("u1", "42", "acme")
    assert stored.metadata == differing


def test_posthog_js_reads_no_flags_and_a_minimal_remote_config():
    for path in ("/flags/?v=2&config=true", "/decide/?v=3"):
        answer = Client().post(path, b"\x1f\x8b anything", content_type="text/plain", HTTP_ORIGIN=PAGE)
        assert answer.status_code == 200
        assert answer["Access-Control-Allow-Origin"] == PAGE
        flags = answer.json()
        assert (flags["flags"], flags["featureFlags"], flags["sessionRecording"], flags["surveys"]) == (
            {},
            {},
            False,
            False,
        )
    config = Client().get("/array/phc_key/config").json()
    assert (config["sessionRecording"], config["surveys"], config["hasFeatureFlags"]) == (False, False, False)
    script = Client().get('/array/a"<b>&/config.js')
    assert script["Content-Type"].startswith("application/javascript")
    text = script.content.decode()
    assert '_POSTHOG_REMOTE_CONFIG["a\\"\\u003cb\\u003e\\u0026"]' in text
    assert "<b>" not in text


def test_analytics_js_settings_point_its_segment_destination_at_the_console(raw_key, settings):
    settings.ALLOWED_HOSTS = ["ops.example.com", "testserver"]
    answer = Client().get(f"/v1/projects/{raw_key}/settings", HTTP_ORIGIN=PAGE, HTTP_HOST="ops.example.com")
    assert answer.status_code == 200
    assert answer["Access-Control-Allow-Origin"] == PAGE
    settings = answer.json()
    assert list(settings["integrations"]) == ["Segment.io"]
    segment = settings["integrations"]["Segment.io"]
    assert (segment["apiKey"], segment["apiHost"], segment["protocol"]) == (raw_key, "ops.example.com/v1", "http")
    assert settings["metrics"]["sampleRate"] == 0  # nothing sent to Segment
    assert Client().get("/v1/projects/oc_nope/settings").status_code == 401
    _, read = api_key_create(name="reader", scope="read")
    assert Client().get(f"/v1/projects/{read}/settings").status_code == 403


def test_analytics_js_short_paths_store_each_call(raw_key):
    auth = "Basic " + base64.b64encode(f"{raw_key}:".encode()).decode()
    calls = {
        "t": {"type": "track", "event": "Order Completed"},
        "p": {"type": "page", "name": "Home"},
        "i": {"type": "identify", "traits": {"name": "Bo"}},
        "g": {"type": "group", "groupId": "acme"},
        "s": {"type": "screen", "name": "Home"},
    }
    for path, call in calls.items():
        body = {**call, "userId": "u1", "messageId": f"m-{path}"}
        answer = Client().post(f"/v1/{path}", json.dumps(body), content_type="text/plain", HTTP_AUTHORIZATION=auth)
        assert answer.status_code == 200, (path, answer.content)
    batch = {"batch": [{"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m-b"}]}
    assert (
        Client().post("/v1/b", json.dumps(batch), content_type="text/plain", HTTP_AUTHORIZATION=auth).status_code == 200
    )
    types = sorted(Event.objects.values_list("event_type", flat=True))
    assert types == ["$group", "$identify", "$page", "$screen", "Order Completed", "Order Completed"]


def test_an_anonymous_visitor_who_identifies_is_one_real_user_with_their_history(raw_key):
    EventType.objects.create(name="Order Completed", counts_as_real_interaction=True)
    client = Client()
    assert _posthog(client, raw_key, [{"event": "Order Completed", "distinct_id": "anon-1"}]).status_code == 200
    assert list(RealUser.objects.values_list("user_id", flat=True)) == ["anon-1"]
    identify = {"event": "$identify", "distinct_id": "u-42", "properties": {"$anon_distinct_id": "anon-1"}}
    assert _posthog(client, raw_key, [identify]).status_code == 200
    late = {"event": "Order Completed", "distinct_id": "anon-1", "uuid": "0b6e4a3c-3f7e-4c1e-9b8a-2f4f7d9c1a11"}
    assert _posthog(client, raw_key, [late]).status_code == 200  # sent under the old id after the identify
    assert set(Event.objects.values_list("user_id", flat=True)) == {"u-42"}
    assert list(RealUser.objects.values_list("user_id", flat=True)) == ["u-42"]
    assert UserAlias.objects.get().user_id == "u-42"


def test_segment_alias_links_the_previous_id(raw_key):
    auth = "Basic " + base64.b64encode(f"{raw_key}:".encode()).decode()
    track = {"type": "track", "event": "x", "anonymousId": "anon-9", "messageId": "m1"}
    alias = {"type": "alias", "previousId": "anon-9", "userId": "u-9", "messageId": "m2"}
    for path, body in (("t", track), ("a", alias)):
        assert (
            Client()
            .post(f"/v1/{path}", json.dumps(body), content_type="text/plain", HTTP_AUTHORIZATION=auth)
            .status_code
            == 200
        )
    assert set(Event.objects.values_list("user_id", flat=True)) == {"u-9"}


def test_a_forged_identify_cannot_take_over_an_identified_users_history(raw_key):
    client = Client()
    set_email = {"event": "$set", "distinct_id": "victim", "properties": {"$set": {"email": "v@customer.com"}}}
    assert _posthog(client, raw_key, [set_email]).status_code == 200
    forged = {"event": "$identify", "distinct_id": "attacker", "properties": {"$anon_distinct_id": "victim"}}
    assert _posthog(client, raw_key, [forged]).status_code == 200
    assert not UserAlias.objects.exists()
    assert Event.objects.filter(user_id="victim").count() == 1
