"""Every periodic task, in one place.

``manage.py install_schedules`` (run by ``make run`` and after deploys) creates
the django-celery-beat rows that are missing; it never overwrites a schedule a
founder edited in admin. Each entry says why it runs when it does, and carries
an expiry so that a backlog of missed runs is dropped instead of piling up.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    crontab: str  # "minute hour day_of_month month_of_year day_of_week"
    expires_seconds: int
    why: str
    timezone: str = "UTC"


SCHEDULES: list[Schedule] = [
    # Apps append their entries here (one list, so every schedule is visible at a glance).
    Schedule(
        name="infra: hourly snapshot",
        task="infra.snapshot_infra",
        # Minute 5: the web workers have flushed the previous hour's request counts
        # (every 10 s), so api_requests_24h covers 24 whole hours.
        crontab="5 * * * *",
        # A snapshot taken late is a reading at the wrong time; the next hour's run is better.
        expires_seconds=30 * 60,
        why="Measured database and Redis sizes for the days-to-limit projections (GET /ops/infra).",
    ),
    Schedule(
        name="events: prune ingest rate windows",
        task="events.prune_ingest_rate_windows",
        # Hourly is plenty: a window matters for one minute; this only keeps the table small.
        crontab="17 * * * *",
        expires_seconds=30 * 60,
        why="Deletes the per-key, per-minute ingest counters of finished windows.",
    ),
]
