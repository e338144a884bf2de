"""A dependency-free client for sending events to Ops Console.

Standard library only, so a product backend can copy this one file into its
own code base. Events are batched (up to 500 per request by default), each
gets an ``event_id`` when it is created, and a batch is retried with
exponential backoff on 429, 5xx and connection errors: because the ids are
fixed before the first attempt, a retry never stores anything twice.

    emitter = OpsEmitter("https://ops.example.com", api_key="oc_...")
    emitter.replay_started(tenant_id="acme", user_id="u_42", session_id="s_9")
    emitter.export_aborted(tenant_id="acme", user_id="u_42", reason="too slow")
    emitter.flush()

The emitter is thread-safe; it does not start threads of its own (call
``flush()`` from your request teardown or a timer, or use it as a context
manager).
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

__all__ = ["EmitterError", "OpsEmitter"]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class EmitterError(Exception):
    """A batch could not be delivered (after retries) or was refused outright."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class OpsEmitter:
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
    ) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be between 1 and 1000 (the server's limit).")
        self.url = base_url.rstrip("/") + "/api/v1/events"
        self.api_key = api_key
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.timeout = timeout
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.sent = 0
        self.duplicates = 0
        self.rejected: list[dict[str, Any]] = []
        # Every attempt's outcome ("200", "503", "connection_error", ...): what a
        # backend can log or export to see how often it had to retry.
        self.attempts: Counter[str] = Counter()

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
        """Queue one event; returns its event_id. Sends a batch when the buffer is full."""
        event = {
            "event_id": event_id or str(uuid.uuid4()),
            "event_type": event_type,
            "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
            "metadata": metadata,
        }
        for key, value in (("tenant_id", tenant_id), ("user_id", user_id), ("session_id", session_id)):
            if value is not None:
                event[key] = value
        with self._lock:
            self._buffer.append(event)
            full = len(self._buffer) >= self.batch_size
        if full:
            self.flush()
        return event["event_id"]

    def flush(self) -> None:
        """Send everything queued, in batches. Raises EmitterError if a batch is lost."""
        while True:
            with self._lock:
                batch, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
            if not batch:
                return
            try:
                receipt = self._send(batch)
            except EmitterError:
                with self._lock:  # keep the events for a later flush
                    self._buffer = batch + self._buffer
                raise
            self.sent += receipt.get("accepted", 0)
            self.duplicates += receipt.get("duplicates", 0)
            self.rejected.extend(receipt.get("rejected", []))

    def _send(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        body = json.dumps({"events": batch}).encode()
        last_error = "no attempt made"
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(
                self.url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {self.api_key}",
                    "User-Agent": "ops-console-emitter/1",
                },
            )
            retry_after: float | None = None
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
                    raise EmitterError(
                        f"Ops Console refused the batch: HTTP {exc.code} {payload}", status=exc.code, body=payload
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
            time.sleep(max(delay, retry_after or 0.0))
        raise EmitterError(f"Gave up after {self.max_retries + 1} attempts: {last_error}")

    def __enter__(self) -> OpsEmitter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.flush()

    # --- The spec's events --------------------------------------------------------------
    def signup(self, *, user_id: str, email: str | None = None, **kw: Any) -> str:
        return self.emit("SIGNUP", user_id=user_id, **({"email": email} if email else {}), **kw)

    def login(self, *, user_id: str, **kw: Any) -> str:
        return self.emit("LOGIN", user_id=user_id, **kw)

    def core_action(self, *, user_id: str, action: str, **kw: Any) -> str:
        """The product's core action (the spec's coach call or agent run)."""
        return self.emit("CORE_ACTION", user_id=user_id, action=action, **kw)

    def decision(self, *, user_id: str, **kw: Any) -> str:
        return self.emit("DECISION", user_id=user_id, **kw)

    def feedback(self, *, user_id: str, **kw: Any) -> str:
        return self.emit("FEEDBACK", user_id=user_id, **kw)

    def incident_viewed(self, **kw: Any) -> str:
        return self.emit("INCIDENT_VIEWED", **kw)

    def incident_viewed_no_action(self, **kw: Any) -> str:
        return self.emit("INCIDENT_VIEWED_NO_ACTION", **kw)

    def replay_started(self, **kw: Any) -> str:
        return self.emit("REPLAY_STARTED", **kw)

    def replay_completed(self, **kw: Any) -> str:
        return self.emit("REPLAY_COMPLETED", **kw)

    def replay_aborted(self, **kw: Any) -> str:
        return self.emit("REPLAY_ABORTED", **kw)

    def replay_failed(self, **kw: Any) -> str:
        return self.emit("REPLAY_FAILED", **kw)

    def export_started(self, **kw: Any) -> str:
        return self.emit("EXPORT_STARTED", **kw)

    def export_completed(self, **kw: Any) -> str:
        return self.emit("EXPORT_COMPLETED", **kw)

    def export_aborted(self, **kw: Any) -> str:
        return self.emit("EXPORT_ABORTED", **kw)

    def export_failed(self, **kw: Any) -> str:
        return self.emit("EXPORT_FAILED", **kw)

    def policy_block_repeat(self, **kw: Any) -> str:
        return self.emit("POLICY_BLOCK_REPEAT", **kw)

    def session_started(self, **kw: Any) -> str:
        return self.emit("SESSION_STARTED", **kw)

    def session_ended(self, **kw: Any) -> str:
        return self.emit("SESSION_ENDED", **kw)

    def session_idle_timeout(self, **kw: Any) -> str:
        return self.emit("SESSION_IDLE_TIMEOUT", **kw)

    def cert_generated(self, **kw: Any) -> str:
        return self.emit("CERT_GENERATED", **kw)

    def cert_downloaded(self, **kw: Any) -> str:
        return self.emit("CERT_DOWNLOADED", **kw)

    def api_call(self, **kw: Any) -> str:
        return self.emit("API_CALL", **kw)

    def policy_changed(self, **kw: Any) -> str:
        return self.emit("POLICY_CHANGED", **kw)

    def model_switched(self, **kw: Any) -> str:
        return self.emit("MODEL_SWITCHED", **kw)

    def rate_limit_changed(self, **kw: Any) -> str:
        return self.emit("RATE_LIMIT_CHANGED", **kw)

    def plan_changed(self, **kw: Any) -> str:
        return self.emit("PLAN_CHANGED", **kw)


def _read_json(exc: urllib.error.HTTPError) -> Any:
    try:
        return json.loads(exc.read() or b"null")
    except (ValueError, OSError):
        return None


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), 60.0) if value else None
    except ValueError:
        return None
