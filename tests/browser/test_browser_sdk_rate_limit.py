"""What posthog-js and @segment/analytics-next do, in Chromium, when the console answers 429
with ``Retry-After`` (observed against the console's own limiter, tests/ratelimit_window.py),
and that a normal posthog-js session never meets the default per-key limit."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

import events.ingestion.gate
from events.models import Event
from tests.browser import test_browser_sdks as sdk_pages
from tests.browser.test_browser_sdks import POSTHOG_BUNDLE, _posthog_page, _segment_page, _wait_for
from tests.ratelimit_window import OverloadedKey

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The product's website, its visitors' browsers and the console they send to: the SDK tests' own.
site, browser, console_url, ingest_key = sdk_pages.site, sdk_pages.browser, sdk_pages.console_url, sdk_pages.ingest_key


def _over_its_limit(ingest_key: tuple[Any, str], monkeypatch: Any, *, retry_after: int) -> tuple[str, OverloadedKey]:
    """The page's ingest key, refused with ``retry_after`` until the test lifts it: its raw value, and
    the key that records every attempt."""
    api_key, raw = ingest_key
    key = OverloadedKey(api_key, retry_after=retry_after)
    monkeypatch.setattr("events.ingestion.gate.ingest_rate_check", key.check)
    return raw, key


def _stored(**filters: Any) -> int:
    return Event.objects.filter(**filters).count()


def test_posthog_js_drops_a_batch_answered_429_and_never_sends_it_again(
    browser, site, console_url, ingest_key, monkeypatch
):
    raw, key = _over_its_limit(ingest_key, monkeypatch, retry_after=3)
    visitor = browser()
    visitor.open(site, "posthog.html", _posthog_page(raw, console_url, compression=True))
    for step in range(3):
        visitor.page.evaluate(f"posthog.capture('Order Completed', {{step: {step}}})")
    _wait_for("the refused batch", lambda: len(key.refused) >= 1, visitor)
    time.sleep(6)  # over its limit for two of posthog-js's 3-second flushes: whatever was queued is refused
    key.lift()
    # posthog-js works again once the limit lifts: a later capture arrives...
    visitor.page.evaluate("posthog.capture('Order Completed', {step: 'after'})")
    _wait_for("the capture after the lift", lambda: _stored(metadata__step="after") == 1, visitor)
    time.sleep(8)  # longer than Retry-After and posthog-js's first retry delays
    # ...but what was refused is gone: no retry, so the page view and captures are lost.
    assert _stored() == 1, list(Event.objects.values_list("event_type", "metadata__step"))
    assert not any(a.retry_after is None and a.at < key.lifted_at for a in key.attempts)
    assert len(key.let_through) == 1, key.summary()


@pytest.mark.parametrize("batching", [False, True], ids=["per-call", "batching"])
def test_analytics_next_waits_out_retry_after_and_delivers_once_the_limit_lifts(
    browser, site, console_url, ingest_key, monkeypatch, batching
):
    raw, key = _over_its_limit(ingest_key, monkeypatch, retry_after=5)
    visitor = browser()
    visitor.open(site, "segment.html", _segment_page(raw, console_url, batching=batching))
    for step in range(3):
        visitor.page.evaluate(f"analytics.track('Order Completed', {{step: {step}}})")
    key.lift_after(12)
    _wait_for("the calls after the lift", lambda: _stored() == 3, visitor)
    assert len(key.refused) >= 3, key.summary()
    # Its retries come in rounds (per call: the three calls together) Retry-After apart.
    rounds = [wait for wait in key.waits() if wait > 1]
    assert rounds and all(wait > 4.5 for wait in rounds), key.summary()
    assert sorted(Event.objects.values_list("metadata__step", flat=True)) == [0, 1, 2]


# A busy visitor's session with posthog-js's defaults (autocapture on): three page loads, forty
# clicks, a form, identify, group and a dozen captures, within about a minute.
_SESSION_BODY = """
<nav><a id="home" href="session.html">Home</a> <a id="pricing" href="session.html?page=pricing">Pricing</a></nav>
<main>
  <button id="add">Add to cart</button> <button id="like">Like</button>
  <form id="signup" onsubmit="event.preventDefault()"><input name="email"><button>Sign up</button></form>
</main>
"""


def test_a_busy_posthog_js_session_never_meets_the_default_rate_limit(
    browser, site, console_url, ingest_key, settings, monkeypatch
):
    api_key, raw = ingest_key
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 1200  # the default (the fixture turns it off)
    assert api_key.rate_limit_per_minute is None
    answers: list[int | None] = []
    check = events.ingestion.gate.ingest_rate_check

    def counted(*, api_key: Any, now: Any = None) -> int | None:
        answer = check(api_key=api_key)
        answers.append(answer)
        return answer

    monkeypatch.setattr("events.ingestion.gate.ingest_rate_check", counted)
    options = {"api_host": console_url, "persistence": "localStorage", "person_profiles": "always"}
    page = f"""<!doctype html><html><head><title>shop</title><link rel="icon" href="data:,">
<script src="/{POSTHOG_BUNDLE}"></script><script>posthog.init({json.dumps(raw)}, {json.dumps(options)});</script>
</head><body>{_SESSION_BODY}</body></html>"""
    visitor = browser()
    started = time.monotonic()
    visitor.open(site, "session.html", page)
    visitor.page.evaluate("posthog.identify('user-9', {email: 'cy@customer.com'})")
    visitor.page.evaluate("posthog.group('company', 'acme')")
    for round_ in range(4):
        for _ in range(5):
            visitor.page.click("#add")
            visitor.page.click("#like")
        visitor.page.fill("input[name=email]", "cy@customer.com")
        visitor.page.click("form button")
        for step in range(3):
            visitor.page.evaluate(f"posthog.capture('Order Completed', {{round: {round_}, step: {step}}})")
        if round_ < 2:
            visitor.page.click("#pricing" if round_ == 0 else "#home")  # a page load
            visitor.page.wait_for_load_state()
        time.sleep(2)
    _wait_for("every capture", lambda: _stored(event_type="Order Completed") == 12, visitor)
    minutes = (time.monotonic() - started) / 60
    statuses = [line for line in visitor.seen if console_url in line]
    assert not any(line.endswith(" 429") for line in statuses), statuses
    assert all(answer is None for answer in answers)
    assert _stored(event_type="$pageview") == 3
    assert _stored(event_type="$autocapture") >= 40
    # Far below the default: one session is a few requests a minute (posthog-js batches every few seconds).
    assert len(answers) / max(minutes, 1) < 60, (len(answers), minutes)
    print(f"\nbusy session: {len(answers)} ingest requests in {minutes * 60:.0f} s, {_stored()} events stored")
