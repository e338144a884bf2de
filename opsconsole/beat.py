"""Celery beat's scheduler: django-celery-beat's DatabaseScheduler that survives a database outage.

django-celery-beat 2.9 re-reads the whole schedule every 5 minutes and that read does
not catch database errors: PostgreSQL down at that moment raised OperationalError out
of ``tick()`` and ended beat for good (no recompute, no alert after it). Here a failed
re-read keeps the schedule already in memory (beat goes on sending due tasks, which
need only the broker), closes the broken connection and retries the read every
``BEAT_SCHEDULE_RETRY_SECONDS`` until the database answers; any other database error
inside a tick is logged and the tick retried. Configured by ``CELERY_BEAT_SCHEDULER``.

While the database is down beat backs off: it sends no task (each would fail in the worker: every
task reads or writes PostgreSQL), holding the due ones instead, and retries the schedule read after
BEAT_SCHEDULE_RETRY_SECONDS, doubling up to BEAT_SCHEDULE_RETRY_MAX_SECONDS. The first read that
succeeds sends each held task once, at once: a recompute missed during the outage runs as soon as
the database is back, not at its next slot. (The library also kept the entries it had read, with
their old ``last_run_at``, while the one it advanced lived only in the heap; every failed re-read
rebuilt the heap from the old ones and sent every due task again, every few seconds.)
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from celery.beat import Scheduler
from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection
from django_celery_beat.schedulers import SCHEDULE_SYNC_MAX_INTERVAL, DatabaseScheduler

logger = logging.getLogger(__name__)

DATABASE_ERRORS = (DatabaseError, InterfaceError)
DATABASE_PING_SQL = "SELECT 1"


class RereadIntervalScheduler(DatabaseScheduler):
    """The library's scheduler with its re-read interval from BEAT_SCHEDULE_REREAD_SECONDS (it
    hard-codes 300 s). No error handling: what the tests run to show the library's failure."""

    _read_failures = 0  # consecutive failed reads; the subclass counts them
    _last_full_sync: datetime.datetime | None  # the library's mark of its last full read

    def reread_interval(self) -> float:
        """Seconds until the next schedule read: the retry interval after a failure, doubling with
        each further failure up to BEAT_SCHEDULE_RETRY_MAX_SECONDS."""
        if not self._read_failures:
            return float(settings.BEAT_SCHEDULE_REREAD_SECONDS)
        backoff = settings.BEAT_SCHEDULE_RETRY_SECONDS * 2 ** min(self._read_failures - 1, 16)
        return float(min(backoff, max(settings.BEAT_SCHEDULE_RETRY_SECONDS, settings.BEAT_SCHEDULE_RETRY_MAX_SECONDS)))

    @property
    def schedule(self) -> dict[str, Any]:
        # The library re-reads once SCHEDULE_SYNC_MAX_INTERVAL has passed since the last read;
        # moving that mark back makes it re-read after our own interval (shorter after a failure).
        if self._last_full_sync is not None:
            due = self.reread_interval()
            now = datetime.datetime.now()
            if (now - self._last_full_sync).total_seconds() >= due:
                self._last_full_sync = now - datetime.timedelta(seconds=SCHEDULE_SYNC_MAX_INTERVAL)
        return super().schedule


class ResilientDatabaseScheduler(RereadIntervalScheduler):
    """The scheduler beat runs (CELERY_BEAT_SCHEDULER): survives the database going away, sends
    nothing while it is away, and sends what it held once it is back."""

    # Entries that fell due while the database was down, by name: sent once when it is back.
    _held: dict[str, Any] | None = None
    _catch_up_due = False

    def reserve(self, entry: Any) -> Any:
        new_entry = super().reserve(entry)
        # Keep the advanced entry (its new last_run_at) where a heap rebuild reads it: the library
        # leaves the old one there until a sync and a re-read, neither of which happens while the
        # database is down, and every rebuild then found the task due again.
        if self._schedule is not None and new_entry.name in self._schedule:
            self._schedule[new_entry.name] = new_entry
        return new_entry

    def _database_answers(self) -> bool:
        try:
            with connection.cursor() as cursor:
                cursor.execute(DATABASE_PING_SQL)
            return True
        except DATABASE_ERRORS:
            connection.close()
            return False

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        if self._read_failures or not self._database_answers():
            # Every task needs the database: hold it instead of sending one that can only fail.
            if not self._read_failures:
                self._read_failures = 1  # the next schedule read is the probe for the way back
                self._last_full_sync = datetime.datetime.now()
            if self._held is None:
                self._held = {}
            self._held[entry.name] = entry
            logger.warning(
                "beat: the database is down; %s (%s) is held and sent once it answers (next try in %s s)",
                entry.name,
                entry.task,
                self.reread_interval(),
            )
            return
        if self._held:
            # Sent now (the read that found the database back also found it due): not again below.
            self._held.pop(entry.name, None)
        super().apply_entry(entry, producer=producer)

    def all_as_schedule(self) -> dict[str, Any]:
        try:
            schedule = super().all_as_schedule()
        except DATABASE_ERRORS as exc:
            self._read_failures += 1
            connection.close()  # the next attempt opens a fresh one
            kept = dict(self._schedule or {})
            logger.error(
                "beat: reading the schedule from the database failed (%s: %s); holding the due tasks of "
                "the %d entries in memory and retrying in %s s (failure %d)",
                type(exc).__name__,
                str(exc).strip(),
                len(kept),
                self.reread_interval(),
                self._read_failures,
            )
            return kept
        if self._read_failures:
            logger.warning("beat: schedule read from the database again after %d failed attempts", self._read_failures)
            self._read_failures = 0
            self._catch_up_due = bool(self._held)
        return schedule

    def _held_send(self) -> None:
        """Send each task held during the outage once, now (its entry as just read, advanced)."""
        held, self._held, self._catch_up_due = self._held or {}, None, False
        for name, entry in held.items():
            current = (self._schedule or {}).get(name, entry)
            logger.warning("beat: the database is back; sending %s (%s), missed during the outage", name, entry.task)
            self.reserve(current)
            Scheduler.apply_entry(self, current, producer=self.producer)
        self._heap = None  # rebuilt from the advanced entries at the next tick

    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            delay = float(super().tick(*args, **kwargs))
            if self._catch_up_due and not self._read_failures:
                self._held_send()
                return 0.0
            return delay
        except DATABASE_ERRORS as exc:
            # Anything else the library does not catch (saving an expired entry, a one-off task):
            # the tick is retried; beat itself never dies of a database outage.
            connection.close()
            logger.error("beat: database error during a tick (%s: %s); retrying", type(exc).__name__, exc)
            return float(settings.BEAT_SCHEDULE_RETRY_SECONDS)
