"""The weekly check-in: a digest of the north star, DAU/MAU against targets, milestones, the
top at-risk customers with their follow-ups and infrastructure days to limit.

It reads several apps, so it is assembled here, at the top, from each app's own lines
(``SECTIONS``); each section reads cached tables only. A section that raises is reported as
unavailable and logged, and the rest of the digest still goes out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

from core.models import AlertNotification, NotificationKind
from core.notifications import notifications_create
from events.selectors import north_star_payload
from infra.integrations import infra_checkin_lines
from playbooks.integrations import at_risk_follow_up_checkin_lines

logger = logging.getLogger(__name__)

CheckinSection = Callable[[datetime], list[str]]

# The sections after the north star's, in order: (key, title, the lines for ``now``).
SECTIONS: list[tuple[str, str, CheckinSection]] = [
    ("at_risk_customers", "Top at-risk customers", at_risk_follow_up_checkin_lines),
    ("infra_days_to_limit", "Infrastructure days to limit", infra_checkin_lines),
]


def _days(value: float | None) -> str:
    return "∞ (none yet)" if value is None else f"{value:.2f}"


def weekly_checkin_compose(*, now: datetime | None = None) -> tuple[str, str]:
    """Subject and plain-text body of the digest."""
    now = now or timezone.now()
    payload = north_star_payload(now=now)
    local = timezone.localtime(now)
    subject = f"Weekly check-in {local:%Y-%m-%d}: north star {payload['status']}"
    lines = [
        subject,
        "",
        "North star: days since last real user interaction",
        f"  value: {_days(payload['value'])}{' days' if payload['value'] is not None else ''}"
        f"   status: {payload['status']}   target: 0",
        f"  last interaction: {payload['last_interaction'] or 'never'}   real users: {payload['total_users']}",
        "",
        "Active real users against targets",
    ]
    for label, key in (("DAU (24 h)", "daily_active_users"), ("MAU (30 d)", "monthly_active_users")):
        item = payload[key]
        lines.append(f"  {label}: {item['value']} / target {item['target']} ({item['status'].replace('_', ' ')})")
    lines += ["", "Current state (days since first / last)"]
    for row in payload["current_state"]:
        lines.append(f"  {row['metric']}: {_days(row['days_since_first'])} / {_days(row['days_since_last'])}")
    lines += ["", "Milestones"]
    for milestone in payload["milestones"]:
        reached = (
            f"reached {milestone['reached_at'][:10]}"
            if milestone["reached_at"]
            else ("reached" if milestone["reached"] else "not yet")
        )
        lines.append(f"  {milestone['name']} (target {milestone['target_date']}): {reached}")
    for key, title, section in SECTIONS:
        lines += ["", title]
        try:
            section_lines = section(now)
        except Exception:
            logger.exception("Weekly check-in section %r failed", key)
            lines.append("  unavailable this week (the section failed; see the logs)")
            continue
        lines += [f"  {line}" for line in section_lines] or ["  nothing to report"]
    return subject, "\n".join(lines)


def weekly_checkin_send(*, now: datetime | None = None) -> list[AlertNotification]:
    """Compose the digest and queue it on every configured channel, once per ISO week."""
    now = now or timezone.now()
    subject, body = weekly_checkin_compose(now=now)
    year, week, _ = timezone.localtime(now).isocalendar()
    return notifications_create(
        kind=NotificationKind.WEEKLY_CHECKIN, dedupe_key=f"weekly:{year}-W{week:02d}", subject=subject, body=body
    )
