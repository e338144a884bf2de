"""Accounts' activity by week and month over all history, and the lifecycle stages read from it."""

from __future__ import annotations

from django.db import models

# --- Lifecycle and retention caches ----------------------------------------------------------
# Derived from ``ops_events`` like the rollups (customers/models/rollups.py), rebuilt by
# ``recompute_metrics --full``. Weeks and months are the founder's calendar: settings.TIME_ZONE,
# weeks starting on Monday (ISO). Only real events count (the engine's one predicate).


class ActivityPeriod(models.TextChoices):
    WEEK = "week", "Week (Monday start)"
    MONTH = "month", "Calendar month"


class TenantPeriodCount(models.Model):
    """Real events per tenant per week and per month, in TIME_ZONE, over all history.

    Kept for all history (never pruned, unlike the day rollups): a tenant's first active week and
    month, and every week and month it was active, are what lifecycle and cohort retention read.
    At most one row per tenant and week or month, so it stays small beside the events.
    """

    pk = models.CompositePrimaryKey("tenant_id", "period", "start_day")
    tenant_id = models.CharField(max_length=128)
    period = models.CharField(max_length=8, choices=ActivityPeriod.choices)
    start_day = models.DateField(help_text="The period's first day: a Monday, or the 1st of a month.")
    value = models.BigIntegerField()

    class Meta:
        db_table = "ops_rollup_tenant_period"

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.period} {self.start_day}: {self.value}"


class LifecycleStage(models.TextChoices):
    NEW = "new", "New"
    RETURNING = "returning", "Returning"
    RESURRECTING = "resurrecting", "Resurrecting"
    DORMANT = "dormant", "Dormant"


class TenantLifecycleWeek(models.Model):
    """An account's lifecycle stage in one week (customers/metrics/lifecycle.py says how).

    A week with no row: the account was neither active that week nor the week before.
    """

    pk = models.CompositePrimaryKey("tenant_id", "week")
    tenant_id = models.CharField(max_length=128)
    week = models.DateField(help_text="Monday of the week, in TIME_ZONE.")
    stage = models.CharField(max_length=16, choices=LifecycleStage.choices)
    counted = models.BooleanField(
        help_text="A customer account when written: the stage is in the weekly counts (what a rewrite takes off)."
    )

    class Meta:
        db_table = "ops_tenant_lifecycle"

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.week}: {self.stage}"


class LifecycleWeekCount(models.Model):
    """Customer accounts per week and stage: what the lifecycle chart and API read (one small
    table, so Today reads a few dozen rows whatever the number of tenants)."""

    pk = models.CompositePrimaryKey("week", "stage")
    week = models.DateField()
    stage = models.CharField(max_length=16, choices=LifecycleStage.choices)
    accounts = models.IntegerField()

    class Meta:
        db_table = "ops_lifecycle_count"

    def __str__(self) -> str:
        return f"{self.week} {self.stage}: {self.accounts}"
