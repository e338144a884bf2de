"""The north star's settings and milestones, and the status its alerts last announced."""

from __future__ import annotations

from django.db import models


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
