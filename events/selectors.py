"""Reads for the north star: "days since last real user interaction" and its company.

Every number here comes from the small real-user cache (``ops_real_users``, one
row per real user) or from top-1 probes of the partial index
``ops_events_real_type_time``; nothing scans the event table. The API, the
Prometheus exporter, the alerts and the weekly check-in all call these, so they
can never disagree.

Which events count: an event counts when it is real (``is_real``, see
events/classification.py), carries a ``user_id``, and its type has
``counts_as_real_interaction`` in the event type registry (seeded: SIGNUP, LOGIN,
CORE_ACTION, DECISION, EXPORT_COMPLETED, FEEDBACK; editable in admin, and an edit
rebuilds the cache).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from core.rows import row_as_dict, values_of
from events.models import Milestone, NorthStarRole, NorthStarSettings

METRIC_NAME = "days_since_last_real_user_interaction"
SECONDS_PER_DAY = 86400.0
DAU_WINDOW = timedelta(days=1)
MAU_WINDOW = timedelta(days=30)


class Status:
    NO_USERS_YET = "no_users_yet"
    ACTIVE = "active"
    WARNING = "warning"
    CRITICAL = "critical"


# The north star's "Current State" rows: each is a north-star role, and reads every registered
# type the founder gave that role (events.models.NorthStarRole), so "login" works as well as "LOGIN".
CURRENT_STATE_ROLES: tuple[str, ...] = (
    NorthStarRole.SIGNUP,
    NorthStarRole.LOGIN,
    NorthStarRole.CORE_ACTION,
    NorthStarRole.DECISION,
)

# The registered types of one role, in the order the page names them.
_ROLE_TYPES_SQL = "SELECT name FROM events_eventtype WHERE north_star_role = %(role)s ORDER BY created_at, name"
# First and last real event of one type: min and max become two top-1 probes of the partial index
# ops_events_real_type_time (the predicate repeats the index's condition so the planner can use
# it); on Citus each shard answers its own probes. One statement per type (a role has usually one).
_TYPE_SPAN_SQL = """
SELECT min(occurred_at) AS first_at, max(occurred_at) AS last_at FROM ops_events
WHERE event_type = %(name)s AND is_real AND NOT (user_id = '')
"""
# The real-user cache summed up (a scan of ops_real_users: one row per real user).
_REAL_USERS_SUMMARY_SQL = """
SELECT max(last_interaction_at) AS last_at, count(*) AS total,
       count(*) FILTER (WHERE last_interaction_at > %(day)s) AS dau,
       count(*) FILTER (WHERE last_interaction_at > %(month)s) AS mau
FROM ops_real_users
"""
# The first arrivals, oldest first (ops_real_users_first: a forward scan that stops at the limit).
_FIRST_ARRIVALS_SQL = "SELECT first_interaction_at FROM ops_real_users ORDER BY first_interaction_at LIMIT %s"


def north_star_status(days: float | None) -> str:
    """``active`` below 1 day, ``warning`` below 7, ``critical`` from 7; ``no_users_yet`` when null."""
    if days is None:
        return Status.NO_USERS_YET
    if days < 1:
        return Status.ACTIVE
    if days < 7:
        return Status.WARNING
    return Status.CRITICAL


def _days_between(earlier: datetime | None, now: datetime) -> float | None:
    if earlier is None:
        return None
    return (now - earlier).total_seconds() / SECONDS_PER_DAY


@dataclass(frozen=True)
class RealUsersSummary:
    now: datetime
    last_interaction_at: datetime | None
    total_users: int
    dau: int
    mau: int

    @property
    def days_since_last(self) -> float | None:
        """Float days; None when there has never been a real interaction. Never negative
        (an event may be up to a few minutes in the future)."""
        days = _days_between(self.last_interaction_at, self.now)
        return None if days is None else max(days, 0.0)

    @property
    def status(self) -> str:
        return north_star_status(self.days_since_last)


def real_users_summary(*, now: datetime | None = None) -> RealUsersSummary:
    """One query over the real-user cache. DAU and MAU are rolling windows (24 hours,
    30 days) of distinct real users."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_REAL_USERS_SUMMARY_SQL, {"day": now - DAU_WINDOW, "month": now - MAU_WINDOW})
        row = row_as_dict(cursor)
    return RealUsersSummary(
        now=now, last_interaction_at=row["last_at"], total_users=row["total"], dau=row["dau"], mau=row["mau"]
    )


def north_star_targets() -> NorthStarSettings:
    targets, _ = NorthStarSettings.objects.get_or_create(pk=1)
    return targets


def current_state(*, now: datetime | None = None) -> list[dict[str, Any]]:
    """Days since the first and the last real event of each "Current State" role.

    ``event_type`` names the registered types of the role (comma-separated; null when no
    type has it yet). One statement per registered type: see _TYPE_SPAN_SQL for the index it probes.
    """
    now = now or timezone.now()
    rows: list[dict[str, Any]] = []
    with connection.cursor() as cursor:
        for role in CURRENT_STATE_ROLES:
            cursor.execute(_ROLE_TYPES_SQL, {"role": str(role)})
            names = values_of(cursor, "name")
            firsts, lasts = [], []
            for name in names:
                cursor.execute(_TYPE_SPAN_SQL, {"name": name})
                span = row_as_dict(cursor)
                first, last = span["first_at"], span["last_at"]
                firsts += [first] if first else []
                lasts += [last] if last else []
            first_at, last_at = min(firsts, default=None), max(lasts, default=None)
            found = {"event_types": ", ".join(names) or None}
            rows.append(
                {
                    "metric": str(role),
                    "event_type": found["event_types"],
                    "days_since_first": _days_between(first_at, now),
                    "days_since_last": _days_between(last_at, now),
                    "first_at": _iso(first_at),
                    "last_at": _iso(last_at),
                    "status": north_star_status(_days_between(last_at, now)),
                }
            )
    return rows


def milestones_progress(*, summary: RealUsersSummary) -> list[dict[str, Any]]:
    """Each milestone with the instant it was reached: when the Nth distinct real user
    had their first real interaction (users=0 is reached from the start)."""
    milestones = list(Milestone.objects.all())
    needed = max((m.users for m in milestones), default=0)
    arrivals: list[datetime] = []
    if needed:
        with connection.cursor() as cursor:
            cursor.execute(_FIRST_ARRIVALS_SQL, [needed])
            arrivals = values_of(cursor, "first_interaction_at")
    days = summary.days_since_last
    result = []
    for milestone in milestones:
        reached_at = arrivals[milestone.users - 1] if 0 < milestone.users <= len(arrivals) else None
        reached = milestone.users == 0 or reached_at is not None
        result.append(
            {
                "name": milestone.name,
                "target_date": milestone.target_date.isoformat(),
                "users": milestone.users,
                "max_days": milestone.max_days,
                "reached": reached,
                "reached_at": _iso(reached_at),
                "on_time": None if reached_at is None else timezone.localdate(reached_at) <= milestone.target_date,
                "days_metric_met": (
                    None if milestone.max_days is None else (days is not None and days < milestone.max_days)
                ),
            }
        )
    return result


def _iso(value: datetime | None) -> str | None:
    return None if value is None else timezone.localtime(value).isoformat()


def _against_target(value: int, target: int) -> dict[str, Any]:
    return {"value": value, "target": target, "status": "on_target" if value >= target else "below_target"}


def north_star_payload(*, now: datetime | None = None) -> dict[str, Any]:
    """The body of ``GET /metrics/days-since-last-interaction``: exactly the documented six
    fields first, then the Current State table, DAU/MAU against targets and milestones."""
    now = now or timezone.now()
    summary = real_users_summary(now=now)
    targets = north_star_targets()
    return {
        "metric": METRIC_NAME,
        "value": summary.days_since_last,
        "status": summary.status,
        "target": 0,
        "last_interaction": _iso(summary.last_interaction_at),
        "total_users": summary.total_users,
        "current_state": current_state(now=now),
        "daily_active_users": _against_target(summary.dau, targets.dau_target),
        "monthly_active_users": _against_target(summary.mau, targets.mau_target),
        "milestones": milestones_progress(summary=summary),
        "as_of": _iso(now),
    }
