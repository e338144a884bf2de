"""A request counter cheap enough for the ingest hot path.

Why not one database write per request: every request would update the same
hour row, so all workers would queue on that row's lock and each request would
pay a round trip. Why not Redis ``INCR``: a Redis outage must never fail or slow
a request, and a Redis restart or eviction would lose the counts.

Instead each worker process counts in memory (a dict of hour -> count under a
lock, for threaded workers) and, at most every
``INFRA_REQUEST_COUNTER_FLUSH_SECONDS``, the request that finds the interval
elapsed adds the counts to ``infra_api_request_count`` with one upsert of
``count = count + n``. Additions commute, so any number of gunicorn workers sum
to the right total. The price: a count shows up in PostgreSQL up to one flush
interval late (later for a worker that goes idle, until its next request or its
exit), and a worker killed with SIGKILL loses at most one interval of counts.
A failed flush (database down) keeps the counts for the next try and never
fails the request.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from infra.services import api_request_counts_add

logger = logging.getLogger(__name__)


class HourlyRequestCounter:
    """Per-process request counts by hour, flushed to PostgreSQL in batches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[datetime, int] = {}
        self._last_flush = time.monotonic()

    def reset(self) -> None:
        # Also called in a forked child: counts inherited from the parent are the
        # parent's to flush, not the child's.
        self._lock = threading.Lock()
        self._counts = {}
        self._last_flush = time.monotonic()

    def add(self, at: datetime) -> None:
        hour = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        with self._lock:
            self._counts[hour] = self._counts.get(hour, 0) + 1

    def pending(self) -> dict[datetime, int]:
        with self._lock:
            return dict(self._counts)

    def flush(self, *, min_interval_seconds: float = 0.0) -> int:
        """Add the pending counts to PostgreSQL if ``min_interval_seconds`` have
        passed since the last flush. Returns the number of requests written;
        on a database error the counts are kept for the next flush."""
        with self._lock:
            now = time.monotonic()
            if not self._counts or now - self._last_flush < min_interval_seconds:
                return 0
            counts, self._counts = self._counts, {}
            self._last_flush = now
        try:
            api_request_counts_add(counts=counts)
        except Exception:
            # The counter must never fail a request: keep the counts, log, retry later.
            logger.warning("could not store %d API request counts; will retry", sum(counts.values()), exc_info=True)
            with self._lock:
                for hour, n in counts.items():
                    self._counts[hour] = self._counts.get(hour, 0) + n
            return 0
        return sum(counts.values())


request_counter = HourlyRequestCounter()
os.register_at_fork(after_in_child=request_counter.reset)


def _flush_at_exit() -> None:
    request_counter.flush()


# A gunicorn worker that exits normally (restart, max_requests, shutdown) writes what it holds.
atexit.register(_flush_at_exit)


class ApiRequestCounterMiddleware:
    """Counts requests whose path starts with one of ``INFRA_API_PATH_PREFIXES``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        counted = request.path.startswith(settings.INFRA_API_PATH_PREFIXES)
        if counted:
            # Counted before the view runs, so a request that fails still counts as load.
            request_counter.add(timezone.now())
        response = self.get_response(request)
        if counted:
            request_counter.flush(min_interval_seconds=settings.INFRA_REQUEST_COUNTER_FLUSH_SECONDS)
        return response
