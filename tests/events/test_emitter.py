"""The stdlib emitter against the live test server, and against a flaky receiver."""

from __future__ import annotations

import json
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.services import api_key_create
from events.emitter import EmitterError, OpsEmitter
from events.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ingest_key(transactional_db) -> str:
    return api_key_create(name="backend", scope="ingest")[1]


def test_it_batches_and_delivers_every_event_to_the_live_server(live_server, ingest_key):
    emitter = OpsEmitter(live_server.url, ingest_key, batch_size=500)
    ids = [emitter.replay_started(tenant_id="acme", user_id=f"u{i % 7}", session_id=f"s{i % 50}") for i in range(1200)]
    ids.append(emitter.export_aborted(tenant_id="acme", user_id="u1", reason="too slow"))
    ids.append(emitter.session_idle_timeout(tenant_id="acme", user_id="u1"))
    emitter.flush()
    assert emitter.sent == 1202
    assert Event.objects.count() == 1202
    assert set(Event.objects.values_list("event_id", flat=True)) == {uuid.UUID(i) for i in ids}
    aborted = Event.objects.get(event_type="EXPORT_ABORTED")
    assert aborted.metadata == {"reason": "too slow"}
    assert aborted.friction_signal == "friction"


def test_resending_the_same_events_creates_no_duplicates(live_server, ingest_key):
    emitter = OpsEmitter(live_server.url, ingest_key)
    event_id = emitter.login(user_id="u1")
    emitter.flush()
    emitter.login(user_id="u1", event_id=event_id)
    emitter.flush()
    assert (emitter.sent, emitter.duplicates) == (1, 1)
    assert Event.objects.count() == 1


def test_a_refused_key_raises_and_keeps_the_events(live_server, transactional_db):
    emitter = OpsEmitter(live_server.url, "oc_wrong", max_retries=0)
    emitter.login(user_id="u1")
    with pytest.raises(EmitterError) as error:
        emitter.flush()
    assert error.value.status == 401
    assert len(emitter._buffer) == 1


def test_two_identical_batches_racing_store_each_event_once(live_server, ingest_key):
    batch = json.dumps(
        {"events": [{"event_id": str(uuid.uuid4()), "tenant_id": "acme", "event_type": "LOGIN"} for _ in range(400)]}
    ).encode()
    receipts: list[dict] = []
    barrier = threading.Barrier(2)

    def post() -> None:
        request = urllib.request.Request(
            live_server.url + "/api/v1/events",
            data=batch,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {ingest_key}"},
        )
        barrier.wait()
        with urllib.request.urlopen(request, timeout=30) as response:
            receipts.append(json.loads(response.read()))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r["accepted"] for r in receipts) == 400
    assert sum(r["duplicates"] for r in receipts) == 400
    assert Event.objects.count() == 400


class _FlakyReceiver(BaseHTTPRequestHandler):
    """Answers 503 (with Retry-After 0) to the first two posts, then a receipt."""

    bodies: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).bodies.append(body)
        if len(type(self).bodies) <= 2:
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        count = len(json.loads(body)["events"])
        payload = json.dumps({"accepted": count, "duplicates": 0, "rejected": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky_server() -> Iterator[str]:
    _FlakyReceiver.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.django_db(transaction=False)
def test_it_retries_503_with_the_same_event_ids(flaky_server):
    emitter = OpsEmitter(flaky_server, "oc_any", backoff_base=0.01)
    emitter.export_failed(tenant_id="acme", error="timeout")
    emitter.flush()
    assert emitter.sent == 1
    assert len(_FlakyReceiver.bodies) == 3
    assert len({body for body in _FlakyReceiver.bodies}) == 1  # the retry resent the identical batch


@pytest.mark.django_db(transaction=False)
def test_it_gives_up_after_its_retries_on_a_dead_host():
    emitter = OpsEmitter("http://127.0.0.1:9", "oc_any", max_retries=2, backoff_base=0.01)
    emitter.login(user_id="u1")
    with pytest.raises(EmitterError, match="Gave up after 3 attempts"):
        emitter.flush()
