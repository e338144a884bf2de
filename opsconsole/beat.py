"""Celery beat's scheduler: django-celery-beat's DatabaseScheduler that survives a database outage.

django-celery-beat 2.9 re-reads the whole schedule every 5 minutes and that read does
not catch database errors: PostgreSQL down at that moment raised OperationalError out
of ``tick()`` and ended beat for good (no recompute, no alert after it). Here a failed
re-read keeps the schedule already in memory (beat goes on sending due tasks, which
need only the broker), closes the broken connection and retries the read every
``BEAT_SCHEDULE_RETRY_SECONDS`` until the database answers; any other database error
inside a tick is logged and the tick retried. Configured by ``CELERY_BEAT_SCHEDULER``.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection
from django_celery_beat.schedulers import SCHEDULE_SYNC_MAX_INTERVAL, DatabaseScheduler

logger = logging.getLogger(__name__)

DATABASE_ERRORS = (DatabaseError, InterfaceError)


class RereadIntervalScheduler(DatabaseScheduler):
    """The library's scheduler with its re-read interval from BEAT_SCHEDULE_REREAD_SECONDS (it
    hard-codes 300 s). No error handling: what the tests run to show the library's failure."""

    _read_failures = 0  # consecutive failed reads; the subclass counts them

    @property
    def schedule(self) -> dict[str, Any]:
        # The library re-reads once SCHEDULE_SYNC_MAX_INTERVAL has passed since the last read;
        # moving that mark back makes it re-read after our own interval (shorter after a failure).
        if self._last_full_sync is not None:
            due = settings.BEAT_SCHEDULE_RETRY_SECONDS if self._read_failures else settings.BEAT_SCHEDULE_REREAD_SECONDS
            now = datetime.datetime.now()
            if (now - self._last_full_sync).total_seconds() >= due:
                self._last_full_sync = now - datetime.timedelta(seconds=SCHEDULE_SYNC_MAX_INTERVAL)
        return super().schedule


class ResilientDatabaseScheduler(RereadIntervalScheduler):
    """The scheduler beat runs (CELERY_BEAT_SCHEDULER): survives the database going away."""

    def all_as_schedule(self) -> dict[str, Any]:
        try:
            schedule = super().all_as_schedule()
        except DATABASE_ERRORS as exc:
            self._read_failures += 1
            connection.close()  # the next attempt opens a fresh one
            kept = dict(self._schedule or {})
            logger.error(
                "beat: reading the schedule from the database failed (%s: %s); running on the %d entries "
                "in memory and retrying in %s s (failure %d)",
                type(exc).__name__,
                str(exc).strip(),
                len(kept),
                settings.BEAT_SCHEDULE_RETRY_SECONDS,
                self._read_failures,
            )
            return kept
        if self._read_failures:
            logger.warning("beat: schedule read from the database again after %d failed attempts", self._read_failures)
            self._read_failures = 0
        return schedule

    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            return float(super().tick(*args, **kwargs))
        except DATABASE_ERRORS as exc:
            # Anything else the library does not catch (saving an expired entry, a one-off task):
            # the tick is retried; beat itself never dies of a database outage.
            connection.close()
            logger.error("beat: database error during a tick (%s: %s); retrying", type(exc).__name__, exc)
            return float(settings.BEAT_SCHEDULE_RETRY_SECONDS)
