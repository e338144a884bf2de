"""Fixtures for the north-star tests: eager Celery, a fresh rules cache, a live HTTP receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.models import ApiKey
from events.ingestion import classify
from events.ingestion.services import events_ingest
from opsconsole.celery import app as celery_app


@pytest.fixture(autouse=True)
def _fresh_rules_cache() -> Iterator[None]:
    # Test transactions roll back, so rules_version repeats between tests: drop the cache.
    classify._rules = None
    yield
    classify._rules = None


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Run .delay() in-process (the tasks still go through Celery's machinery)."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def ingest(make_key: Callable[..., tuple[ApiKey, str]]) -> Callable[..., Any]:
    """Send events through the real ingestion service with a fresh ingest key."""
    key, _ = make_key("ingest", "backend")

    def _ingest(*items: dict[str, Any], source: ApiKey | None = None, now: datetime | None = None) -> Any:
        receipt = events_ingest(items=list(items), source=source or key, now=now)
        assert not receipt.rejected, receipt.rejected
        return receipt

    return _ingest


class Receiver:
    """A real HTTP server on 127.0.0.1 that records POSTs and answers with queued statuses."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answers for the next requests; 200 once empty
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "json": json.loads(body or b"null")}
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"error")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def texts(self) -> list[str]:
        return [r["json"]["text"] for r in self.requests]


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    """A live webhook receiver, with the console configured to post to it."""
    live = Receiver()
    live.thread.start()
    settings.SLACK_WEBHOOK_URL = live.url
    settings.ALERT_WEBHOOK_INSECURE_HOSTS = ["127.0.0.1"]
    settings.ALERT_EMAILS = []
    yield live
    live.server.shutdown()
    live.server.server_close()


# The metrics engine's transactional fixture, for the registry's end-to-end contract.
from tests.customers.conftest import frozen_now, metrics_db  # noqa: E402, F401


@pytest.fixture(autouse=True)
def _emitters_closed() -> Iterator[None]:
    """Each test's emitters stop their sending threads when it ends (a dead test host is not
    retried for the rest of the run, nor flushed at the run's exit)."""
    from events.emitter import client as emitter

    yield
    for open_emitter in list(emitter._open_emitters):
        try:
            open_emitter.close(timeout=0)
        except emitter.EmitterError:
            pass  # what a test left undelivered on purpose
