"""The URL map's order: every route reaches its own view, and ingest is matched first.

Django tries the patterns in order and takes the first that matches, so an order change can
hand a path to an earlier pattern; the routes are read from the resolver (tests/url_routes.py).
"""

from __future__ import annotations

from django.urls import resolve

from events.apis import EventIngestApi
from events.sdk_apis import SdkIngestApi
from tests.url_routes import url_routes

# Answered before any app's pattern is tried: what a load balancer polls.
PROBES = ("healthz", "readyz")


def test_every_route_reaches_its_own_view():
    shadowed = [
        (route.path, route.name, resolve(route.path).route)
        for route in url_routes()
        if route.callback is not None and resolve(route.path).func is not route.callback
    ]
    assert shadowed == [], "an earlier pattern takes these paths"


def test_the_ingest_endpoints_are_matched_before_every_other_pattern_but_the_probes():
    """Ingest is most of a console's requests (many of one event): each pattern tried before its
    own costs every one of them, and a miss in an include costs more."""
    kinds = [
        "probe"
        if route.name in PROBES
        else "ingest"
        if issubclass(route.api_view or object, (EventIngestApi, SdkIngestApi))
        else "other"
        for route in url_routes()
    ]
    assert kinds.count("ingest") >= 30  # native, PostHog's four paths, Segment's calls and short paths
    assert kinds.index("other") > max(i for i, kind in enumerate(kinds) if kind == "ingest"), kinds
