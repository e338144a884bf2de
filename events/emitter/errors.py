"""What the emitter tells its caller: an error, a deferred delivery, or events lost for good."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class EmitterError(Exception):
    """A batch could not be delivered (after retries) or was refused outright."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class DeliveryDeferred(EmitterError):
    """Nothing was lost: the events are still queued and the sending thread goes on trying."""

    def __init__(
        self, message: str, *, status: int | None = None, body: Any = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status, body=body)
        # The server's Retry-After on the last attempt (seconds): the thread waits at least this long.
        self.retry_after = retry_after


@dataclass(frozen=True)
class LostEvent:
    event_id: str | None
    reason: str
    status: int | None = None


class EventsLost(EmitterError):
    """The server refused these events for good; every other event was sent or is still queued."""

    def __init__(self, message: str, *, lost: list[LostEvent], status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.lost = lost


class EventLost(EventsLost):
    """emit(): this one event was not queued (buffer full, or too large to ever send)."""
