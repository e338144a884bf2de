"""Reads of the infra app: growth rates and days to limit, from measured snapshots.

The API (``GET /ops/infra``), the console pages and the Prometheus gauges all
call ``infra_overview()`` (or the two small functions built on it), so a number
can never differ between them. How a projection is made: projection.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from core.rows import row_as_dict, rows_as_dicts
from infra.models import ApiRequestCount, InfraLimitSettings, InfraSnapshot
from infra.projection import (
    DB_STORAGE,
    GB,
    MB,
    REDIS_MEMORY,
    EventVolume,
    ResourceProjection,
    backfill_offsets,
    event_volume_from,
    resource_project,
)
from infra.services import hour_floor


@dataclass(frozen=True)
class ApiGrowth:
    """API requests in the last 7 whole days against the 7 before, from the request counter."""

    last_7d: int
    prior_7d: int | None
    growth_pct_per_week: float | None
    counted_since: datetime | None
    reason: str


def api_growth_get(*, now: datetime | None = None) -> ApiGrowth:
    """Week-over-week change of API requests, in percent.

    Weeks end at the start of the current hour (whole hours only). Null with a
    reason when counting started after the prior week began (a partial week
    would fake growth) or when the prior week had no requests.
    """
    end = hour_floor(now or timezone.now())
    last_start = end - timedelta(days=7)
    prior_start = end - timedelta(days=14)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT min(hour) AS counted_since,
                   coalesce(sum(count) FILTER (WHERE hour >= %(last)s AND hour < %(end)s), 0) AS last_7d,
                   coalesce(sum(count) FILTER (WHERE hour >= %(prior)s AND hour < %(last)s), 0) AS prior_7d
            FROM {ApiRequestCount._meta.db_table}
            """,
            {"last": last_start, "end": end, "prior": prior_start},
        )
        counts = row_as_dict(cursor)
    counted_since, last_7d, prior_7d = counts["counted_since"], int(counts["last_7d"]), int(counts["prior_7d"])
    if counted_since is None:
        return ApiGrowth(0, None, None, None, "No API requests have been counted yet.")
    if counted_since > prior_start:
        return ApiGrowth(
            last_7d,
            None,
            None,
            counted_since,
            f"API requests have been counted only since {counted_since:%Y-%m-%d %H:00} UTC; "
            "a full prior week is needed to compare.",
        )
    if prior_7d == 0:
        return ApiGrowth(last_7d, 0, None, counted_since, "No API requests in the prior week: growth from zero.")
    pct = (last_7d - prior_7d) / prior_7d * 100.0
    return ApiGrowth(
        last_7d, prior_7d, pct, counted_since, f"{last_7d} requests in the last 7 days against {prior_7d} before."
    )


@dataclass(frozen=True)
class DailyReading:
    """The last snapshot of one day (in TIME_ZONE), for charts."""

    day: date
    taken_at: datetime
    db_size_bytes: int
    events_table_bytes: int
    redis_used_memory_bytes: int | None
    redis_maxmemory_bytes: int | None
    events_received_24h: int
    api_requests_24h: int


def daily_series(*, days: int, now: datetime | None = None) -> list[DailyReading]:
    """One reading per day for the last ``days`` days: each day's last snapshot."""
    since = (now or timezone.now()) - timedelta(days=days)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT DISTINCT ON (day) (taken_at AT TIME ZONE %s)::date AS day, taken_at, db_size_bytes,
                   events_table_bytes, redis_used_memory_bytes, redis_maxmemory_bytes,
                   events_received_24h, api_requests_24h
            FROM {InfraSnapshot._meta.db_table}
            WHERE taken_at >= %s
            ORDER BY day, taken_at DESC
            """,
            [settings.TIME_ZONE, since],
        )
        return [DailyReading(**row) for row in rows_as_dicts(cursor)]


@dataclass(frozen=True)
class Limits:
    db_storage_bytes: int | None
    db_storage_source: str
    redis_memory_bytes: int | None
    redis_memory_source: str


def limits_get(
    *, redis_maxmemory_bytes: int | None, db_size_bytes: int | None = None, disk_free_bytes: int | None = None
) -> Limits:
    """Admin row, then settings; for the embedded database then the disk it lives on (its size
    plus the disk's free space, the day it stops); for Redis then Redis's own maxmemory."""
    row = InfraLimitSettings.objects.filter(pk=InfraLimitSettings.SINGLETON_PK).first()
    if row is not None and row.db_storage_limit_gb:
        db_limit, db_source = round(row.db_storage_limit_gb * GB), "admin"
    elif settings.INFRA_DB_STORAGE_LIMIT_GB:
        db_limit, db_source = round(settings.INFRA_DB_STORAGE_LIMIT_GB * GB), "settings"
    elif disk_free_bytes is not None and db_size_bytes is not None:
        db_limit, db_source = db_size_bytes + disk_free_bytes, "disk_free"
    else:
        db_limit, db_source = None, ""
    if row is not None and row.redis_memory_limit_mb:
        redis_limit, redis_source = round(row.redis_memory_limit_mb * MB), "admin"
    elif settings.INFRA_REDIS_MEMORY_LIMIT_MB:
        redis_limit, redis_source = round(settings.INFRA_REDIS_MEMORY_LIMIT_MB * MB), "settings"
    elif redis_maxmemory_bytes:
        redis_limit, redis_source = redis_maxmemory_bytes, "redis_maxmemory"
    else:
        redis_limit, redis_source = None, ""
    return Limits(db_limit, db_source, redis_limit, redis_source)


@dataclass(frozen=True)
class InfraOverview:
    generated_at: datetime
    window_days: int
    limits: Limits
    db_storage: ResourceProjection
    redis_memory: ResourceProjection
    api_requests: ApiGrowth
    event_volume: EventVolume | None
    latest_snapshot: InfraSnapshot | None
    series: list[DailyReading] = field(default_factory=list)

    # The documented InfraLimits fields.
    @property
    def db_storage_days_to_limit(self) -> int | None:
        return self.db_storage.days_to_limit_whole

    @property
    def redis_memory_days_to_limit(self) -> int | None:
        return self.redis_memory.days_to_limit_whole

    @property
    def db_growth_rate_gb_per_day(self) -> float | None:
        return self.db_storage.growth_rate_gb_per_day

    @property
    def api_growth_rate_pct_per_week(self) -> float | None:
        return self.api_requests.growth_pct_per_week

    @property
    def resources(self) -> dict[str, ResourceProjection]:
        return {DB_STORAGE: self.db_storage, REDIS_MEMORY: self.redis_memory}


def infra_overview(*, series_days: int = 30, now: datetime | None = None) -> InfraOverview:
    """Everything ``GET /ops/infra`` and the console show, in five queries."""
    now = now or timezone.now()
    window_days = settings.INFRA_PROJECTION_WINDOW_DAYS
    window = list(
        InfraSnapshot.objects.filter(taken_at__gte=now - timedelta(days=window_days), taken_at__lte=now).order_by(
            "taken_at"
        )
    )
    latest = window[-1] if window else InfraSnapshot.objects.filter(taken_at__lte=now).order_by("-taken_at").first()
    maxmemory = next((s.redis_maxmemory_bytes for s in reversed(window) if s.redis_used_memory_bytes is not None), None)
    limits = limits_get(
        redis_maxmemory_bytes=maxmemory,
        db_size_bytes=latest.db_size_bytes if latest else None,
        disk_free_bytes=latest.disk_free_bytes if latest else None,
    )
    volume = event_volume_from(latest)
    db_storage = resource_project(
        resource=DB_STORAGE,
        points=[(s.taken_at, s.db_size_bytes) for s in window],
        limit_bytes=limits.db_storage_bytes,
        limit_source=limits.db_storage_source,
        event_volume=volume,
        window_days=window_days,
        offsets=backfill_offsets(window, bytes_per_event=volume.bytes_per_event if volume else None),
    )
    redis_points = [(s.taken_at, s.redis_used_memory_bytes) for s in window if s.redis_used_memory_bytes is not None]
    redis_memory = resource_project(
        resource=REDIS_MEMORY,
        points=redis_points,
        limit_bytes=limits.redis_memory_bytes,
        limit_source=limits.redis_memory_source,
        window_days=window_days,
    )
    if window and window[-1].redis_reason:
        # Say why Redis has no (fresh) reading rather than only "no readings".
        redis_memory = replace(
            redis_memory,
            reason=f"Latest snapshot could not read Redis: {window[-1].redis_reason} {redis_memory.reason}",
        )
    return InfraOverview(
        generated_at=now,
        window_days=window_days,
        limits=limits,
        db_storage=db_storage,
        redis_memory=redis_memory,
        api_requests=api_growth_get(now=now),
        event_volume=volume,
        latest_snapshot=latest,
        series=daily_series(days=series_days, now=now),
    )


def infra_days_to_limit() -> dict[str, float | None]:
    """Days to limit per resource (``db_storage``, ``redis_memory``); None when
    unknown or not approaching. For the gauge ``opsconsole_infra_days_to_limit{resource=...}``."""
    overview = infra_overview(series_days=1)
    return {name: projection.days_to_limit for name, projection in overview.resources.items()}


@dataclass(frozen=True)
class InfraAlertLevel:
    resource: str
    level: str  # ok / warning / critical / unknown
    days_to_limit: float | None
    reason: str


def infra_alert_levels() -> dict[str, InfraAlertLevel]:
    """Per resource, its alert level for the alert channels: ``critical`` below
    INFRA_CRITICAL_DAYS (3) days to limit, ``warning`` below INFRA_WARNING_DAYS (14),
    with the reason to put in the message."""
    return {
        name: InfraAlertLevel(name, p.level, p.days_to_limit, p.reason)
        for name, p in infra_overview(series_days=1).resources.items()
    }
