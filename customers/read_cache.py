"""Reads kept until the next recompute or founder action: the version they are keyed by, and the
cache the API answers and the console pages share.

What the at-risk and customer answers, Today and the Customer page show changes only when a
recompute writes the cache tables, or when a founder action (an intervention, an outcome, a
snooze, a churn, an MRR) is saved; both move ``metrics_version``. So an answer, a page's figures
or a rendered chart is built once per version and process, and a read of it costs a cache lookup
instead of its queries and its rendering.

Anything cached here must be a function of the version (plus what its key names, such as the
day): a page part that also shows data some other write changes, without moving the version,
stays out of it, or that write calls ``customers.founder_actions.answers_changed``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.safestring import SafeString, mark_safe

from core.csrf import csrf_token_masked
from core.rows import rows_as_dicts

# A kept value also expires after this long: writes that do not move the version (a tenant
# rebuilt after a reclassification) show within it.
API_CACHE_SECONDS = 60

# The stamps that move when what the cached reads show changes: each kind of run's (full,
# incremental, fanned out, tenants rebuilt), the recompute's failure (Today says it is
# failing) and the founder actions' (customers/founder_actions.py::answers_changed). Both
# tables hold one row, read by primary key.
METRICS_VERSION_SQL = """
SELECT s.last_incremental_at, s.last_full_at, s.last_fanout_finished_at, s.last_tenants_rebuilt_at,
       s.last_failure_at, s.failing_since,
       (SELECT a.changed_at FROM ops_answers_version a WHERE a.id = 1) AS answers_changed_at
FROM ops_metrics_state s
WHERE s.id = 1
"""

# What the cache answers for a key it does not hold (a kept None is a value: "no failure").
_MISSING = object()

# The last version read by this process and when (time.monotonic()).
_version_seen: tuple[float, str] = (float("-inf"), "")

# Kept bytes (the API answers' JSON) this process has found in the cache since it last read the
# version, by their key with the version: a kept answer's bytes are read without the cache's key
# making, lock and unpickling, which cost a kept read more than the rest of finding them. Emptied
# at every read of the version, so what the cache drops shows within the same interval the version
# takes to show. Bounded: a handful of answers are asked for.
_kept_seen: dict[str, bytes] = {}
_KEPT_SEEN_MAX = 100


def metrics_version(*, fresh: bool = False) -> str:
    """Changes whenever a recompute (incremental, full or fanned out) finishes or fails, and
    whenever a founder action is saved.

    Read on every cached API request, so it is cheap: a plain cursor (compiling the ORM query
    costs more than the primary-key lookup itself), and at most once per
    METRICS_VERSION_CHECK_SECONDS per process. A recompute runs every few minutes; an answer up
    to that many seconds older than the newest one is the price of one database round trip
    fewer on every cached request. ``fresh`` reads it now (FreshReadsAfterPostMiddleware: the
    page a founder opens after an action may be served by another process, which must not show
    the page before it).
    """
    global _version_seen
    checked_at, version = _version_seen
    now = time.monotonic()
    if not fresh and now - checked_at < settings.METRICS_VERSION_CHECK_SECONDS:
        return version
    with connection.cursor() as cursor:
        cursor.execute(METRICS_VERSION_SQL)
        rows = rows_as_dicts(cursor)
    # Every stamp, in the statement's order: any one moving is a new version.
    version = "none" if not rows else "|".join(str(stamp) for stamp in rows[0].values())
    _kept_seen.clear()
    _version_seen = (now, version)
    return version


def metrics_version_forget() -> None:
    """Make this process read the version again at its next cached read: called after a write
    that moves it, so the page the founder is sent back to shows the write."""
    global _version_seen
    _kept_seen.clear()
    _version_seen = (float("-inf"), "")


def process_reads_forget() -> None:
    """Forget every read this process keeps beside the cache (the version, the kept bytes, the last
    answers and pages served while another thread builds them): a test that writes the cache tables
    directly, without moving the version, starts from nothing."""
    metrics_version_forget()
    for kept in (_kept_last, _kept_rebuilding, _pages_last, _pages_rendering):
        kept.clear()


def _cache_key(key: str) -> str:
    # Hashed: URLs and timestamps hold characters (spaces, '?') a portable cache key may not.
    return "opsconsole:" + hashlib.sha256(key.encode()).hexdigest()


def _cached(key: str, build: Callable[[], Any], *, timeout: float) -> Any:
    cache_key = _cache_key(key)
    value = cache.get(cache_key, _MISSING)
    if value is _MISSING:
        value = build()
        cache.set(cache_key, value, timeout=timeout)
    return value


def cached_per_recompute(key: str, build: Callable[[], Any]) -> Any:
    """``build()``'s value, reused until the version moves (or API_CACHE_SECONDS).

    The value is computed at most once per version and process; callers cache what is
    expensive to make (the rendered JSON of an answer or the HTML of a page's part, not only
    its data). ``key`` names what else the value depends on (a limit, the day).
    """
    return _cached(f"{key}|{metrics_version()}", build, timeout=API_CACHE_SECONDS)


# The last kept bytes this process found of each answer, with the version they were kept for, and
# when a thread last went to build an answer again (by its key with the version): when the cache
# drops an answer (API_CACHE_SECONDS), one thread builds it again while the others are served its
# bytes of the same version, for KEPT_REBUILD_SECONDS at most. Bounded like _kept_seen.
_kept_last: dict[str, tuple[str, bytes]] = {}
_kept_rebuilding: dict[str, float] = {}
KEPT_REBUILD_SECONDS = 10.0


def kept_per_recompute(key: str) -> Any:
    """What ``cached_per_recompute(key, ...)`` keeps for the current version, None when nothing is
    kept yet (read without building it: customers/kept_answers.py).

    Bytes found are remembered until this process next reads the version (``_kept_seen``): a value
    the cache drops (expired after API_CACHE_SECONDS, culled, cleared) may be served until then.
    Once the cache has dropped it, the first caller gets None (and builds the answer); those asking
    while it builds get the bytes last found for the same version, never those of another version.
    """
    version = metrics_version()
    versioned = f"{key}|{version}"
    value = _kept_seen.get(versioned)
    if value is not None:
        return value
    value = cache.get(_cache_key(versioned))
    if isinstance(value, bytes):
        if len(_kept_seen) >= _KEPT_SEEN_MAX or len(_kept_last) >= _KEPT_SEEN_MAX:
            _kept_seen.clear()
            _kept_last.clear()
            _kept_rebuilding.clear()
        _kept_seen[versioned] = value
        _kept_last[key] = (version, value)
        _kept_rebuilding.pop(versioned, None)
        return value
    last = _kept_last.get(key)
    if last is not None and last[0] == version:
        now = time.monotonic()
        if now - _kept_rebuilding.get(versioned, float("-inf")) < KEPT_REBUILD_SECONDS:
            return last[1]  # another thread is building it
        _kept_rebuilding[versioned] = now
    return value


def _per_check(key: str) -> tuple[str, float]:
    """The cache key and timeout of a value kept until this process next reads the version."""
    version = metrics_version()
    return f"{key}|{version}|{_version_seen[0]}", max(1.0, 2 * settings.METRICS_VERSION_CHECK_SECONDS)


def cached_per_check(key: str, build: Callable[[], Any]) -> Any:
    """``build()``'s value, read again whenever this process reads the version: at most once per
    METRICS_VERSION_CHECK_SECONDS, and afresh on the page the founder opens after posting a form.

    For live figures that other writes move without moving the version (the north star's
    users, which ingest keeps; a target edited in admin): a page shows them as late as the
    version itself, never later.
    """
    kept_key, timeout = _per_check(key)
    return _cached(kept_key, build, timeout=timeout)


# Set on the answer to a form a logged-in founder posted (an action on a customer, an edit in
# admin): the page the browser is sent to next reads the version, and what is kept per check,
# afresh, whichever process serves it (another one may have checked a moment before the write).
FRESH_READS_COOKIE = "opsconsole_fresh_reads"
FRESH_READS_SECONDS = 60


class FreshReadsAfterPostMiddleware:
    """Reads the version afresh for a browser that has just posted a form (see FRESH_READS_COOKIE);
    API clients (no session cookie) are left alone."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        fresh = FRESH_READS_COOKIE in request.COOKIES
        if fresh:
            metrics_version(fresh=True)
        response = self.get_response(request)
        if request.method == "POST" and settings.SESSION_COOKIE_NAME in request.COOKIES:
            response.set_cookie(
                FRESH_READS_COOKIE,
                "1",
                max_age=FRESH_READS_SECONDS,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        elif fresh and request.method == "GET" and response.status_code == 200:
            response.delete_cookie(FRESH_READS_COOKIE, samesite="Lax")
        return response


# What a kept page part holds where its forms' CSRF token goes: the token belongs to the browser
# that asked (its cookie's secret), so it is put in each time the part is served, never kept.
# Only characters that HTML escaping leaves alone.
CSRF_PLACEHOLDER = "csrf-placeholder-8c1f4e0b7d2a"


def html_per_recompute(key: str, render: Callable[[str], str], *, csrf_token: str) -> SafeString:
    """A page part's HTML, rendered once per version, process and minute.

    ``render(token)`` renders the part with ``token`` as its forms' CSRF token; the kept HTML
    gets this request's ``csrf_token`` in its place. Keyed by the local minute too, so what a
    part says relative to now ("matched 3 hours ago", a step due today) is what a page rendered
    each time would say: a part costs one rendering a minute at most, not one a view.
    """
    minute = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    html = cached_per_recompute(f"html:{key}:{minute}", lambda: str(render(CSRF_PLACEHOLDER)))
    return mark_safe(html.replace(CSRF_PLACEHOLDER, csrf_token))


# The last HTML this process kept of each page (what page_per_check's key names but the check and
# minute) and the version check it was kept at: served while a thread renders the page afresh.
# Bounded: a handful of pages and founders.
_pages_last: dict[str, tuple[float, str]] = {}
_PAGES_LAST_MAX = 100
# The check each page being rendered is rendered for.
_pages_rendering: dict[str, float] = {}
# A page is rendered by one thread at a time per process (gunicorn's threads share the GIL: four
# renders at once take four times as long each); pages share these locks by their name's hash.
_PAGE_RENDER_LOCKS = tuple(threading.Lock() for _ in range(16))


def page_per_check(request: HttpRequest, *, key: str, render: Callable[[dict[str, Any]], HttpResponse]) -> HttpResponse:
    """A console page served from its HTML kept per version check (``cached_per_check``) and
    minute, for this user and host; ``key`` names the page and what it shows (a path, a query).

    ``render(extra)`` renders the page with ``extra`` added to its context: the kept HTML is
    rendered with a placeholder as every form's CSRF token, and each view puts this browser's
    token in its place. A page whose parts are all kept (``{% per_recompute %}``, the figures read
    per check) still cost its frame, context processors and template machinery on every view,
    several times what serving it costs; kept whole, a view is a cache lookup. What the page
    shows apart from its kept parts must change only as often as the version is checked (the
    north star's users, a process restart noted on Today, the first event's arrival): a page
    shows them as late as it shows the version, never later. A view with a message to show
    (django.contrib.messages: each is shown once) is rendered for itself and not kept, and so
    is an answer other than 200.

    One thread of the process renders a page at a time: the others asking for it meanwhile are
    served the HTML it had at the check before the one being rendered (when there is one), or wait
    for the new one. A browser that has just posted a form (FRESH_READS_COOKIE) always
    waits: the page it is sent to shows what it posted.
    """
    if settings.METRICS_VERSION_CHECK_SECONDS <= 0 or len(get_messages(request)):
        # Every view checks the version (nothing to keep), or one has a message to show. len()
        # loads the queued messages and leaves them unshown.
        return render({})
    token = csrf_token_masked(request)
    user = request.user
    page = f"page:{key}|{user.pk}|{user.get_username()}|{request.get_host()}"
    minute = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    kept_key, timeout = _per_check(f"{page}|{minute}")
    cache_key = _cache_key(kept_key)
    html = cache.get(cache_key)
    if html is None:
        kept = _page_render(
            page, cache_key=cache_key, timeout=timeout, render=render, stale=FRESH_READS_COOKIE not in request.COOKIES
        )
        if isinstance(kept, HttpResponse):
            kept.content = kept.content.decode(kept.charset).replace(CSRF_PLACEHOLDER, token)
            return kept
        html = kept
    return HttpResponse(html.replace(CSRF_PLACEHOLDER, token))


def _page_render(
    page: str, *, cache_key: str, timeout: float, render: Callable[[dict[str, Any]], HttpResponse], stale: bool
) -> str | HttpResponse:
    """The page's HTML for ``cache_key``, rendered by one thread at a time; ``stale``: the page's
    previous HTML may be served while another thread renders it. An answer other than 200 is
    returned as it is, not kept."""
    checked_at = _version_seen[0]
    lock = _PAGE_RENDER_LOCKS[hash(page) % len(_PAGE_RENDER_LOCKS)]
    if not lock.acquire(blocking=False):
        last, rendering = _pages_last.get(page), _pages_rendering.get(page)
        # The page as it was at the check before the one being rendered: at most one check late.
        if (
            stale
            and last is not None
            and rendering is not None
            and rendering - last[0] <= settings.METRICS_VERSION_CHECK_SECONDS * 2
        ):
            return last[1]
        lock.acquire()
    _pages_rendering[page] = checked_at
    try:
        # Rendered by the thread this one waited for.
        html = cache.get(cache_key)
        if html is not None:
            return str(html)
        response = render({"csrf_token": CSRF_PLACEHOLDER})
        if response.status_code != 200:
            return response
        html = response.content.decode(response.charset)
        cache.set(cache_key, html, timeout=timeout)
        if len(_pages_last) >= _PAGES_LAST_MAX:
            _pages_last.clear()
        _pages_last[page] = (checked_at, html)
        return html
    finally:
        _pages_rendering.pop(page, None)
        lock.release()


def values_lazily(build: Callable[[], dict[str, Any]], names: Iterable[str]) -> dict[str, Any]:
    """Template context values that ``build()`` computes the first time a template reads any of
    them: a page part served from the cache reads none, so its figures cost nothing."""
    values: dict[str, Any] = {}

    def value(name: str) -> Any:
        if not values:
            values.update(build())
        return values[name]

    return {name: SimpleLazyObject(partial(value, name)) for name in names}
