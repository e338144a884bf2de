"""Schemathesis against the project's own OpenAPI schema (``/api/schema/``).

Every operation the schema lists is fuzzed under every kind of caller: anonymous,
an ingest key, a read key, a read-write key and a staff session. Whatever the
caller sends, the answer is never a 5xx, always matches what the schema declares
(status code, content type, body), and a rejection is a 4xx carrying a message a
person can act on (``detail`` or field errors).

Requests go through the real WSGI application (Django's full middleware stack)
inside the test's transaction, so nothing a fuzzed request writes outlives the test.
The number of examples is bounded (``FUZZ_EXAMPLES``) to keep the suite fast; CI
runs the same test with the same bound on every push.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.middleware.csrf import _get_new_csrf_string
from hypothesis import HealthCheck, assume, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.services import api_key_create

APPLICATION = get_wsgi_application()
SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/", APPLICATION)
OPERATIONS = sorted(
    ((op.path, op.method.upper()) for op in (result.ok() for result in SCHEMA.get_all_operations())),
)
CALLERS = ["anonymous", "ingest_key", "read_key", "write_key", "staff_session"]
# Who may do what (core/auth.py): ingestion is for ingest keys only; reading for read or
# read-write keys and staff sessions.
ALLOWED_WRITERS = {"ingest_key"}
ALLOWED_READERS = {"read_key", "write_key", "staff_session"}
# Replacing configuration (PUT /ops/event-types/{name}): read-write keys and staff sessions.
ALLOWED_REPLACERS = {"write_key", "staff_session"}
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
# Ingest endpoints that park unregistered names (issue 16), so a valid body is always stored.
PARKING_INGEST = {"/batch/", "/capture/", "/e/", "/i/v0/e/", *(f"/v1/{c}" for c in
                  ("batch", "track", "identify", "group", "page", "screen", "alias"))}  # fmt: skip
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def _requests_share_the_test_connection() -> Iterator[None]:
    """Django closes "old" connections at the start and end of every request; inside the
    test's transaction that would close it. Django's own test client does the same."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _caller(kind: str) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and cookies that authenticate as ``kind``."""
    if kind == "anonymous":
        return {}, {}
    if kind.endswith("_key"):
        _, raw = api_key_create(name=f"fuzz-{kind}", scope=kind.removesuffix("_key"))
        return {"Authorization": f"Bearer {raw}"}, {}
    from django.contrib.sessions.backends.db import SessionStore

    user = get_user_model().objects.create(username="fuzz-staff", is_staff=True)  # no password: no hashing cost
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    csrf = _get_new_csrf_string()
    return {"X-CSRFToken": csrf}, {"sessionid": session.session_key, "csrftoken": csrf}


# The operations whose path has no parameter: a parameterised path a case fills in to one of these is that operation.
LITERAL_PATHS = frozenset(path for path, _ in OPERATIONS if "{" not in path)


def _rejection_explains_itself(status: int, body: Any) -> str | None:
    """A 4xx must say why: a non-empty ``detail``, or field errors naming the field."""
    if not 400 <= status < 500:
        return None
    if isinstance(body, dict):
        if isinstance(body.get("detail"), str) and body["detail"].strip():
            return None
        if body.get("rejected") or body.get("errors"):
            return None
        if body and all(isinstance(v, list) and v and all(isinstance(m, str) and m for m in v) for v in body.values()):
            return None  # DRF field errors: {"limit": ["Ensure this value is ..."]}
    return f"a {status} without a message: {body!r}"


@pytest.mark.django_db
@pytest.mark.usefixtures("_requests_share_the_test_connection")
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_every_operation_answers_every_caller_within_its_schema(path, method, caller, mode, settings_override):
    operation = SCHEMA[path][method]
    headers, cookies = _caller(caller)
    statuses: list[int] = []

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def exchange(case: schemathesis.Case) -> None:
        # A generated parameter that spells another operation's own path ("effectiveness" for
        # /ops/playbooks/{playbook_id}) reaches that operation, whose answer is not this one's.
        assume("{" not in path or case.formatted_path not in LITERAL_PATHS)
        response = case.call(headers=headers, cookies=cookies)
        statuses.append(response.status_code)
        case.validate_response(response, checks=CHECKS, headers=headers)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        problem = _rejection_explains_itself(response.status_code, body)
        assert problem is None, f"{case.method} {case.formatted_path}: {problem}"

    exchange()

    allowed = caller in {"POST": ALLOWED_WRITERS, "PUT": ALLOWED_REPLACERS}.get(method, ALLOWED_READERS)
    if not allowed:
        assert not [s for s in statuses if s < 400], f"{caller} got an answer from {method} {path}: {statuses}"
    elif mode is GenerationMode.POSITIVE and method == "GET" and "{" not in path:
        # Valid parameters from an allowed caller must get through (the fuzzing reached the view).
        assert 200 in statuses, f"{caller} never got a 200 from {method} {path}: {statuses}"
    elif mode is GenerationMode.POSITIVE and path in PARKING_INGEST:
        # The schema describes the SDK bodies truthfully: bodies generated from it are stored
        # (unregistered names are parked there, so any valid name will do).
        assert 200 in statuses, f"{caller} never got a 200 from {method} {path}: {statuses}"


@pytest.fixture
def settings_override(settings: Any) -> None:
    # The rate limit is tested on its own (tests/events/test_rate_limit.py); here it would only
    # turn later examples into 429s and hide what they would have found.
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 0


def test_the_schema_lists_every_api_operation():
    assert set(OPERATIONS) >= {
        ("/api/v1/events", "POST"),
        ("/metrics/interaction", "POST"),
        ("/metrics/days-since-last-interaction", "GET"),
        ("/ops/customers", "GET"),
        ("/ops/customers/at-risk", "GET"),
        ("/ops/customers/{tenant_id}", "GET"),
        ("/ops/lifecycle", "GET"),
        ("/ops/retention", "GET"),
        ("/ops/infra", "GET"),
        ("/ops/event-types", "GET"),
        ("/ops/event-types/{name}", "GET"),
        ("/ops/event-types/{name}", "PUT"),
        ("/ops/event-types/unregistered", "GET"),
        *((path, "POST") for path in PARKING_INGEST),
    }
