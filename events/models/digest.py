"""The morning digest's settings and the record of each day's digest (opsconsole/digest.py composes it)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator
from django.db import models


class MorningDigestSettings(models.Model):
    """Singleton (pk=1): whether and when the founder gets the morning digest. Off until switched on."""

    enabled = models.BooleanField(
        default=False,
        help_text="Send the morning digest (north star, revenue at risk, the top five calls, overdue steps) "
        "to Slack (SLACK_WEBHOOK_URL) and email (ALERT_EMAILS).",
    )
    send_hour = models.PositiveSmallIntegerField(
        default=8,
        validators=[MaxValueValidator(23)],
        help_text="The hour (0-23, in the console's TIME_ZONE) from which the day's digest goes out; once a day.",
    )
    slack = models.BooleanField(default=True, help_text="Post it to the Slack webhook (when one is configured).")
    email = models.BooleanField(default=True, help_text="Email it to ALERT_EMAILS (when any are configured).")

    class Meta:
        verbose_name = "morning digest settings"
        verbose_name_plural = "morning digest settings"
        constraints = [models.CheckConstraint(condition=models.Q(send_hour__lte=23), name="morning_digest_hour_in_day")]

    def __str__(self) -> str:
        return f"{'on' if self.enabled else 'off'}, from {self.send_hour:02d}:00"


class DigestDayState(models.TextChoices):
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Skipped (see the note)"


class MorningDigestDay(models.Model):
    """One row per day (the console's TIME_ZONE) the digest was sent or skipped.

    The primary key is the day: the run that turns it into ``sent`` (a compare-and-set update, in the
    transaction that queues the messages) is the only one that sends, whatever the number of workers
    or restarts. A ``skipped`` day (stale metrics) may still be sent by a later run that day.
    """

    day = models.DateField(primary_key=True)
    state = models.CharField(max_length=8, choices=DigestDayState.choices)
    note = models.TextField(blank=True, help_text="Why it was skipped, or what was sent where.")
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-day"]
        verbose_name = "morning digest (day)"
        verbose_name_plural = "morning digests (days)"

    def __str__(self) -> str:
        return f"{self.day}: {self.state}"
