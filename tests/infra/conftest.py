"""Fixtures for the infra tests: snapshot series and a clean request counter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from infra.middleware import request_counter
from infra.models import InfraSnapshot

GIB = 1024**3


@pytest.fixture(autouse=True)
def clean_request_counter() -> Iterator[None]:
    """The counter is per process: start and end every test with nothing pending."""
    request_counter.reset()
    yield
    request_counter.reset()


@pytest.fixture
def make_snapshot(db: Any) -> Callable[..., InfraSnapshot]:
    def _make(taken_at: datetime, db_size_bytes: int, **fields: Any) -> InfraSnapshot:
        defaults: dict[str, Any] = {
            "events_table_bytes": 0,
            "events_row_estimate": 0,
            "events_received_24h": 0,
            "api_requests_24h": 0,
        }
        defaults.update(fields)
        return InfraSnapshot.objects.create(taken_at=taken_at, db_size_bytes=db_size_bytes, **defaults)

    return _make
