"""Who may reach what: every URL pattern of the project against every kind of caller.

The URL list is not written down here: it is read from the URL resolver, so a page
or endpoint added later is checked without anyone remembering to add it. Its
expected access comes from what the view declares (a DRF view's scope permission;
anything else is a console page: login and staff). A view that is neither must be
named in PUBLIC with the reason it is open, or this test fails.

Callers: anonymous, an ingest key, a read key, a read-write key, a revoked key, a
logged-in non-staff user and a staff user. Keys are accepted only in the
Authorization header, stored only as a hash, and never written to a log.
"""

from __future__ import annotations

import json
import logging
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone
from django.views.generic import RedirectView

from core.auth import IngestScope, ReadScopeOrStaff, WriteScopeOrStaff
from core.models import ApiKey
from core.services import api_key_create
from events.models import Event
from tests.url_routes import Route, url_routes

pytestmark = pytest.mark.django_db

# Open to everyone, by name, with the reason. Nothing else may be.
PUBLIC = {
    "login": "the login form itself",
    "logout": "ends the caller's own session (POST only)",
    "api-schema": "the OpenAPI description: no data",
    "api-docs": "Swagger UI over the schema: no data",
    "metrics-prometheus": "Prometheus scrape; closed by METRICS_BEARER_TOKEN (tested below)",
    "healthz": "load-balancer liveness probe: answers 'ok', reads nothing",
    "readyz": "readiness probe: database, migrations, recompute age, beat heartbeat; no customer data",
    "favicon": "the console's icon, which browsers fetch before logging in: a static file, no data",
    "stripe-webhook": "Stripe calls it; every delivery must carry a valid Stripe-Signature (tests/playbooks)",
    "posthog-flags": "posthog-js's flags on every page load: the same empty answer for all, reads and stores nothing",
    "posthog-decide": "posthog-js's older flags path: the same empty answer for all, reads and stores nothing",
    "posthog-flags-unslashed": "the same as posthog-flags",
    "posthog-decide-unslashed": "the same as posthog-decide",
    "posthog-config": "posthog-js's remote config: a constant (no flags, no recordings, no surveys)",
    "posthog-config-js": "the same constant as the script posthog-js loads",
    "segment-settings": "analytics.js's settings: the write key in the path must be a live ingest key; no data",
}
CALLERS = ["anonymous", "ingest_key", "read_key", "write_key", "revoked_key", "user", "staff"]
ROUTES = list(url_routes())


def _methods(route: Route) -> list[str]:
    view = route.api_view
    if view is None:
        return ["GET", "POST"]
    return [m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)]


def _scope(route: Route, method: str = "GET") -> type | None:
    """The scope permission the view applies to ``method`` (views may pick per method:
    reading playbook records needs read scope, recording an intervention needs write)."""
    view_class = route.api_view
    assert view_class is not None
    view = view_class(**getattr(route.callback, "initkwargs", {}))
    view.request = SimpleNamespace(method=method)
    classes = [type(permission) for permission in view.get_permissions()]
    # A subclass counts as its scope: the SDK endpoints' IngestScopeInGate is IngestScope checked
    # by the ingestion gate (their keys may travel in the body).
    scopes = [s for c in classes for s in (IngestScope, ReadScopeOrStaff, WriteScopeOrStaff) if issubclass(c, s)]
    return scopes[0] if scopes else None


@pytest.fixture
def callers(db: Any) -> dict[str, tuple[Client, str | None]]:
    """Each caller's client and, for key callers, the raw key it sends."""
    out: dict[str, tuple[Client, str | None]] = {"anonymous": (Client(), None)}
    for scope in ("ingest", "read", "write"):
        _, raw = api_key_create(name=f"matrix-{scope}", scope=scope)
        out[f"{scope}_key"] = (Client(HTTP_AUTHORIZATION=f"Bearer {raw}"), raw)
    revoked, raw = api_key_create(name="matrix-revoked", scope="read")
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    out["revoked_key"] = (Client(HTTP_AUTHORIZATION=f"Bearer {raw}"), raw)
    user_model = get_user_model()
    for name, is_staff in (("user", False), ("staff", True)):
        client = Client()
        client.force_login(user_model.objects.create(username=f"matrix-{name}", is_staff=is_staff))
        out[name] = (client, None)
    return out


def _send(client: Client, method: str, path: str) -> Any:
    if method == "GET":
        return client.get(path)
    body = json.dumps({"event_type": "LOGIN", "user_id": "matrix"})
    return client.generic(method, path, body, content_type="application/json")


def _to_login(response: Any) -> bool:
    return response.status_code == 302 and "login/" in response["Location"]


def _api_allowed(scope: type | None, caller: str) -> bool:
    if scope is IngestScope:
        return caller == "ingest_key"
    if scope is ReadScopeOrStaff:
        return caller in ("read_key", "write_key", "staff")
    if scope is WriteScopeOrStaff:
        return caller in ("write_key", "staff")
    raise AssertionError("unreachable")


def test_every_url_is_public_by_name_an_api_with_a_scope_or_a_staff_page():
    names = {route.name for route in ROUTES}
    assert set(PUBLIC) <= names, f"PUBLIC names routes that no longer exist: {set(PUBLIC) - names}"
    for route in ROUTES:
        if route.name in PUBLIC or route.api_view is None:
            continue
        assert _scope(route) is not None, (
            f"{route.path}: an API view without IngestScope/ReadScopeOrStaff/WriteScopeOrStaff"
        )


@pytest.mark.parametrize("route", [r for r in ROUTES if r.name not in PUBLIC], ids=lambda r: r.path)
def test_each_caller_gets_exactly_the_access_its_scope_allows(route, callers, caplog, settings):
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 0
    outcomes: dict[tuple[str, str], int] = {}
    connection.force_debug_cursor = True  # log every SQL statement with its parameters too
    try:
        with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="django"):
            for method in _methods(route):
                for caller in CALLERS:
                    client, _ = callers[caller]
                    events_before = Event.objects.count()
                    response = _send(client, method, route.path)
                    outcomes[(method, caller)] = response.status_code
                    assert response.status_code < 500, (method, caller, response.status_code)
                    denied = response.status_code in (401, 403, 405) or _to_login(response)
                    if route.api_view is not None:
                        allowed = _api_allowed(_scope(route, method), caller)
                        if not allowed:
                            assert response.status_code in (401, 403), (method, caller, response.status_code)
                            expected = 401 if caller in ("anonymous", "revoked_key") else 403
                            assert response.status_code == expected, (method, caller)
                            assert response.json()["detail"], (method, caller)
                        else:
                            assert response.status_code not in (401, 403), (method, caller, response.content[:300])
                    elif getattr(route.callback, "view_class", None) is RedirectView:
                        pass  # a bare redirect shows nothing
                    elif caller == "staff":
                        assert not denied or response.status_code == 405, (method, response.status_code)
                    elif caller == "user":
                        # Logged in but not staff: refused (the admin sends it to its own login).
                        assert response.status_code in (403, 405) or _to_login(response), (method, response.status_code)
                    else:
                        # Keys are for the API only: on a page a key counts for nothing.
                        assert response.status_code == 405 or _to_login(response), (
                            method,
                            caller,
                            response.status_code,
                        )
                    if denied:
                        assert Event.objects.count() == events_before, f"{method} {caller} wrote events"
    finally:
        connection.force_debug_cursor = False
    if route.api_view is not None:
        assert "events_apikey" in caplog.text  # the capture saw the key lookups (SQL with parameters)
    for _, raw in callers.values():
        if raw:
            assert raw not in caplog.text, "a raw API key was written to a log"
            assert raw[3:] not in caplog.text


def test_api_keys_count_only_in_the_authorization_header(callers):
    _, raw = callers["read_key"]
    for route in ROUTES:
        if route.api_view is None or route.name in PUBLIC or _scope(route) is not ReadScopeOrStaff:
            continue
        client = Client()
        for response in (
            client.get(route.path, {"key": raw}),
            client.get(route.path, {"api_key": raw}),
            client.get(route.path, {"access_token": raw}),
            client.get(route.path, HTTP_X_API_KEY=raw),
            client.get(route.path, HTTP_COOKIE=f"api_key={raw}; sessionid={raw}"),
            client.get(route.path, HTTP_AUTHORIZATION=f"Token {raw}"),
        ):
            assert response.status_code == 401, route.path
        assert Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get(route.path).status_code not in (401, 403)


def test_keys_are_stored_only_as_a_hash(callers):
    raws = [raw for _, raw in callers.values() if raw]
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(k)::text FROM events_apikey k")
        stored = " ".join(row for (row,) in cursor.fetchall())
    for raw in raws:
        assert raw not in stored and raw[3:] not in stored
    assert len(raws) == 4


def test_the_prometheus_scrape_is_closed_by_its_token_and_api_keys_do_not_open_it(callers, settings):
    settings.METRICS_BEARER_TOKEN = "scrape-" + uuid.uuid4().hex
    for caller in CALLERS:
        client, _ = callers[caller]
        assert client.get("/metrics").status_code == 401, caller
    assert Client(HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_BEARER_TOKEN}").get("/metrics").status_code == 200


@pytest.mark.django_db
def test_an_unknown_api_path_answers_json_and_a_page_path_html(client):
    api = client.get("/ops/interventions/not-a-number/outcome")
    assert api.status_code == 404
    assert api["Content-Type"] == "application/json"
    assert "check the path against /api/schema/" in api.json()["detail"]
    page = client.get("/no-such-page/")
    assert page.status_code == 404
    assert "text/html" in page["Content-Type"]
