"""The emitter never stalls the product: emit() only queues and returns at once, whatever the
server does (hangs, or answers 503 with Retry-After: 60); its own thread sends, flush(timeout=...)
waits at most that long, the process's exit flushes with a bound, and nothing is lost once the
server answers again. Against a receiver in this process whose behaviour the test switches."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from events.emitter import DeliveryDeferred, OpsEmitter

EMITTER_PACKAGE = Path(__file__).resolve().parents[2] / "events" / "emitter"
# The bound for one emit(). The 99th percentile is held to it; a blocking emit() would wait for
# the receiver's hold (released only after the emits) or a 60 s Retry-After, never a few milliseconds more.
EMIT_BOUND_SECONDS = 0.05


class Receiver:
    """An ingest endpoint whose behaviour the test switches: "hold" keeps each request unanswered
    until release(), "503" answers 503 with Retry-After: 60, "ok" answers with a receipt."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.released = threading.Event()
        self.held = threading.Event()  # a request is being held unanswered
        self.stored: list[str] = []  # event ids of answered 200s, in order (resends included)
        self.answers: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                ids = [event["event_id"] for event in body["events"]]
                if receiver.mode == "hold":
                    receiver.held.set()
                    receiver.released.wait(120)
                if receiver.mode == "503":
                    receiver._answer(self, 503, {"detail": "database unavailable"}, retry_after="60")
                    return
                with receiver.lock:
                    fresh = [event_id for event_id in ids if event_id not in receiver.stored]
                    receiver.stored += fresh
                receiver._answer(
                    self, 200, {"accepted": len(fresh), "duplicates": len(ids) - len(fresh), "rejected": []}
                )

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _answer(self, handler: BaseHTTPRequestHandler, status: int, body: dict, retry_after: str = "") -> None:
        payload = json.dumps(body).encode()
        with self.lock:
            self.answers.append(status)
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        if retry_after:
            handler.send_header("Retry-After", retry_after)
        handler.end_headers()
        handler.wfile.write(payload)

    def release(self) -> None:
        self.mode = "ok"
        self.released.set()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.release()
    receiver.server.shutdown()


def _until(condition: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _timed_emits(emitter: OpsEmitter, count: int, prefix: str) -> tuple[list[str], list[float]]:
    ids, durations = [], []
    for index in range(count):
        started = time.perf_counter()
        ids.append(emitter.login(tenant_id="acme", user_id=f"{prefix}{index % 40}"))
        durations.append(time.perf_counter() - started)
    return ids, durations


def _assert_never_waited(durations: list[float]) -> None:
    ordered = sorted(durations)
    assert ordered[int(len(ordered) * 0.99)] < EMIT_BOUND_SECONDS, ordered[-10:]
    assert ordered[-1] < 1.0, ordered[-10:]


def test_emit_returns_at_once_while_the_server_hangs_and_nothing_is_lost_once_it_answers(receiver):
    receiver.mode = "hold"
    emitter = OpsEmitter(receiver.url, "oc_any", batch_size=50, timeout=60, flush_interval=0.05)
    first, durations = _timed_emits(emitter, 50, "u")  # a full batch: the thread sends it and hangs
    _until(receiver.held.is_set, "the emitter's request to reach the hanging server")
    more, more_durations = _timed_emits(emitter, 950, "v")
    assert not receiver.released.is_set() and receiver.answers == []  # every emit returned during the hang
    _assert_never_waited(durations + more_durations)
    # flush() with a timeout comes back within it: nothing delivered, nothing lost.
    with pytest.raises(DeliveryDeferred, match="stay queued"):
        emitter.flush(timeout=0.2)
    assert emitter.pending == 1000 and emitter.lost == [] and emitter.dropped == 0

    receiver.release()
    emitter.flush(timeout=60)
    assert receiver.stored == first + more
    assert (emitter.sent, emitter.pending, emitter.lost) == (1000, 0, [])
    emitter.close()


def test_emit_returns_at_once_through_503_retry_after_60_and_everything_arrives_once_the_server_is_back(receiver):
    receiver.mode = "503"
    emitter = OpsEmitter(receiver.url, "oc_any", batch_size=50, flush_interval=0.05)
    first, durations = _timed_emits(emitter, 50, "u")
    _until(lambda: emitter.attempts["503"] >= 1, "the first 503")  # the thread now waits the 60 s asked for
    more, more_durations = _timed_emits(emitter, 950, "v")
    _assert_never_waited(durations + more_durations)
    with pytest.raises(DeliveryDeferred):
        emitter.flush(timeout=0.5)
    assert receiver.stored == [] and set(receiver.answers) == {503}
    assert emitter.pending == 1000

    receiver.mode = "ok"  # the server is back: an explicit flush() tries now instead of after 60 s
    emitter.flush(timeout=60)
    assert receiver.stored == first + more
    assert (emitter.sent, emitter.duplicates, emitter.pending, emitter.lost, emitter.dropped) == (1000, 0, 0, [], 0)
    emitter.close()


def test_the_thread_sends_a_part_batch_by_itself_within_the_flush_interval(receiver):
    emitter = OpsEmitter(receiver.url, "oc_any", batch_size=500, flush_interval=0.05)
    ids = [emitter.login(user_id=f"u{index}") for index in range(3)]
    _until(lambda: len(receiver.stored) == 3, "the thread to send the three events without a flush()")
    assert receiver.stored == ids
    emitter.close()


def _run_vendored(tmp_path: Path, url: str, *, exit_flush_timeout: float) -> subprocess.CompletedProcess[str]:
    """A product process with the emitter copied in as its folder, run without site-packages (-S: the
    standard library only), that emits five events and exits without calling flush()."""
    shutil.copytree(EMITTER_PACKAGE, tmp_path / "emitter", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "product.py").write_text(
        textwrap.dedent(
            f"""
            import logging
            from emitter import OpsEmitter

            logging.basicConfig(level=logging.ERROR)
            ops = OpsEmitter({url!r}, "oc_any", flush_interval=3600, exit_flush_timeout={exit_flush_timeout})
            print(",".join(ops.login(user_id=f"u{{index}}") for index in range(5)))
            """
        )
    )
    return subprocess.run(
        [sys.executable, "-S", "product.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )


def test_the_process_exit_flushes_what_is_queued(receiver, tmp_path):
    result = _run_vendored(tmp_path, receiver.url, exit_flush_timeout=30)
    assert receiver.stored == result.stdout.strip().split(",")
    assert "not delivered" not in result.stderr


def test_the_process_exit_waits_only_its_bound_for_a_hanging_server_and_says_what_it_could_not_deliver(
    receiver, tmp_path
):
    receiver.mode = "hold"  # holds each request for 120 s; the subprocess's own limit is 60 s
    result = _run_vendored(tmp_path, receiver.url, exit_flush_timeout=0.5)
    assert "closed with 5 events not delivered" in result.stderr
    assert receiver.stored == []
