"""Measured infrastructure readings and the limits they are projected against.

``InfraSnapshot`` rows are readings, not estimates: each one is what
PostgreSQL and Redis reported at ``taken_at``. Projections (``infra.selectors``)
fit a line through them; nothing here is derived or cached.
"""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone


class InfraSnapshot(models.Model):
    """One reading of the database, Redis and traffic, taken by ``snapshot_infra``.

    Sizes are bytes. A Redis field is null when Redis was not configured or did
    not answer; ``redis_reason`` then says which. ``redis_maxmemory_bytes`` is
    also null when Redis answered but has no ``maxmemory`` (no limit).
    """

    taken_at = models.DateTimeField(default=timezone.now, db_index=True)
    db_size_bytes = models.BigIntegerField(help_text="pg_database_size(current_database()).")
    events_table_bytes = models.BigIntegerField(
        help_text="pg_total_relation_size('ops_events'): heap, indexes and TOAST."
    )
    events_row_estimate = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Rows in ops_events as estimated by PostgreSQL's statistics (for bytes per event).",
    )
    redis_used_memory_bytes = models.BigIntegerField(null=True, blank=True, help_text="Redis INFO used_memory.")
    redis_maxmemory_bytes = models.BigIntegerField(
        null=True, blank=True, help_text="Redis INFO maxmemory; null when Redis has no limit or was not read."
    )
    redis_reason = models.CharField(
        max_length=255, blank=True, help_text="Why the Redis fields are empty (not configured, unreachable)."
    )
    events_received_24h = models.BigIntegerField(help_text="Events stored in the 24 hours before taken_at.")
    api_requests_24h = models.BigIntegerField(
        help_text="API requests counted by the request counter in the 24 whole hours before taken_at's hour."
    )
    events_occurred_14d = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Events whose own date (occurred_at) falls in the 14 days before taken_at: the event rate by "
        "event dates, which a history import does not inflate (null on readings taken before it was kept).",
    )
    events_backfilled = models.BigIntegerField(
        default=0,
        help_text="Events stored since the previous reading that had occurred more than a day before they "
        "arrived (a history import or backfill): their bytes are a jump, not growth.",
    )
    disk_free_bytes = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Free space of the disk the embedded database lives on (null for a database server elsewhere).",
    )

    class Meta:
        ordering = ["-taken_at"]
        verbose_name = "infrastructure snapshot"

    def __str__(self) -> str:
        return f"Snapshot {self.taken_at:%Y-%m-%d %H:%M}"


class ApiRequestCount(models.Model):
    """API requests per hour, summed over every web worker.

    Each worker counts in memory and adds its count here every few seconds with
    one ``INSERT ... ON CONFLICT DO UPDATE SET count = count + n``; additions
    commute, so any number of workers give the right total (see
    ``infra.services.request_counter_flush``).
    """

    hour = models.DateTimeField(unique=True, help_text="Start of the hour (UTC).")
    count = models.BigIntegerField(default=0)

    class Meta:
        db_table = "infra_api_request_count"
        ordering = ["-hour"]
        verbose_name = "API request count (hourly)"
        verbose_name_plural = "API request counts (hourly)"

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} {self.count}"


class InfraLimitSettings(models.Model):
    """The limits days-to-limit is computed against; one row, edited in admin.

    An empty field falls back to settings (``INFRA_DB_STORAGE_LIMIT_GB``,
    ``INFRA_REDIS_MEMORY_LIMIT_MB``) and, for Redis, then to Redis's own
    ``maxmemory``. Units are binary, as PostgreSQL's ``pg_size_pretty`` and
    Redis's ``maxmemory 100mb`` use them: 1 GB = 1024³ bytes, 1 MB = 1024² bytes.
    """

    SINGLETON_PK = 1

    db_storage_limit_gb = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.001)],
        help_text="Database storage limit in GB (1024³ bytes). Empty: INFRA_DB_STORAGE_LIMIT_GB.",
    )
    redis_memory_limit_mb = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.001)],
        help_text="Redis memory limit in MB (1024² bytes). Empty: INFRA_REDIS_MEMORY_LIMIT_MB, then Redis maxmemory.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "infrastructure limits"
        verbose_name_plural = "infrastructure limits"

    def __str__(self) -> str:
        return "Infrastructure limits"

    def save(self, *args: object, **kwargs: object) -> None:
        # One row only: whatever was edited becomes the singleton.
        self.pk = self.SINGLETON_PK
        super().save(*args, **kwargs)  # type: ignore[arg-type]
