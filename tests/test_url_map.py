"""The URL map's order: every route reaches its own view, and ingest is matched right after Today and the reads.

Django tries the patterns in order and takes the first that matches, so an order change can
hand a path to an earlier pattern; the routes are read from the resolver (tests/url_routes.py).
"""

from __future__ import annotations

from django.urls import resolve

from events.apis import EventIngestApi
from events.sdk_apis import SdkIngestApi
from tests.url_routes import Route, url_routes

# Tried before the ingest endpoints: the probes a load balancer polls, Today and the console's reads (their
# kept answers cost less than walking the map: BENCHMARKS.md, the reads).
AHEAD = ("healthz", "readyz", "favicon", "home")


def test_every_route_reaches_its_own_view():
    shadowed = [
        (route.path, route.name, resolve(route.path).route)
        for route in url_routes()
        if route.callback is not None and resolve(route.path).func is not route.callback
    ]
    assert shadowed == [], "an earlier pattern takes these paths"


def _kind(route: Route) -> str:
    if route.name in AHEAD or getattr(route.callback, "__module__", "").startswith("customers."):
        return "ahead"
    if issubclass(route.api_view or object, (EventIngestApi, SdkIngestApi)):
        return "ingest"
    return "other"


def test_the_ingest_endpoints_come_right_after_today_and_the_reads():
    """Ingest is most of a console's requests (many of one event): each pattern tried before its
    own costs every one of them, and a miss in an include costs more."""
    kinds = [_kind(route) for route in url_routes()]
    assert kinds.count("ingest") >= 30  # native, PostHog's four paths, Segment's calls and short paths
    ingest = [i for i, kind in enumerate(kinds) if kind == "ingest"]
    assert max(i for i, kind in enumerate(kinds) if kind == "ahead") < min(ingest), kinds
    assert max(ingest) < kinds.index("other"), kinds
