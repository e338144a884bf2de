"""The real PostHog, Segment and RudderStack SDKs (pinned in requirements-dev.txt), unchanged,
pointed at the live test server with an ingest key; and chunked bodies through gunicorn."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from django.db import connection
from django.test import Client
from posthog import Posthog
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from core.services import api_key_create
from customers.metrics.recompute import metrics_recompute, tenant_rollups_rebuild
from events.classification import classification_pass, events_reclassify
from events.models import AccountTraits, ClassificationState, Event, EventType, InternalUserRule, UserAccount
from tests.processes import database_url, gunicorn

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def raw_key(settings: Any) -> str:
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 0
    _, raw = api_key_create(name="sdk", scope="ingest")
    return raw


@pytest.fixture
def posthog_client(live_server: Any, raw_key: str) -> Iterator[Any]:
    def make(*, gzip: bool) -> Posthog:
        return Posthog(raw_key, host=live_server.url, gzip=gzip, sync_mode=True, max_retries=0, disable_geoip=True)

    yield make


def _segment(live_server: Any, raw_key: str, errors: list[Any]) -> SegmentClient:
    return SegmentClient(
        write_key=raw_key, host=live_server.url, sync_mode=True, max_retries=0, on_error=lambda e, b: errors.append(e)
    )


def _stored(**filters: Any) -> list[Event]:
    return list(Event.objects.filter(**filters).order_by("occurred_at", "id"))


@pytest.mark.parametrize("use_gzip", [False, True], ids=["plain", "gzip"])
def test_posthog_python_sends_events_groups_and_traits(posthog_client, use_gzip):
    ph = posthog_client(gzip=use_gzip)
    login_id = str(uuid.uuid4())
    ph.capture("LOGIN", distinct_id="u1", uuid=login_id, groups={"company": "acme"}, properties={"plan": "pro"})
    ph.capture("$pageview", distinct_id="u1", properties={"$current_url": "https://app/x"})
    ph.set(distinct_id="u1", properties={"email": "ann@customer.com", "name": "Ann"})
    ph.group_identify("company", "acme", properties={"name": "Acme Inc", "seats": 12})
    ph.capture("LOGIN", distinct_id="u1", uuid=login_id)  # the resend of the first event
    ph.flush()

    login = Event.objects.get(event_id=login_id)
    assert (login.event_type, login.user_id, login.tenant_id, login.is_real) == ("LOGIN", "u1", "acme", True)
    assert login.metadata["plan"] == "pro"
    assert Event.objects.filter(event_type="LOGIN").count() == 1  # the resend stored nothing
    pageview = Event.objects.get(event_type="$pageview")
    assert (pageview.tenant_id, pageview.is_real, pageview.exclusion_reason) == ("acme", False, "unregistered")
    assert UserAccount.objects.get(user_id="u1").tenant_id == "acme"
    traits = AccountTraits.objects.get(tenant_id="acme")
    assert (traits.name, traits.properties["seats"]) == ("Acme Inc", 12)
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM customers_tenant WHERE tenant_id = 'acme'")
        assert cursor.fetchone()[0] == "Acme Inc"
        cursor.execute("SELECT email, name FROM ops_user_profiles WHERE user_id = 'u1'")
        assert cursor.fetchone() == ("ann@customer.com", "Ann")


def test_segment_context_keeps_what_the_row_does_not_hold_elsewhere(raw_key):
    context = {"groupId": "acme", "sessionId": "s-1", "userAgent": "Mozilla/5.0 (X11)", "library": {"name": "py"}}
    batch = [
        {"type": "track", "event": "LOGIN", "userId": "u1", "messageId": "t-1", "context": context},
        # A group call's account is its groupId: the context's other one is kept as sent.
        {"type": "group", "groupId": "globex", "userId": "u1", "messageId": "g-1", "context": context},
    ]
    auth = "Basic " + base64.b64encode(f"{raw_key}:".encode()).decode()
    response = Client().post("/v1/batch", {"batch": batch}, content_type="application/json", HTTP_AUTHORIZATION=auth)
    assert response.status_code == 200
    login = Event.objects.get(event_type="LOGIN")
    assert (login.tenant_id, login.session_id) == ("acme", "s-1")
    assert login.metadata == {"context": {"library": {"name": "py"}}, "user_agent": "Mozilla/5.0 (X11)"}
    group = Event.objects.get(event_type="$group")
    assert group.tenant_id == "globex"
    assert group.metadata["context"] == {"groupId": "acme", "library": {"name": "py"}}


def test_segment_sends_track_identify_group_and_its_resend_stores_nothing_twice(live_server, raw_key):
    errors: list[Any] = []
    client = _segment(live_server, raw_key, errors)
    client.group("u7", "globex", traits={"name": "Globex", "plan": "enterprise"}, message_id="g-1")
    client.identify("u7", traits={"email": "bo@globex.com", "name": "Bo"}, message_id="i-1")
    client.track("u7", "LOGIN", {"via": "sso"}, message_id="t-1", context={"userAgent": "Mozilla/5.0 (X11)"})
    client.track("u7", "Order Completed", {"total": 30}, message_id="t-2")
    client.track("u7", "LOGIN", {"via": "sso"}, message_id="t-1")  # resent
    client.flush()
    assert errors == []

    login = Event.objects.get(event_type="LOGIN")
    assert (login.user_id, login.tenant_id, login.is_real) == ("u7", "globex", True)  # attributed by the group call
    assert login.metadata["user_agent"] == "Mozilla/5.0 (X11)"
    assert login.event_id == uuid.uuid5(uuid.UUID("5b1f3a0e-6c1d-4e63-9a57-0c2f4f6b8d21"), "segment:t-1")
    order = Event.objects.get(event_type="Order Completed")
    assert (order.exclusion_reason, order.tenant_id, order.metadata["total"]) == ("unregistered", "globex", 30)
    assert sorted(Event.objects.values_list("event_type", flat=True)) == [
        "$group",
        "$identify",
        "LOGIN",
        "Order Completed",
    ]
    assert AccountTraits.objects.get(tenant_id="globex").name == "Globex"


def test_rudderstack_sends_gzip_by_default_and_its_resend_stores_nothing_twice(live_server, raw_key):
    client = RudderClient(write_key=raw_key, host=live_server.url, sync_mode=True, max_retries=0)
    assert client.gzip is True
    client.track("r1", "LOGIN", message_id="rs-1", context={"groupId": "initech"})
    client.track("r1", "LOGIN", message_id="rs-1", context={"groupId": "initech"})
    client.page("r1", name="Pricing", message_id="rs-2")
    client.flush()
    assert Event.objects.filter(event_type="LOGIN").count() == 1
    login = Event.objects.get(event_type="LOGIN")
    assert (login.user_id, login.tenant_id, login.is_real) == ("r1", "initech", True)
    page = Event.objects.get(event_type="$page")
    assert (page.tenant_id, page.metadata["name"]) == ("initech", "Pricing")  # the remembered account


def test_rudderstack_reads_the_error_answer_instead_of_crashing(live_server):
    client = RudderClient(write_key="oc_not_a_key", host=live_server.url, sync_mode=True, max_retries=0)
    from rudderstack.analytics.request import APIError

    with pytest.raises(APIError) as raised:
        client.track("r1", "LOGIN", message_id="rs-9")
    assert (raised.value.status, raised.value.code, raised.value.message) == (401, "unauthorized", "Unknown API key.")
    assert not Event.objects.exists()


def test_group_membership_attributes_later_group_less_calls(posthog_client, live_server, raw_key):
    ph = posthog_client(gzip=False)
    ph.capture("LOGIN", distinct_id="m1", groups={"company": "hooli"})
    ph.capture("LOGIN", distinct_id="m1")  # no $groups
    ph.flush()
    errors: list[Any] = []
    segment = _segment(live_server, raw_key, errors)
    segment.group("m2", "hooli", message_id="g-m2")
    segment.track("m2", "LOGIN", message_id="t-m2")
    segment.flush()
    assert errors == []
    assert set(Event.objects.filter(event_type="LOGIN").values_list("user_id", "tenant_id")) == {
        ("m1", "hooli"),
        ("m2", "hooli"),
    }
    assert Event.objects.filter(event_type="LOGIN", tenant_id="hooli").count() == 3


def test_identify_traits_with_an_internal_domain_exclude_the_users_past_and_future_events(live_server, raw_key):
    InternalUserRule.objects.create(kind="email_domain", value="ourco.com")
    errors: list[Any] = []
    client = _segment(live_server, raw_key, errors)
    client.track("founder-1", "LOGIN", message_id="before", context={"groupId": "acme"})
    assert Event.objects.get(
        event_id=uuid.uuid5(uuid.UUID("5b1f3a0e-6c1d-4e63-9a57-0c2f4f6b8d21"), "segment:before")
    ).is_real
    version = ClassificationState.objects.get_or_create(pk=1)[0].rules_version
    client.identify("founder-1", traits={"email": "me@OurCo.com"}, message_id="who")
    client.track("founder-1", "LOGIN", message_id="after", context={"groupId": "acme"})
    client.flush()
    assert errors == []
    # The identify moved the user into an internal domain: the rules version moved, and the
    # reclassification it queues (run here directly) excludes the history too.
    assert ClassificationState.objects.get(pk=1).rules_version > version
    after = Event.objects.get(event_id=uuid.uuid5(uuid.UUID("5b1f3a0e-6c1d-4e63-9a57-0c2f4f6b8d21"), "segment:after"))
    assert (after.is_real, after.exclusion_reason) == (False, "internal_user")
    result = events_reclassify()
    assert "acme" in result.tenant_ids
    assert set(Event.objects.filter(event_type="LOGIN").values_list("exclusion_reason", flat=True)) == {"internal_user"}


def test_parked_names_are_listed_and_count_once_registered(posthog_client, make_key):
    ph = posthog_client(gzip=False)
    day = datetime.now(UTC) - timedelta(days=2)
    for i in range(3):
        ph.capture("Report Exported", distinct_id=f"p{i}", groups={"company": "umbrella"}, timestamp=day)
    ph.capture("report exported", distinct_id="p9", groups={"company": "umbrella"}, timestamp=day)
    ph.flush()
    _, read = make_key("read", "reader")
    answer = Client(HTTP_AUTHORIZATION=f"Bearer {read}").get("/ops/event-types/unregistered").json()["results"]
    assert [(n["name"], n["events"]) for n in answer] == [("Report Exported", 4)]
    assert answer[0]["example"]["tenant_id"] == "umbrella"
    assert answer[0]["first_seen"] <= answer[0]["last_seen"]

    metrics_recompute()  # the periodic fold: parked rows are not real, so nothing is folded
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(value), 0) FROM ops_rollup_tenant_day WHERE tenant_id = 'umbrella'")
        assert cursor.fetchone()[0] == 0  # parked: never counted

    EventType.objects.create(name="Report exported", engagement_weight=1.0)  # another spelling: same name
    result = classification_pass()  # the rules fingerprint moved: every parked row is re-judged
    assert result.full is not None and "umbrella" in result.full.tenant_ids
    tenant_rollups_rebuild(tenant_ids=sorted(result.full.tenant_ids))  # what the pass's task queues
    metrics_recompute()  # and the next periodic recompute (rows the last one had not reached)
    assert set(Event.objects.values_list("event_type", "is_real")) == {("Report exported", True)}
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(value), 0) FROM ops_rollup_tenant_day WHERE tenant_id = 'umbrella'")
        assert cursor.fetchone()[0] == 4
    assert Client(HTTP_AUTHORIZATION=f"Bearer {read}").get("/ops/event-types/unregistered").json()["results"] == []


@pytest.mark.default_install
def test_a_chunked_body_is_read_whole_through_gunicorn(raw_key):
    url = database_url()
    events = [{"event_id": str(uuid.uuid4()), "user_id": "c1", "event_type": "LOGIN"} for _ in range(300)]
    body = json.dumps({"events": events}).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    with gunicorn(DATABASE_URL=url, INGEST_RATE_LIMIT_PER_MINUTE="0") as base:
        headers = {"Authorization": f"Bearer {raw_key}", "Content-Type": "application/json"}
        response = requests.post(f"{base}/api/v1/events", data=chunks(), headers=headers, timeout=30)
        assert response.request.headers.get("Transfer-Encoding") == "chunked"
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 300
        oversized = b'{"events": [' + b" " * (1024 * 1024 + 10) + b"]}"
        too_big = requests.post(
            f"{base}/api/v1/events", data=iter([oversized[:500_000], oversized[500_000:]]), headers=headers, timeout=30
        )
        assert too_big.status_code == 413
    assert Event.objects.count() == 300


def test_a_chunked_body_the_server_cannot_read_is_411_not_lost(live_server, raw_key):
    # Django's development and live test servers do not de-chunk: refusing beats reading it as empty.
    headers = {"Authorization": f"Bearer {raw_key}", "Content-Type": "application/json"}
    body = json.dumps({"user_id": "c1", "event_type": "LOGIN"}).encode()
    response = requests.post(f"{live_server.url}/api/v1/events", data=iter([body]), headers=headers, timeout=10)
    assert response.status_code == 411
    assert "Content-Length" in response.json()["detail"]
    assert not Event.objects.exists()
