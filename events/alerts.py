"""North-star alerts: status transitions, the daily critical reminder, and delivery.

Flow: the beat task ``north_star_alerts_evaluate_task`` calls ``north_star_alerts_evaluate``,
which compares the status with the last one seen (``AlertState``, locked FOR UPDATE
so two workers cannot both announce one transition) and writes one
``AlertNotification`` per configured channel. Delivery is separate
(``alert_notification_deliver``): queued on commit, and re-driven by the
every-minute ``alert_notifications_retry_due`` sweep, so a delivery that failed, or
a task lost with a dying worker, is retried with exponential backoff until it is
sent or ``ALERT_DELIVERY_MAX_ATTEMPTS`` is reached. Nothing here raises out of a task.
"""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from core.tasks import task_queue
from core.webhooks import webhook_url_problem
from events.models import (
    AlertNotification,
    AlertState,
    ConditionAlertState,
    DeliveryState,
    NotificationChannel,
    NotificationKind,
)
from events.selectors import RealUsersSummary, Status, real_users_summary

logger = logging.getLogger(__name__)

REMINDER_INTERVAL = timedelta(days=1)
# Delivery runs in the worker (events/tasks.py, which imports this module): queued by name.
DELIVER_TASK = "events.tasks.alert_notification_deliver_task"
RETRY_CAP_SECONDS = 3600

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


def _channels() -> list[tuple[str, str]]:
    """(channel, target) for each configured channel. The webhook's secret path is never stored."""
    channels: list[tuple[str, str]] = []
    if settings.SLACK_WEBHOOK_URL:
        channels.append((NotificationChannel.SLACK, urlparse(settings.SLACK_WEBHOOK_URL).hostname or ""))
    if settings.ALERT_EMAILS:
        channels.append((NotificationChannel.EMAIL, ",".join(settings.ALERT_EMAILS)))
    return channels


def notifications_create(
    *,
    kind: str,
    dedupe_key: str,
    subject: str,
    body: str,
    status_from: str = "",
    status_to: str = "",
    slack_blocks: list[dict[str, Any]] | None = None,
    channels: frozenset[str] | None = None,
) -> list[AlertNotification]:
    """One notification per configured channel (of ``channels``, when given); a dedupe key already
    used creates nothing. ``slack_blocks``: Block Kit blocks Slack shows, ``body`` their fallback
    text (and the email). Delivery is queued for when the transaction commits."""
    created: list[AlertNotification] = []
    for channel, target in _channels():
        if channels is not None and channel not in channels:
            continue
        notification, was_created = AlertNotification.objects.get_or_create(
            dedupe_key=f"{dedupe_key}:{channel}",
            defaults={
                "kind": kind,
                "channel": channel,
                "subject": subject[:200],
                "body": body,
                "target": target[:500],
                "status_from": status_from,
                "status_to": status_to,
                "slack_blocks": slack_blocks if channel == NotificationChannel.SLACK else None,
            },
        )
        if was_created:
            created.append(notification)
            transaction.on_commit(lambda pk=notification.pk: task_queue(DELIVER_TASK, pk))
    return created


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
                subject, body = alert_message(status=status, summary=summary)
                created = notifications_create(
                    kind=NotificationKind.TRANSITION,
                    dedupe_key=f"transition:{previous or 'none'}->{status}@{now.isoformat()}",
                    subject=subject,
                    body=body,
                    status_from=previous,
                    status_to=status,
                )
            state.status = status
            state.changed_at = now
            state.last_reminder_at = None
        elif status == Status.CRITICAL:
            since = state.last_reminder_at or state.changed_at or now
            if now - since >= REMINDER_INTERVAL:
                subject, body = alert_message(status=status, summary=summary, reminder=True)
                created = notifications_create(
                    kind=NotificationKind.REMINDER,
                    dedupe_key=f"reminder@{now.isoformat()}",
                    subject=subject,
                    body=body,
                    status_from=status,
                    status_to=status,
                )
                state.last_reminder_at = now
        state.evaluated_at = now
        state.save()
    return created


# --- Watched conditions (infrastructure runway, stale metrics) ---------------------------------------
CONDITION_SEVERITY = {"ok": 0, "unknown": 0, "warning": 1, "critical": 2}


def condition_alert_update(
    *, key: str, level: str, title: str, detail: str, now: datetime | None = None
) -> list[AlertNotification]:
    """Announce a change of a watched condition's level once (escalation and recovery).

    ``level`` is ``ok``, ``warning``, ``critical`` or ``unknown`` (no data: never
    announced by itself). The first evaluation of a healthy condition is silent.
    Idempotent: the row lock serialises concurrent evaluations and the dedupe key
    makes a retried run send nothing twice.
    """
    now = now or timezone.now()
    with transaction.atomic():
        state = ConditionAlertState.objects.select_for_update().filter(key=key).first()
        previous = state.level if state else ""
        created: list[AlertNotification] = []
        effective_previous = previous or "ok"
        if level != previous and level != "unknown" and not (level == "ok" and effective_previous in ("ok", "unknown")):
            word = {"ok": "RECOVERED", "warning": "WARNING", "critical": "ALERT"}[level]
            created = notifications_create(
                kind=NotificationKind.CONDITION,
                dedupe_key=f"condition:{key}:{effective_previous}->{level}@{now.isoformat()}",
                subject=f"{word}: {title}",
                body=f"{word}: {title}\n{detail}",
                status_from=effective_previous,
                status_to=level,
            )
        if state is None:
            ConditionAlertState.objects.create(
                key=key, level=level, changed_at=now, evaluated_at=now, detail=detail[:500]
            )
        else:
            if level != previous:
                state.level = level
                state.changed_at = now
            state.evaluated_at = now
            state.detail = detail[:500]
            state.save()
    return created


def open_conditions() -> list[ConditionAlertState]:
    """Watched conditions currently at warning or critical (the console's "open alerts")."""
    return list(ConditionAlertState.objects.filter(level__in=["warning", "critical"]).order_by("-changed_at"))


# --- Delivery ---------------------------------------------------------------------------------------
class TransientDeliveryError(Exception):
    """Worth retrying: timeouts, refused connections, 429 and 5xx answers, SMTP hiccups."""


class PermanentDeliveryError(Exception):
    """Retrying cannot help: a 4xx answer, a URL off the allowlist, nothing configured."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would let the receiver send us to a host the allowlist never approved.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def slack_webhook_post(*, url: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
    """POST ``{"text": ...}`` (with Block Kit ``blocks``, when given) to a Slack incoming webhook
    (or a compatible receiver)."""
    problem = webhook_url_problem(
        url, allowed=settings.ALERT_WEBHOOK_ALLOWED_HOSTS, insecure=settings.ALERT_WEBHOOK_INSECURE_HOSTS
    )
    if problem:
        raise PermanentDeliveryError(problem)
    request = urllib.request.Request(
        url,
        data=json.dumps({"text": text, **({"blocks": blocks} if blocks else {})}).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "ops-console-alerts"},
        method="POST",
    )
    try:
        with _opener.open(request, timeout=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS) as response:
            response.read(1024)
    except urllib.error.HTTPError as exc:
        detail = f"HTTP {exc.code} from {urlparse(url).hostname}"
        if exc.code == 429 or exc.code >= 500:
            raise TransientDeliveryError(detail) from exc
        raise PermanentDeliveryError(detail) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise TransientDeliveryError(f"{type(exc).__name__}: {exc}") from exc


def _send(notification: AlertNotification) -> None:
    if notification.channel == NotificationChannel.SLACK:
        if not settings.SLACK_WEBHOOK_URL:
            raise PermanentDeliveryError("SLACK_WEBHOOK_URL is no longer set.")
        slack_webhook_post(url=settings.SLACK_WEBHOOK_URL, text=notification.body, blocks=notification.slack_blocks)
        return
    recipients = [address for address in notification.target.split(",") if address]
    try:
        send_mail(notification.subject, notification.body, settings.DEFAULT_FROM_EMAIL, recipients)
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, TimeoutError, ConnectionError) as exc:
        raise TransientDeliveryError(f"{type(exc).__name__}: {exc}") from exc
    except smtplib.SMTPException as exc:
        raise PermanentDeliveryError(f"{type(exc).__name__}: {exc}") from exc


def retry_delay_seconds(attempts: int) -> int:
    """Backoff after the ``attempts``-th failure: base, 2 x base, 4 x base, ... capped at an hour."""
    return int(min(settings.ALERT_RETRY_BASE_SECONDS * 2 ** (attempts - 1), RETRY_CAP_SECONDS))


def alert_notification_deliver(*, notification_id: int, now: datetime | None = None) -> AlertNotification | None:
    """Try to deliver one notification if it is due. Idempotent: a sent or failed-for-good
    notification, or one another worker holds, is left alone. Never raises for a delivery
    problem; the result is recorded on the notification."""
    now = now or timezone.now()
    with transaction.atomic():
        notification = (
            AlertNotification.objects.select_for_update(skip_locked=True)
            .filter(pk=notification_id, state__in=[DeliveryState.PENDING, DeliveryState.RETRYING])
            .first()
        )
        if notification is None or (notification.next_attempt_at and notification.next_attempt_at > now):
            return notification
        notification.attempts += 1
        try:
            _send(notification)
        except TransientDeliveryError as exc:
            notification.last_error = str(exc)
            if notification.attempts >= settings.ALERT_DELIVERY_MAX_ATTEMPTS:
                notification.state = DeliveryState.FAILED
                notification.next_attempt_at = None
            else:
                notification.state = DeliveryState.RETRYING
                notification.next_attempt_at = now + timedelta(seconds=retry_delay_seconds(notification.attempts))
        except PermanentDeliveryError as exc:
            notification.last_error = str(exc)
            notification.state = DeliveryState.FAILED
            notification.next_attempt_at = None
        except Exception as exc:
            # Unknown failure: record it and stop retrying (only named transient errors are
            # retried), but never let it crash the task or the sweep.
            logger.exception("Delivering alert notification %s failed unexpectedly", notification.pk)
            notification.last_error = f"{type(exc).__name__}: {exc}"
            notification.state = DeliveryState.FAILED
            notification.next_attempt_at = None
        else:
            notification.state = DeliveryState.SENT
            notification.sent_at = now
            notification.last_error = ""
            notification.next_attempt_at = None
        notification.save()
    return notification


def alert_notifications_retry_due(*, now: datetime | None = None) -> int:
    """Deliver every pending notification and every retry whose backoff has passed.
    Returns how many were attempted."""
    now = now or timezone.now()
    due = list(
        AlertNotification.objects.filter(state__in=[DeliveryState.PENDING, DeliveryState.RETRYING])
        .exclude(next_attempt_at__gt=now)
        .order_by("created_at")
        .values_list("pk", flat=True)[:100]
    )
    for pk in due:
        alert_notification_deliver(notification_id=pk, now=now)
    return len(due)
