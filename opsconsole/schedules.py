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
    # --- North star (events app) ---
    Schedule(
        name="events: classification pass",
        task="events.tasks.classification_pass_task",
        crontab="*/5 * * * *",
        expires_seconds=240,
        why="Judges single-page visits once a session has been quiet 30 minutes, re-checks rows ingested "
        "since the last pass against the rules in force, and reclassifies all history if the rules changed "
        "outside admin (e.g. a tenant flagged internal).",
    ),
    Schedule(
        name="events: north-star alerts",
        task="events.tasks.north_star_alerts_evaluate_task",
        crontab="*/5 * * * *",
        expires_seconds=240,
        why="Announces a change of the north-star status (Slack/email) within five minutes; a daily "
        "reminder while critical. Idempotent: a missed run is simply caught up by the next.",
    ),
    Schedule(
        name="events: deliver due alert notifications",
        task="events.tasks.alert_notifications_retry_due_task",
        crontab="* * * * *",
        expires_seconds=50,
        why="Retries failed Slack/email deliveries once their backoff has passed, and picks up any "
        "notification whose delivery task was lost.",
    ),
    Schedule(
        name="events: weekly check-in",
        task="events.tasks.weekly_checkin_task",
        crontab="0 9 * * 5",
        timezone="Africa/Johannesburg",
        expires_seconds=6 * 3600,
        why="The founder's Friday 09:00 SAST digest (north star, DAU/MAU vs targets, at-risk customers, "
        "infrastructure days to limit). Sent once per ISO week even if it runs twice.",
    ),
    Schedule(
        name="customers: recompute metrics",
        task="customers.metrics_recompute",
        crontab="*/5 * * * *",
        expires_seconds=240,
        why="Folds the events committed since the last run into the rollups and refreshes ops_tenant_metrics, "
        "so the at-risk list is at most ~5 minutes behind. Expires before the next run: a missed run is "
        "simply covered by the next one (the fold is incremental), never queued up.",
    ),
    Schedule(
        name="infra: runway alerts",
        task="infra.alerts_evaluate",
        # Ten minutes past: after the hourly snapshot (minute 5) has a fresh reading.
        crontab="10 * * * *",
        expires_seconds=30 * 60,
        why="Warns when the database or Redis is under 14 days from its limit, and alerts under 3.",
    ),
    Schedule(
        name="customers: stale metrics alert",
        task="customers.metrics_freshness_alert",
        crontab="*/5 * * * *",
        expires_seconds=240,
        why="Raises an alert when the cached customer metrics are older than METRICS_STALE_AFTER_MINUTES "
        "(beat or the worker is down, or recomputes fail). A dead worker cannot run this: Prometheus "
        "alerts on opsconsole_metrics_age_seconds for that case.",
    ),
    Schedule(
        name="opsconsole: morning digest",
        task="opsconsole.morning_digest",
        # A check every five minutes, not a crontab at the hour: the hour is the founder's, edited in
        # admin (Morning digest settings) as data, and a run missed at the hour is caught up by the next.
        crontab="*/5 * * * *",
        expires_seconds=240,
        why="Sends the morning digest (north star, revenue at risk, the top five calls, overdue steps) to Slack "
        "and email once a day from the founder's hour in TIME_ZONE; off until switched on in admin. The day's "
        "row is claimed once, so two workers or a restart never send it twice; skipped with a note while the "
        "metrics are stale.",
    ),
    Schedule(
        name="events: raw-event retention",
        task="events.retention_prune",
        # Daily at a quiet hour; a no-op unless EVENTS_RETENTION_MONTHS is set.
        crontab="40 3 * * *",
        expires_seconds=6 * 3600,
        why="Deletes ops_events older than EVENTS_RETENTION_MONTHS (default 0: keep all), keeping the first "
        "and last event of each tenant/type and user so no metric changes (events/retention.py).",
    ),
]
