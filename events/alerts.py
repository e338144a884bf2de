"""North-star alerts: status transitions and the daily critical reminder (the rules; delivery is core's).

Flow: the beat task ``north_star_alerts_evaluate_task`` calls ``north_star_alerts_evaluate``,
which compares the status with the last one seen (``AlertState``, locked FOR UPDATE
so two workers cannot both announce one transition) and writes one
``AlertNotification`` per configured channel through ``core/notifications.py``, which
delivers and retries them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from core.models import AlertNotification, NotificationKind
from core.notifications import notifications_create
from events.models import AlertState
from events.selectors import RealUsersSummary, Status, real_users_summary

REMINDER_INTERVAL = timedelta(days=1)

# The north star's texts (docs/source): what it means, the action, the escalation.
MESSAGES: dict[str, tuple[str, str, str, str]] = {
    Status.CRITICAL: (
        "🚨 ALERT: Days since last user interaction = 7+",
        "No real users in 1 week",
        "Schedule launch sprint",
        "Review GTM strategy",
    ),
    Status.WARNING: (
        "🟡 WARNING: Days since last user interaction = 1-7",
        "Users signed up but not actively using",
        "Email retention campaign",
        "Analyze first-run experience",
    ),
    Status.ACTIVE: (
        "🟢 HEALTHY: Days since last user interaction < 1",
        "Real users engaging with the product",
        "Continue collecting feedback",
        "None, stay the course",
    ),
    Status.NO_USERS_YET: (
        "⚪ NO REAL USERS: no real user interaction on record",
        "Every interaction so far is internal, test, demo or automated traffic",
        "Schedule launch sprint",
        "Review GTM strategy",
    ),
}


def alert_message(*, status: str, summary: RealUsersSummary, reminder: bool = False) -> tuple[str, str]:
    """Subject and body for a status (Slack mrkdwn-friendly plain text)."""
    headline, meaning, action, escalation = MESSAGES[status]
    days = summary.days_since_last
    value = "no real users yet" if days is None else f"{days:.2f} days"
    last = (
        "never" if summary.last_interaction_at is None else timezone.localtime(summary.last_interaction_at).isoformat()
    )
    prefix = "Reminder (still critical): " if reminder else ""
    subject = f"{prefix}{headline}"
    body = (
        f"{subject}\n"
        f"Days since last real user interaction: {value} (last: {last}; real users: {summary.total_users})\n"
        f"→ {meaning}\n"
        f"→ Action: {action}\n"
        f"→ Escalation: {escalation}"
    )
    return subject, body


def _announce(summary: RealUsersSummary, *, status_from: str, now: datetime, reminder: bool) -> list[AlertNotification]:
    """One notification per channel saying the summary's status: a change from ``status_from``, or
    the daily reminder while it stays critical. The dedupe key makes a second evaluation a no-op."""
    status = summary.status
    subject, body = alert_message(status=status, summary=summary, reminder=reminder)
    return notifications_create(
        kind=NotificationKind.REMINDER if reminder else NotificationKind.TRANSITION,
        dedupe_key=(
            f"reminder@{now.isoformat()}"
            if reminder
            else f"transition:{status_from or 'none'}->{status}@{now.isoformat()}"
        ),
        subject=subject,
        body=body,
        status_from=status_from,
        status_to=status,
    )


def north_star_alerts_evaluate(*, now: datetime | None = None) -> list[AlertNotification]:
    """Announce a status change once, and remind daily while critical. Idempotent.

    The first evaluation ever records the status silently when it is healthy or
    there are no users yet (nothing to act on), and announces warning or critical.
    """
    now = now or timezone.now()
    with transaction.atomic():
        AlertState.objects.get_or_create(pk=1)
        state = AlertState.objects.select_for_update().get(pk=1)
        summary = real_users_summary(now=now)
        status = summary.status
        previous = state.status
        created: list[AlertNotification] = []
        if status != previous:
            baseline_only = previous == "" and status in (Status.NO_USERS_YET, Status.ACTIVE)
            if not baseline_only:
                created = _announce(summary, status_from=previous, now=now, reminder=False)
            state.status = status
            state.changed_at = now
            state.last_reminder_at = None
        elif status == Status.CRITICAL:
            since = state.last_reminder_at or state.changed_at or now
            if now - since >= REMINDER_INTERVAL:
                created = _announce(summary, status_from=status, now=now, reminder=True)
                state.last_reminder_at = now
        state.evaluated_at = now
        state.save()
    return created
