"""Schemathesis against the live test server over real HTTP, as a generated client would
use the API: the ingest operations with an ingest key, the reads with a read key.

The in-process fuzz (test_api_schema_fuzz.py) covers every caller; this one proves the
schema read from ``/api/schema/`` over HTTP is enough to produce requests the server
stores or reads, with no check failing (status codes, content types, bodies).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode

from core.services import api_key_create
from tests.reliability.test_api_schema_fuzz import CHECKS, PARKING_INGEST

pytestmark = pytest.mark.django_db(transaction=True)
LIVE_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
INGEST = sorted({"/api/v1/events", "/metrics/interaction", *PARKING_INGEST})
READS = ["/ops/event-types/unregistered", "/metrics/days-since-last-interaction", "/ops/customers/at-risk"]


@pytest.fixture
def live_schema(live_server: Any, settings: Any) -> Any:
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 0
    return schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")


@pytest.mark.parametrize(
    ("path", "method", "scope"), [(p, "POST", "ingest") for p in INGEST] + [(p, "GET", "read") for p in READS]
)
def test_generated_requests_pass_every_check_against_the_live_server(live_server, live_schema, path, method, scope):
    _, raw = api_key_create(name=f"live-{scope}", scope=scope)
    headers = {"Authorization": f"Bearer {raw}"}
    operation = live_schema[path][method]
    statuses: list[int] = []

    @settings(max_examples=LIVE_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def exchange(case: schemathesis.Case) -> None:
        response = case.call(base_url=live_server.url, headers=headers)
        statuses.append(response.status_code)
        case.validate_response(response, checks=CHECKS, headers=headers)

    exchange()
    assert all(status < 500 for status in statuses), statuses
    if method == "GET" or path in PARKING_INGEST:
        assert 200 in statuses, statuses
