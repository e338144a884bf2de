"""Notifications: one message to one channel (Slack or email) with its delivery result, and the
level last announced for each watched condition.

The tables keep the names they had in the events app (``events_alertnotification``,
``events_conditionalertstate``): the models moved, the rows did not.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class NotificationKind(models.TextChoices):
    TRANSITION = "transition", "Status change"
    REMINDER = "reminder", "Daily reminder while critical"
    WEEKLY_CHECKIN = "weekly_checkin", "Weekly check-in"
    CONDITION = "condition", "Condition (infrastructure, stale metrics)"
    MORNING_DIGEST = "morning_digest", "Morning digest"


class NotificationChannel(models.TextChoices):
    SLACK = "slack", "Slack incoming webhook"
    EMAIL = "email", "Email"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Failed, will retry"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed for good"


class AlertNotification(models.Model):
    """One message to one channel, with its delivery result. ``dedupe_key`` is
    unique, so an evaluation that runs twice (two workers, a retry) cannot send
    the same announcement twice."""

    created_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=NotificationKind.choices)
    channel = models.CharField(max_length=8, choices=NotificationChannel.choices)
    dedupe_key = models.CharField(max_length=200, unique=True)
    status_from = models.CharField(max_length=16, blank=True)
    status_to = models.CharField(max_length=16, blank=True)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    target = models.CharField(max_length=500, help_text="Webhook host or email addresses (never the secret path).")
    state = models.CharField(max_length=8, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    slack_blocks = models.JSONField(
        null=True,
        blank=True,
        help_text="Slack Block Kit blocks sent with the text (the text is the fallback and the email body).",
    )

    class Meta:
        db_table = "events_alertnotification"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="alert_notification_due")]

    def __str__(self) -> str:
        return f"{self.kind} {self.channel} {self.status_to} ({self.state})"


class ConditionAlertState(models.Model):
    """The level last announced for one watched condition (``infra:db_storage``,
    ``metrics:freshness``...), so each change is announced once."""

    key = models.CharField(primary_key=True, max_length=64)
    level = models.CharField(max_length=16)
    changed_at = models.DateTimeField()
    evaluated_at = models.DateTimeField()
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        db_table = "events_conditionalertstate"

    def __str__(self) -> str:
        return f"{self.key}: {self.level}"
