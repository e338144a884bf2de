"""The north star's settings and milestones, and the alert states and notifications it raises."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class NorthStarSettings(models.Model):
    """Singleton (pk=1): the targets the founder sets, editable in admin."""

    dau_target = models.PositiveIntegerField(default=10, help_text="Daily active real users to aim for.")
    mau_target = models.PositiveIntegerField(default=50, help_text="Monthly (30-day) active real users to aim for.")

    class Meta:
        verbose_name = "north-star targets"
        verbose_name_plural = "north-star targets"

    def __str__(self) -> str:
        return f"DAU target {self.dau_target}, MAU target {self.mau_target}"


class Milestone(models.Model):
    """A dated goal: reached on the day the number of distinct real users first hit ``users``."""

    name = models.CharField(max_length=120)
    target_date = models.DateField()
    users = models.PositiveIntegerField(help_text="Distinct real users needed.")
    max_days = models.FloatField(
        null=True, blank=True, help_text="The days-since metric should be below this (empty: no limit)."
    )
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "target_date"]

    def __str__(self) -> str:
        return self.name


# --- Alerts ----------------------------------------------------------------------------------------


class AlertState(models.Model):
    """Singleton (pk=1): the north-star status the last evaluation saw, so a
    transition is announced once and a critical reminder at most once a day."""

    status = models.CharField(max_length=16, blank=True)
    changed_at = models.DateTimeField(null=True, blank=True)
    last_reminder_at = models.DateTimeField(null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.status or 'never evaluated'} since {self.changed_at}"


class ConditionAlertState(models.Model):
    """The level last announced for one watched condition (``infra:db_storage``,
    ``metrics:freshness``...), so each change is announced once."""

    key = models.CharField(primary_key=True, max_length=64)
    level = models.CharField(max_length=16)
    changed_at = models.DateTimeField()
    evaluated_at = models.DateTimeField()
    detail = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.level}"


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
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="alert_notification_due")]

    def __str__(self) -> str:
        return f"{self.kind} {self.channel} {self.status_to} ({self.state})"
