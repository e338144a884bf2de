"""What the real server SDKs (posthog-python, segment-analytics-python, rudder-sdk-python, as
a backend creates them: defaults, background thread) do when the console answers 429 with
``Retry-After``: observed against the console's own limiter, so the README's table cannot
drift from what they do. Waits are checked against generous bounds only."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from posthog import Posthog
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from core.services import api_key_create
from events.models import Event
from tests.ratelimit_window import OverloadedKey

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = 3


@pytest.fixture
def overloaded_key(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[OverloadedKey, str]]:
    def make(*, retry_after: int) -> tuple[OverloadedKey, str]:
        api_key, raw = api_key_create(name="backend", scope="ingest")
        key = OverloadedKey(api_key, retry_after)
        monkeypatch.setattr("events.ingestion.gate.ingest_rate_check", key.check)
        return key, raw

    return make


def _stored() -> int:
    return Event.objects.count()


def _flush_seconds(client: Any) -> float:
    started = time.monotonic()
    client.flush()
    return time.monotonic() - started


def _wait_for_attempts(key: OverloadedKey, count: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while len(key.attempts) < count and time.monotonic() < deadline:
        time.sleep(0.1)


def test_posthog_python_gives_up_after_three_retries_and_the_events_are_lost(live_server, overloaded_key):
    key, raw = overloaded_key(retry_after=3)
    posthog = Posthog(raw, host=live_server.url, disable_geoip=True)
    key.lift_after(15)  # after its last retry
    for _ in range(EVENTS):
        posthog.capture("LOGIN", distinct_id="u1", uuid=str(uuid.uuid4()))
    flush_seconds = _flush_seconds(posthog)
    # flush() gives up waiting after its default 10 s, with the batch still retrying.
    assert 8 < flush_seconds < 13, key.summary()
    assert _stored() == 0
    _wait_for_attempts(key, 4)
    time.sleep(6)  # past the lift: nothing more is sent
    posthog.shutdown()
    assert (len(key.refused), len(key.let_through)) == (4, 0), key.summary()  # one try and 3 retries
    # It waits the longer of its own backoff (1, 2, 4 s) and Retry-After.
    assert all(wait > 2.5 for wait in key.waits()), key.summary()
    assert _stored() == 0  # the batch was dropped


def test_posthog_python_delivers_when_the_limit_lifts_within_its_retries(live_server, overloaded_key):
    key, raw = overloaded_key(retry_after=3)
    posthog = Posthog(raw, host=live_server.url, disable_geoip=True)
    key.lift_after(5)
    for _ in range(EVENTS):
        posthog.capture("LOGIN", distinct_id="u1", uuid=str(uuid.uuid4()))
    _flush_seconds(posthog)
    posthog.shutdown()
    assert _stored() == EVENTS, key.summary()
    assert len(key.refused) == 2 and len(key.let_through) == 1, key.summary()
    assert all(wait > 2.5 for wait in key.waits()), key.summary()


def test_segment_python_waits_out_retry_after_until_the_limit_lifts_and_flush_waits_too(live_server, overloaded_key):
    key, raw = overloaded_key(retry_after=3)
    errors: list[Any] = []
    client = SegmentClient(write_key=raw, host=live_server.url, on_error=lambda e, batch: errors.append(e))
    key.lift_after(12)
    for i in range(EVENTS):
        client.track("u1", "LOGIN", message_id=f"m{i}")
    flush_seconds = _flush_seconds(client)
    # flush() returned only once the events were stored: it blocks for as long as the limit lasts
    # (up to its max_rate_limit_duration, 30 minutes by default).
    assert _stored() == EVENTS, key.summary()
    assert flush_seconds > 11
    client.join()
    assert errors == []
    assert len(key.refused) >= 3 and len(key.let_through) == 1, key.summary()
    # Every retry waits Retry-After, however many it takes: a 429 is not counted against max_retries.
    assert all(wait > 2.5 for wait in key.waits()), key.summary()


def test_rudderstack_retries_on_its_own_backoff_before_retry_after_and_delivers(live_server, overloaded_key):
    key, raw = overloaded_key(retry_after=7)
    client = RudderClient(write_key=raw, host=live_server.url)
    key.lift_after(10)
    for i in range(EVENTS):
        client.track("u1", "LOGIN", message_id=f"m{i}")
    flush_seconds = _flush_seconds(client)
    assert _stored() == EVENTS, key.summary()  # flush() returned once they were stored
    assert flush_seconds > 9
    client.join()
    assert len(key.let_through) == 1, key.summary()
    # Retry-After is not read: exponential backoff with jitter (up to 10 retries, then the batch
    # is dropped), so it retries sooner than asked.
    assert min(key.waits()) < 6, key.summary()
