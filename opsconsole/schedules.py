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
        name="customers: recompute metrics",
        task="customers.metrics_recompute",
        crontab="*/5 * * * *",
        expires_seconds=240,
        why="Folds the events committed since the last run into the rollups and refreshes ops_tenant_metrics, "
        "so the at-risk list is at most ~5 minutes behind. Expires before the next run: a missed run is "
        "simply covered by the next one (the fold is incremental), never queued up.",
    ),
]
