"""Notifications every app sends: one ``AlertNotification`` per message and configured channel
(a Slack incoming webhook behind an HTTPS host allowlist, Django email), delivered with retries,
and watched conditions (infrastructure runway, stale metrics) announced once per level change.

Delivery is separate from creation (``alert_notification_deliver``): queued on commit, and
re-driven by the every-minute ``alert_notifications_retry_due`` sweep, so a delivery that failed,
or a task lost with a dying worker, is retried with exponential backoff until it is sent or
``ALERT_DELIVERY_MAX_ATTEMPTS`` is reached. Nothing here raises out of a task.
"""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from core.models import AlertNotification, ConditionAlertState, DeliveryState, NotificationChannel, NotificationKind
from core.tasks import task_queue
from core.webhooks import webhook_url_problem

logger = logging.getLogger(__name__)

# Delivery runs in the worker; the task keeps the name beat's rows and queued messages carry.
DELIVER_TASK = "events.tasks.alert_notification_deliver_task"
RETRY_CAP_SECONDS = 3600


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
            transaction.on_commit(partial(task_queue, DELIVER_TASK, notification.pk))
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
