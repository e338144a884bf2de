"""The weekly check-in: a digest of the north star, DAU/MAU against targets,
milestones, the top at-risk customers and infrastructure days to limit.

The last two belong to other apps. They plug in without editing this file::

    # customers/apps.py, in ready():
    from customers.integrations import at_risk_checkin_lines
    from events.checkin import checkin_section_register
    checkin_section_register("at_risk_customers", "Top at-risk customers", at_risk_checkin_lines)

A section function takes ``now`` and returns the lines to print (plain text, one
item per line), reading cached tables only. Until a section is registered the
digest says so honestly ("not available yet"); a section that raises is reported
as unavailable and logged, and the rest of the digest still goes out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

from events.alerts import notifications_create
from events.models import AlertNotification, NotificationKind
from events.selectors import north_star_payload

logger = logging.getLogger(__name__)

CheckinSection = Callable[[datetime], list[str]]

# Sections the digest always shows, in order, whether or not an app has plugged them in yet.
EXPECTED_SECTIONS: dict[str, str] = {
    "at_risk_customers": "Top at-risk customers",
    "infra_days_to_limit": "Infrastructure days to limit",
}
_sections: dict[str, tuple[str, CheckinSection]] = {}


def checkin_section_register(key: str, title: str, section: CheckinSection) -> None:
    """Plug a section into the weekly check-in (replaces one with the same key)."""
    _sections[key] = (title, section)


def checkin_section_unregister(key: str) -> None:
    _sections.pop(key, None)


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
    keys = list(EXPECTED_SECTIONS) + [key for key in _sections if key not in EXPECTED_SECTIONS]
    for key in keys:
        title, section = _sections.get(key, (EXPECTED_SECTIONS.get(key, key), None))
        lines += ["", title]
        if section is None:
            lines.append("  not available yet (this part of the console is not installed)")
            continue
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
