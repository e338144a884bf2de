"""The emitter itself: a bounded queue, one sending thread, batches retried without duplicates."""

from __future__ import annotations

import atexit
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, deque
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from .errors import DeliveryDeferred, EmitterError, EventLost, EventsLost, LostEvent
from .vocabulary import DefaultVocabulary

logger = logging.getLogger("opsconsole.emitter")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Statuses that are about the request's content, so splitting the batch can isolate the event at fault.
CONTENT_STATUSES = frozenset({400, 413})
# The server's body limit (INGEST_MAX_BYTES): batches are cut below it before they are sent.
SERVER_MAX_BYTES = 1024 * 1024
_ENVELOPE_BYTES = len(b'{"events": []}')
# The longest Retry-After honoured: a server asking for more is retried after this.
RETRY_AFTER_MAX_SECONDS = 60.0


class OpsEmitter(DefaultVocabulary):
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        batch_size: int = 500,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 10.0,
        max_buffer: int = 100_000,
        max_request_bytes: int = SERVER_MAX_BYTES,
        flush_interval: float = 2.0,
        exit_flush_timeout: float = 5.0,
    ) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be between 1 and 1000 (the server's limit).")
        if max_buffer < batch_size:
            raise ValueError("max_buffer must be at least batch_size.")
        if max_request_bytes < 1024:
            raise ValueError("max_request_bytes must be at least 1024.")
        if flush_interval <= 0 or exit_flush_timeout < 0:
            raise ValueError("flush_interval must be positive and exit_flush_timeout not negative.")
        self.url = base_url.rstrip("/") + "/api/v1/events"
        self.api_key = api_key
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.max_buffer = max_buffer
        self.max_request_bytes = max_request_bytes
        self.flush_interval = flush_interval
        self.exit_flush_timeout = exit_flush_timeout
        self.sent = 0
        self.duplicates = 0
        self.rejected: list[dict[str, Any]] = []
        # Events given up for good (server refusal), and events refused by emit() (buffer full).
        self.lost: list[LostEvent] = []
        self.dropped = 0
        self.last_error: str | None = None
        # Every attempt's outcome ("200", "503", "413", "connection_error", ...): what a
        # backend can log or export to see how often it had to retry.
        self.attempts: Counter[str] = Counter()
        self._reset_queue()

    def _reset_queue(self) -> None:
        """The queue and the sending thread's state (again in a forked child: its parent's thread is gone)."""
        # Each queued event with its encoded size (measured once, when it is emitted).
        self._buffer: deque[tuple[dict[str, Any], int]] = deque()
        # One lock for the queue and the counters below; the thread and flush() wait on it.
        self._cond = threading.Condition(threading.Lock())
        self._in_flight = 0  # events taken by the thread and not yet delivered or put back
        self._queued_total = 0  # events ever queued; flush() waits until as many are settled
        self._settled_total = 0  # events delivered or given up
        self._oldest_queued_at: float | None = None  # time.monotonic() of the oldest waiting event
        self._failed_rounds = 0  # rounds that could not deliver, ever (flush() watches it)
        self._consecutive_failures = 0  # since the last success: the backoff's exponent
        self._retry_at = 0.0  # time.monotonic() before which the thread does not retry on its own
        self._last_failure: DeliveryDeferred | None = None
        self._unreported_lost: list[LostEvent] = []  # lost while sending, not yet raised by flush()
        self._flush_waiters = 0
        # A flush() asks for sending now, ignoring the backoff, until a round fails: then the flush
        # returns, and the thread waits its backoff (the next flush() asks again).
        self._flush_asked = False
        self._closing = False
        # Set by flush() and close(): cuts short a retry wait (the caller wants an attempt now).
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    @property
    def pending(self) -> int:
        """Events queued and not yet delivered (those being sent included)."""
        return len(self._buffer) + self._in_flight

    # --- Core --------------------------------------------------------------------------
    def emit(
        self,
        event_type: str,
        *,
        tenant_id: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        occurred_at: datetime | None = None,
        event_id: str | None = None,
        **metadata: Any,
    ) -> str:
        """Queue one event and return its event_id at once; the sending thread delivers it.

        Never touches the network. Raises EventLost only when this event is not queued
        (see the module docstring)."""
        event: dict[str, Any] = {
            "event_id": event_id or str(uuid.uuid4()),
            "event_type": event_type,
            "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
            "metadata": metadata,
        }
        for key, value in (("tenant_id", tenant_id), ("user_id", user_id), ("session_id", session_id)):
            if value is not None:
                event[key] = value
        size = len(json.dumps(event).encode()) + 2  # ", " between events
        if size + _ENVELOPE_BYTES > self.max_request_bytes:
            self._refuse(event, f"the event is {size:,} bytes, over the {self.max_request_bytes:,}-byte body limit")
        self._ensure_thread()
        with self._cond:
            closed = self._closing
            full = self.pending >= self.max_buffer
            if not (full or closed):
                self._buffer.append((event, size))
                self._queued_total += 1
                if self._oldest_queued_at is None:
                    self._oldest_queued_at = time.monotonic()
                if len(self._buffer) in (1, self.batch_size):  # the thread's next due time changed
                    self._cond.notify_all()
        if closed:
            self._refuse(event, "the emitter is closed")
        if full:
            self._refuse(event, f"the buffer is full ({self.max_buffer:,} events waiting; is the server reachable?)")
        return str(event["event_id"])

    def _refuse(self, event: dict[str, Any], reason: str) -> None:
        with self._cond:
            self.dropped += 1
            lost = LostEvent(event_id=str(event["event_id"]), reason=reason)
            self.lost.append(lost)
        logger.error("Ops Console event %s not queued: %s", lost.event_id, reason)
        raise EventLost(f"Event {lost.event_id} was not queued: {reason}.", lost=[lost])

    def flush(self, timeout: float | None = None) -> None:
        """Have the sending thread deliver everything queued now, waiting at most ``timeout``
        seconds (None: until it is delivered or a round of sending fails).

        Raises DeliveryDeferred when the events queued before this call are not all delivered
        (a round failed, or the timeout passed; they stay queued), EventsLost when the server
        refused some events for good since the last flush()."""
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        if self._buffer or self._pid != os.getpid():
            self._ensure_thread()
        with self._cond:
            target = self._queued_total
            failed_rounds_before = self._failed_rounds
            self._flush_waiters += 1
            self._flush_asked = True
            self._wake.set()
            self._cond.notify_all()
            try:
                while self._settled_total < target and self._failed_rounds == failed_rounds_before:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    self._cond.wait(remaining)
            finally:
                self._flush_waiters -= 1
            lost_now, self._unreported_lost = self._unreported_lost, []
            delivered = self._settled_total >= target
            failure = self._last_failure if self._failed_rounds != failed_rounds_before else None
            pending = self.pending
        if delivered:
            if lost_now:
                raise self._lost_error(lost_now, pending=0)
            return
        if failure is not None:
            deferred = DeliveryDeferred(str(failure), status=failure.status, body=failure.body)
        else:
            deferred = DeliveryDeferred(
                f"Not delivered within {timeout} s (last error: {self.last_error or 'none, still sending'}); "
                f"{pending:,} events stay queued and the emitter goes on sending them."
            )
        if lost_now:
            raise self._lost_error(lost_now, pending=pending) from deferred
        raise deferred

    def close(self, timeout: float | None = None) -> None:
        """Flush for at most ``timeout`` seconds (default ``exit_flush_timeout``), then stop the
        sending thread. What is still queued then is logged and stays in ``pending``."""
        timeout = self.exit_flush_timeout if timeout is None else timeout
        try:
            self.flush(timeout=timeout)
        finally:
            with self._cond:
                self._closing = True
                self._wake.set()
                self._cond.notify_all()
            _open_emitters.discard(self)
            if self.pending:
                logger.error(
                    "Ops Console emitter closed with %d events not delivered (last error: %s)",
                    self.pending,
                    self.last_error,
                )

    def _lost_error(self, lost: list[LostEvent], *, pending: int) -> EventsLost:
        tail = f" {pending:,} events are still queued for retry." if pending else ""
        return EventsLost(
            f"Ops Console refused {len(lost)} event(s) for good (first: {lost[0].reason}); the rest went on.{tail}",
            lost=lost,
            status=lost[0].status,
        )

    # --- The sending thread ---------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._pid != os.getpid():  # a forked child: the parent's thread and lock state are not ours
            self._reset_queue()
        if self._thread is not None:
            return
        with self._cond:
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(target=self._run, name="ops-console-emitter", daemon=True)
                self._thread.start()
                _open_emitters.add(self)

    def _next_batch(self) -> list[tuple[dict[str, Any], int]] | None:
        """Wait until a batch is due, take it (None: closed and nothing left). Holds the lock."""
        while True:
            if self._closing and (not self._buffer or self._flush_waiters == 0):
                return None
            now = time.monotonic()
            if self._buffer:
                asked = (self._flush_asked and self._flush_waiters > 0) or self._closing
                due_at = min(
                    now if len(self._buffer) >= self.batch_size else float("inf"),
                    (self._oldest_queued_at or now) + self.flush_interval,
                )
                if asked or now >= max(due_at, self._retry_at):
                    batch = self._take_batch()
                    self._in_flight = len(batch)
                    self._oldest_queued_at = now if self._buffer else None
                    return batch
                self._cond.wait(max(due_at, self._retry_at) - now)
            else:
                self._cond.wait()

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
                if batch is None:
                    return
                self._wake.clear()
            try:
                lost = self._deliver(batch)
            except _Undelivered as undelivered:
                self._round_failed(len(batch), undelivered)
            except Exception as exc:  # a bug must not kill the thread and strand the queue
                logger.exception("Ops Console emitter: unexpected error while sending")
                error = DeliveryDeferred(f"{type(exc).__name__}: {exc}; the events stay queued.")
                self._round_failed(len(batch), _Undelivered(batch, [], error))
            else:
                with self._cond:
                    self._in_flight = 0
                    self._settled_total += len(batch)
                    self._unreported_lost += lost
                    self._consecutive_failures = 0
                    self._retry_at = 0.0
                    self._cond.notify_all()

    def _round_failed(self, taken: int, undelivered: _Undelivered) -> None:
        """Put what was not delivered back at the head of the queue, in order, and back off."""
        error = undelivered.error
        with self._cond:
            self._buffer.extendleft(reversed(undelivered.remaining))
            self._in_flight = 0
            self._settled_total += taken - len(undelivered.remaining)
            self._unreported_lost += undelivered.lost
            self._consecutive_failures += 1
            backoff = min(self.backoff_max, self.backoff_base * 2**self._consecutive_failures)
            self._retry_at = time.monotonic() + max(backoff, error.retry_after or 0.0)
            if self._oldest_queued_at is None:
                self._oldest_queued_at = time.monotonic()
            self.last_error = str(error)
            self._last_failure = error
            self._failed_rounds += 1
            self._flush_asked = False
            self._cond.notify_all()
        logger.warning("Ops Console emitter: %s", error)

    def _take_batch(self) -> list[tuple[dict[str, Any], int]]:
        """The next batch: at most batch_size events and max_request_bytes of body."""
        batch: list[tuple[dict[str, Any], int]] = []
        total = _ENVELOPE_BYTES
        while self._buffer and len(batch) < self.batch_size and total + self._buffer[0][1] <= self.max_request_bytes:
            item = self._buffer.popleft()
            batch.append(item)
            total += item[1]
        return batch

    def _deliver(self, batch: list[tuple[dict[str, Any], int]]) -> list[LostEvent]:
        """Send one batch; split it while the server refuses it for its content. Returns the
        events given up; raises _Undelivered with what is left if the server cannot take it now."""
        try:
            receipt = self._send([event for event, _ in batch])
        except DeliveryDeferred as exc:
            raise _Undelivered(batch, [], exc) from None
        except _ContentRefused as refusal:
            if len(batch) == 1:
                lost = LostEvent(str(batch[0][0]["event_id"]), refusal.reason, refusal.status)
                self.lost.append(lost)
                logger.error("Ops Console refused event %s for good: %s", lost.event_id, lost.reason)
                return [lost]
            self.attempts["split"] += 1
            middle = len(batch) // 2
            halves = (batch[:middle], batch[middle:])
            lost_in_halves: list[LostEvent] = []
            for index, half in enumerate(halves):
                try:
                    lost_in_halves += self._deliver(half)
                except _Undelivered as undelivered:
                    # What was delivered stays delivered: only the rest goes back to the queue.
                    later = halves[1] if index == 0 else []
                    raise _Undelivered(
                        undelivered.remaining + later, lost_in_halves + undelivered.lost, undelivered.error
                    ) from None
            return lost_in_halves
        self.sent += receipt.get("accepted", 0)
        self.duplicates += receipt.get("duplicates", 0)
        rejected = receipt.get("rejected", [])
        self.rejected.extend(rejected)
        lost_items = [LostEvent(item.get("event_id"), f"rejected: {item.get('errors')}", 400) for item in rejected]
        for item in lost_items:
            logger.error("Ops Console rejected event %s: %s", item.event_id, item.reason)
        self.lost.extend(lost_items)
        return lost_items

    def _send(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        body = json.dumps({"events": batch}).encode()
        last_error = "no attempt made"
        retry_after: float | None = None
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(
                self.url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {self.api_key}",
                    "User-Agent": "ops-console-emitter/3",
                },
            )
            retry_after = None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    receipt = json.loads(response.read() or b"{}")
                    self.attempts[str(response.status)] += 1
                    return receipt
            except urllib.error.HTTPError as exc:
                self.attempts[str(exc.code)] += 1
                payload = _read_json(exc)
                if exc.code not in RETRY_STATUSES:
                    if exc.code == 400 and isinstance(payload, dict) and "rejected" in payload:
                        return payload  # every event rejected: a receipt, not a transport failure
                    if exc.code in CONTENT_STATUSES:
                        detail = payload.get("detail") if isinstance(payload, dict) else payload
                        raise _ContentRefused(f"HTTP {exc.code}: {detail}", exc.code) from exc
                    # 401, 403, 404, 415...: the key or the URL is wrong, not the events: keep them.
                    raise DeliveryDeferred(
                        f"Ops Console refused the batch: HTTP {exc.code} {payload}; the events stay queued.",
                        status=exc.code,
                        body=payload,
                    ) from exc
                last_error = f"HTTP {exc.code}"
                retry_after = _retry_after(exc.headers.get("Retry-After"))
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError) as exc:
                # ValueError: a truncated or non-JSON body from a dying connection.
                self.attempts["connection_error"] += 1
                last_error = f"{type(exc).__name__}: {exc}"
            if attempt == self.max_retries:
                break
            delay = min(self.backoff_max, self.backoff_base * (2**attempt)) * (0.5 + random.random() / 2)
            # A flush() or close() cuts the wait short once: its caller wants an attempt now.
            if self._wake.wait(max(delay, retry_after or 0.0)):
                self._wake.clear()
        raise DeliveryDeferred(
            f"Gave up after {self.max_retries + 1} attempts: {last_error}; the events stay queued and are retried.",
            retry_after=retry_after,
        )

    def __enter__(self) -> OpsEmitter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Undelivered(Exception):
    """Internal: the events of a batch not yet delivered, those lost on the way, and why."""

    def __init__(self, remaining: list[tuple[dict[str, Any], int]], lost: list[LostEvent], error: DeliveryDeferred):
        super().__init__(str(error))
        self.remaining = remaining
        self.lost = lost
        self.error = error


class _ContentRefused(Exception):
    """The server refused a request for what is in it (400 without a receipt, 413)."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _read_json(exc: urllib.error.HTTPError) -> Any:
    try:
        return json.loads(exc.read() or b"null")
    except (ValueError, OSError):
        return None


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), RETRY_AFTER_MAX_SECONDS) if value else None
    except ValueError:
        return None


# Emitters with a sending thread: the process's exit flushes them, all within one bound.
_open_emitters: set[OpsEmitter] = set()


def _flush_open_emitters_at_exit() -> None:
    emitters = list(_open_emitters)
    deadline = time.monotonic() + max((emitter.exit_flush_timeout for emitter in emitters), default=0.0)
    for emitter in emitters:
        try:
            emitter.close(timeout=max(0.0, min(emitter.exit_flush_timeout, deadline - time.monotonic())))
        except EmitterError as exc:
            logger.error("Ops Console emitter at exit: %s", exc)


# Runs before the daemon sending threads are stopped, after every non-daemon thread has ended.
atexit.register(_flush_open_emitters_at_exit)
