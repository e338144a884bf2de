"""The real browser SDKs (posthog-js and @segment/analytics-next from the repository's
package.json, installed into node_modules/), unchanged, in Chromium, on a web page served
from another origin than the console: what a product's own website does.

The page's origin is http://127.0.0.1:<port> and the console's http://localhost:<port>, so
every call is cross-origin (CORS, preflights) as it is in production. No CDN is reachable:
the page loads the npm bundles from node_modules, and each SDK reads its configuration from
the console.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from core.models import ApiKey
from core.services import api_key_create
from events.models import Event, EventType, RealUser, UserAlias
from tests.conftest import skip_or_fail

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent.parent
NODE_MODULES = ROOT / "node_modules"
POSTHOG_BUNDLE = "node_modules/posthog-js/dist/array.full.js"
SEGMENT_BUNDLE = "node_modules/@segment/analytics-next/dist/umd/index.js"
# A desktop Chrome's user agent: Chromium's headless one names itself HeadlessChrome, which
# posthog-js drops in the browser and the console classifies as a bot (the last test).
DESKTOP_CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
WAIT_SECONDS = 30


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The product's website: a second HTTP server on another origin, serving the test pages
    and the SDK bundles from node_modules."""
    for bundle in (POSTHOG_BUNDLE, SEGMENT_BUNDLE):
        if not (ROOT / bundle).exists():
            skip_or_fail(f"{bundle} is missing: run `npm ci` at the repository root (make test does)")
    docroot = tmp_path_factory.mktemp("site")
    (docroot / "node_modules").symlink_to(NODE_MODULES)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(docroot)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", docroot
    server.shutdown()
    server.server_close()


@pytest.fixture
def console_url(live_server: Any) -> str:
    url = live_server.url.replace("127.0.0.1", "localhost")
    assert "localhost" in url  # the console's origin differs from the page's
    return url


@pytest.fixture
def ingest_key(settings: Any, transactional_db: Any) -> tuple[ApiKey, str]:
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 0
    EventType.objects.create(name="Order Completed", counts_as_real_interaction=True)
    return api_key_create(name="website", scope="ingest")


class Browser:
    """One browser context on the site, recording what the page logged and what it sent."""

    def __init__(self, chromium: Any, *, user_agent: str | None) -> None:
        self.context = chromium.new_context(user_agent=user_agent) if user_agent else chromium.new_context()
        if user_agent:
            # A visitor's browser is not under automation: posthog-js drops every event of one
            # whose navigator.webdriver is set (as Playwright's is), before sending anything.
            self.context.add_init_script("Object.defineProperty(navigator, 'webdriver', {get: () => false})")
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.errors: list[str] = []
        self.sent: list[Any] = []  # the SDKs' POSTs to the console
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # The context's, not the page's: a beacon sent as the page goes away is still seen.
        self.context.on("request", lambda r: self.sent.append(r) if r.method == "POST" else None)
        self.seen: list[str] = []  # for the failure message
        self.context.on("response", lambda r: self.seen.append(f"{r.request.method} {r.url} {r.status}"))

    def open(self, site: tuple[str, Path], name: str, html: str) -> None:
        origin, docroot = site
        (docroot / name).write_text(html)
        self.page.goto(f"{origin}/{name}")

    def close(self) -> None:
        # Leave the page first and give the server a moment: the SDKs send a beacon on unload, and one
        # landing during the test database's flush deadlocks with it (plain PostgreSQL and Citus alike).
        self.page.goto("about:blank")
        self.page.wait_for_timeout(1000)
        self.context.close()


@pytest.fixture
def browser(chromium: Any) -> Iterator[Callable[..., Browser]]:
    opened: list[Browser] = []

    def make(user_agent: str | None = DESKTOP_CHROME) -> Browser:
        opened.append(Browser(chromium, user_agent=user_agent))
        return opened[-1]

    yield make
    for one in opened:
        one.close()


def _posthog_page(key: str, console: str, *, compression: bool, bot_filter: bool = True) -> str:
    options = {
        "api_host": console,
        "persistence": "localStorage",
        "disable_compression": not compression,
        "autocapture": False,
        "opt_out_useragent_filter": not bot_filter,
    }
    return f"""<!doctype html><html><head><title>shop</title><link rel="icon" href="data:,">
<script src="/{POSTHOG_BUNDLE}"></script>
<script>posthog.init({json.dumps(key)}, {json.dumps(options)});</script>
</head><body>shop</body></html>"""


# Watches the page's navigator.sendBeacon without replacing what it does: each call goes to the
# browser's own sendBeacon, and its URL and answer are noted in the site's localStorage (which
# outlives the page, so a later page of the site reads them).
BEACON_WATCH = """(() => {
  const send = navigator.sendBeacon.bind(navigator);
  navigator.sendBeacon = (url, data) => {
    const queued = send(url, data);
    const seen = JSON.parse(localStorage.getItem("beacons") || "[]");
    localStorage.setItem("beacons", JSON.stringify([...seen, {url: String(url), queued}]));
    return queued;
  };
})();"""


@dataclass
class Arrival:
    """How a request reached the console: its path and the Fetch Metadata the browser set."""

    path: str
    mode: str  # Sec-Fetch-Mode
    destination: str  # Sec-Fetch-Dest
    content_type: str


@pytest.fixture
def arrivals(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], bool]], list[Arrival]]:
    """The SDK requests (the live server runs in this process) after which ``stored()`` first holds."""
    from events import sdk_apis

    watched: list[tuple[Callable[[], bool], list[Arrival]]] = []
    gated = sdk_apis.gated_ingest

    def noting(request: Any, fmt: Any, **kwargs: Any) -> Any:
        before = [stored() for stored, _ in watched]
        answer = gated(request, fmt, **kwargs)
        for (stored, seen), held in zip(watched, before, strict=True):
            if not held and stored():
                meta = request.META
                seen.append(Arrival(request.path, meta.get("HTTP_SEC_FETCH_MODE", ""),
                                    meta.get("HTTP_SEC_FETCH_DEST", ""), meta.get("CONTENT_TYPE", "")))  # fmt: skip
        return answer

    monkeypatch.setattr(sdk_apis, "gated_ingest", noting)

    def watch(stored: Callable[[], bool]) -> list[Arrival]:
        watched.append((stored, []))
        return watched[-1][1]

    return watch


def _segment_page(key: str, console: str, *, batching: bool) -> str:
    segment_io: dict[str, Any] = {}
    if batching:
        segment_io["deliveryStrategy"] = {"strategy": "batching", "config": {"size": 5, "timeout": 500}}
    options = {"integrations": {"Segment.io": segment_io}}
    return f"""<!doctype html><html><head><title>shop</title><link rel="icon" href="data:,">
<script src="/{SEGMENT_BUNDLE}"></script>
<script>
window.analytics = AnalyticsNext.AnalyticsBrowser.load({{writeKey: {json.dumps(key)}, cdnURL: {json.dumps(console)}}},
                                                       {json.dumps(options)});
</script>
</head><body>shop</body></html>"""


def _events(api_key: ApiKey) -> list[Event]:
    return list(Event.objects.filter(source=api_key).order_by("occurred_at", "id"))


def _wait_for(what: str, check: Callable[[], bool], browser: Browser) -> None:
    # Waiting for the SDK's batch to arrive, not measuring how long it took.
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        if time.monotonic() > deadline:
            sent = [r.url for r in browser.sent]
            raise AssertionError(
                f"the browser never delivered {what}; it sent {sent}; it logged {browser.errors}; saw {browser.seen}"
            )
        time.sleep(0.25)


def _stored_once(api_key: ApiKey) -> list[Event]:
    events = _events(api_key)
    assert len({e.event_id for e in events}) == len(events), "an event was stored twice"
    return events


def _resend(browser: Browser, console: str) -> int:
    """Every POST the page made, sent again byte for byte with its headers (a retry)."""
    resent = 0
    for request in browser.sent:
        if not request.url.startswith(console) or request.post_data_buffer is None:
            continue
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "authorization", "origin")}
        answer = requests.post(request.url, data=request.post_data_buffer, headers=headers, timeout=10)
        assert answer.status_code == 200, (request.url, answer.status_code, answer.text[:300])
        resent += 1
    return resent


@pytest.mark.parametrize("compression", [True, False], ids=["gzip", "uncompressed"])
def test_posthog_js_from_a_web_page_stores_each_call_once_for_one_person(
    browser, site, console_url, ingest_key, arrivals, compression
):
    api_key, raw = ingest_key
    visitor = browser()
    visitor.context.add_init_script(BEACON_WATCH)
    left = arrivals(lambda: Event.objects.filter(metadata__step="leaving").exists())
    visitor.open(site, "posthog.html", _posthog_page(raw, console_url, compression=compression))
    anonymous = visitor.page.evaluate("posthog.get_distinct_id()")
    visitor.page.evaluate("posthog.capture('Order Completed', {step: 'anonymous'})")
    visitor.page.evaluate("posthog.identify('user-42', {email: 'ann@customer.com', name: 'Ann'})")
    visitor.page.evaluate("posthog.group('company', 'acme', {name: 'Acme Inc'})")
    visitor.page.evaluate("posthog.capture('Order Completed', {step: 'identified'})")
    visitor.page.evaluate("posthog.capture('Wishlist Shared')")  # not registered: parked
    _wait_for("the first session", lambda: Event.objects.filter(event_type="Wishlist Shared").exists(), visitor)

    events = _stored_once(api_key)
    by_type: dict[str, list[Event]] = {}
    for event in events:
        by_type.setdefault(event.event_type, []).append(event)
    assert len(by_type["$pageview"]) == 1
    assert len(by_type["$identify"]) == len(by_type["$groupidentify"]) == 1
    orders = by_type["Order Completed"]
    assert [o.metadata["step"] for o in orders] == ["anonymous", "identified"]
    # The anonymous visitor and the identified user are one person: every event is theirs.
    assert {e.user_id for e in events} == {"user-42"}, [
        (e.event_type, e.user_id, e.tenant_id, e.metadata.get("$set_once"), e.metadata.get("$set")) for e in events
    ]
    # Before the group call the visitor has no account; posthog-js may send that event in the
    # same batch as the group call, which then gives it the account.
    assert orders[0].tenant_id in ("", "acme")
    assert [(o.tenant_id, o.is_real) for o in orders[1:]] == [("acme", True)]
    assert all(o.is_real for o in orders)
    assert by_type["$groupidentify"][0].tenant_id == "acme"
    assert (by_type["Wishlist Shared"][0].tenant_id, by_type["Wishlist Shared"][0].exclusion_reason) == (
        "acme",
        "unregistered",
    )
    assert UserAlias.objects.get(alias_id=anonymous).user_id == "user-42"
    assert list(RealUser.objects.values_list("user_id", flat=True)) == ["user-42"]
    assert all("token" not in e.metadata for e in events)  # the project key is never stored
    if compression:
        assert any(r.post_data_buffer[:2] == b"\x1f\x8b" for r in visitor.sent), "posthog-js did not gzip"
    else:
        assert all(r.post_data_buffer[:1] in (b"[", b"{") for r in visitor.sent if "/e/" in r.url)

    # A reload: the same person and account, and nothing sent before stored again.
    before = len(events)
    visitor.page.reload()
    _wait_for("the reload's page view", lambda: Event.objects.filter(event_type="$pageview").count() == 2, visitor)
    events = _stored_once(api_key)
    assert len(events) == before + 1
    pageview = (
        events[-1] if events[-1].event_type == "$pageview" else Event.objects.filter(event_type="$pageview").last()
    )
    assert (pageview.user_id, pageview.tenant_id) == ("user-42", "acme")

    # The visitor leaves right after a capture, before posthog-js's batch timer: its unload
    # handler sends the queue as the page goes away, by navigator.sendBeacon, and it arrives.
    visitor.page.evaluate("posthog.capture('Order Completed', {step: 'leaving'})")
    visitor.page.goto("about:blank")
    _wait_for("the unload beacon", lambda: Event.objects.filter(metadata__step="leaving").exists(), visitor)
    leaving = Event.objects.get(metadata__step="leaving")
    # By beacon, as the browser and the console saw it (Playwright does not report a request a
    # page makes as it unloads). The page called the browser's sendBeacon for the console's /e/
    # (noted in the site's localStorage, read back from another page of the site), and the one
    # request that stored the event came with the Fetch Metadata the Fetch standard gives a beacon
    # of a CORS-safelisted body (posthog-js's: a form, or gzip as text/plain): mode no-cors,
    # destination empty. posthog-js's fetch and XMLHttpRequest calls are mode cors.
    visitor.open(site, "after.html", '<!doctype html><title>after</title><link rel="icon" href="data:,">')
    beacons = visitor.page.evaluate("JSON.parse(localStorage.getItem('beacons') || '[]')")
    # posthog-js may hand the browser more than one beacon as the page goes (its queue and the page-leave
    # event, when they fall in different batches): each was queued, and one of them stored the event.
    queued = [b["queued"] for b in beacons if b["url"].startswith(f"{console_url}/e/")]
    assert queued and all(queued), beacons
    # Two beacons in flight at once can both be the request "after which" the event is stored (each
    # looked before the other stored it): every one of them must be a beacon.
    assert left and all((a.path, a.mode, a.destination) == ("/e/", "no-cors", "empty") for a in left), left
    assert all(a.content_type in ("application/x-www-form-urlencoded", "text/plain") for a in left), left

    assert (leaving.user_id, leaving.tenant_id, leaving.is_real) == ("user-42", "acme", True)

    # Every request again, as a retry would send it: accepted, and nothing stored twice.
    stored = len(_stored_once(api_key))
    assert _resend(visitor, console_url) >= 2
    assert len(_stored_once(api_key)) == stored
    assert visitor.errors == []


@pytest.mark.parametrize("batching", [False, True], ids=["per-call", "batching"])
def test_analytics_next_from_a_web_page_with_no_segment_cdn_stores_each_call_once(
    browser, site, console_url, ingest_key, batching
):
    api_key, raw = ingest_key
    visitor = browser()
    visitor.open(site, "segment.html", _segment_page(raw, console_url, batching=batching))
    visitor.page.evaluate("analytics.page()")
    visitor.page.evaluate("analytics.track('Order Completed', {step: 'anonymous'})")
    anonymous = visitor.page.evaluate("analytics.user().then(u => u.anonymousId())")
    visitor.page.evaluate("analytics.identify('user-7', {email: 'bo@customer.com', name: 'Bo'})")
    visitor.page.evaluate("analytics.group('acme', {name: 'Acme Inc'})")
    visitor.page.evaluate("analytics.track('Order Completed', {step: 'identified'})")
    visitor.page.evaluate("analytics.track('Wishlist Shared')")
    _wait_for("the calls", lambda: Event.objects.filter(event_type="Wishlist Shared").exists(), visitor)

    events = _stored_once(api_key)
    types = sorted(e.event_type for e in events)
    assert types == ["$group", "$identify", "$page", "Order Completed", "Order Completed", "Wishlist Shared"]
    assert {e.user_id for e in events} == {"user-7"}
    orders = [e for e in events if e.event_type == "Order Completed"]
    assert [(o.metadata["step"], o.is_real) for o in orders] == [("anonymous", True), ("identified", True)]
    assert orders[0].tenant_id in ("", "acme")  # acme when it shares a batch with the group call
    assert orders[1].tenant_id == "acme"
    parked = Event.objects.get(event_type="Wishlist Shared")
    assert (parked.tenant_id, parked.exclusion_reason) == ("acme", "unregistered")
    assert UserAlias.objects.get(alias_id=anonymous).user_id == "user-7"
    assert list(RealUser.objects.values_list("user_id", flat=True)) == ["user-7"]
    paths = {r.url.rsplit("/", 1)[-1] for r in visitor.sent}
    assert paths == ({"b"} if batching else {"p", "t", "i", "g"})

    visitor.page.reload()
    visitor.page.evaluate("analytics.track('Order Completed', {step: 'after reload'})")
    _wait_for(
        "the call after the reload", lambda: Event.objects.filter(metadata__step="after reload").exists(), visitor
    )
    after = Event.objects.get(metadata__step="after reload")
    assert (after.user_id, after.tenant_id) == ("user-7", "acme")
    stored = len(_stored_once(api_key))
    assert _resend(visitor, console_url) >= 2
    assert len(_stored_once(api_key)) == stored
    assert visitor.errors == []


def test_headless_browsers_are_bots_by_the_user_agent_the_sdks_report(browser, site, console_url, ingest_key):
    _, raw = ingest_key
    robot = browser(user_agent=None)  # Chromium's own: HeadlessChrome
    # posthog-js drops a headless browser's events itself unless told not to filter.
    robot.open(site, "posthog.html", _posthog_page(raw, console_url, compression=True, bot_filter=False))
    robot.page.evaluate("posthog.capture('Order Completed')")
    robot.open(site, "segment.html", _segment_page(raw, console_url, batching=False))
    robot.page.evaluate("analytics.track('Order Completed')")
    _wait_for("both SDKs' events", lambda: Event.objects.filter(event_type="Order Completed").count() == 2, robot)
    for event in Event.objects.filter(event_type="Order Completed"):
        assert (event.is_real, event.exclusion_reason) == (False, "bot"), event.metadata.get("user_agent")
    assert RealUser.objects.count() == 0
    assert robot.errors == []


def test_a_page_on_an_origin_the_key_does_not_allow_is_told_why(browser, site, console_url, ingest_key):
    api_key, raw = ingest_key
    ApiKey.objects.filter(pk=api_key.pk).update(allowed_origins=["https://www.example.com"])
    visitor = browser()
    visitor.open(site, "blank.html", "<!doctype html><title>blank</title><link rel='icon' href='data:,'>")
    answer = visitor.page.evaluate(
        """async ([url, key]) => {
            const r = await fetch(url + '/v1/t', {method: 'POST', headers: {'Content-Type': 'text/plain',
                Authorization: 'Basic ' + btoa(key + ':')}, body: JSON.stringify({event: 'Order Completed',
                userId: 'u1', messageId: 'm1'})});
            return [r.status, await r.json()];
        }""",
        [console_url, raw],
    )
    status, body = answer
    assert status == 403
    assert "does not accept events from web pages on http://127.0.0.1" in body["message"]
    assert not Event.objects.exists()
