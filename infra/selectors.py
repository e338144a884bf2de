"""Reads of the infra app: growth rates and days to limit, from measured snapshots.

The API (``GET /ops/infra``), the console pages and the Prometheus gauges all
call ``infra_overview()`` (or the two small functions built on it), so a number
can never differ between them.

Method, per resource:

* ``least_squares``: a straight line fitted by ordinary least squares to the
  snapshots in the trailing window (``INFRA_PROJECTION_WINDOW_DAYS``), when
  there are at least ``INFRA_PROJECTION_MIN_POINTS`` of them spanning at least
  ``INFRA_PROJECTION_MIN_SPAN_HOURS``. Growth rate = the slope.
* ``event_volume`` (database only): with too few snapshots, growth per day =
  bytes per stored event (events table size / rows) x events per day by their
  own dates (occurred_at, the 14 days before the reading), never by arrival: a
  history import is not growth. It ignores other tables: a first estimate.

History imports between readings (events that arrived more than a day after they
occurred, counted per reading) are taken out of the readings before the fit.
With no limit set, the embedded database's limit is its disk: size + free space.
* ``none``: nothing to project from; ``reason`` says why.

``days_to_limit`` = (limit - latest measured value) / growth per day. It is null
when there is no limit, no rate, or the resource is flat or shrinking; ``reason``
then says which. It is 0 when the value is already at or over the limit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from infra.models import ApiRequestCount, InfraLimitSettings, InfraSnapshot
from infra.services import EVENT_DATES_WINDOW_DAYS, hour_floor

GB = 1024**3
MB = 1024**2
SECONDS_PER_DAY = 86400.0

DB_STORAGE = "db_storage"
REDIS_MEMORY = "redis_memory"
RESOURCES = (DB_STORAGE, REDIS_MEMORY)

# Beyond this a runway reads "over a year": a count of days that far out is noise, not a plan.
RUNWAY_IN_DAYS_MAX = 365

METHOD_LEAST_SQUARES = "least_squares"
METHOD_EVENT_VOLUME = "event_volume"
METHOD_NONE = "none"

LEVEL_OK = "ok"
LEVEL_WARNING = "warning"
LEVEL_CRITICAL = "critical"
LEVEL_UNKNOWN = "unknown"


@dataclass(frozen=True)
class LinearFit:
    """``value(t) = intercept_bytes + slope_bytes_per_day * days(t - origin)``."""

    origin: datetime
    intercept_bytes: float
    slope_bytes_per_day: float
    points: int

    def value_at(self, at: datetime) -> float:
        return self.intercept_bytes + self.slope_bytes_per_day * (at - self.origin).total_seconds() / SECONDS_PER_DAY


def least_squares_fit(points: Sequence[tuple[datetime, float]]) -> LinearFit | None:
    """Ordinary least squares of bytes on days since the first point.

    None when fewer than two points or all points share one instant (the slope
    is undefined). Sums are taken about the means, which keeps the arithmetic
    exact enough for byte counts in the terabytes.
    """
    if len(points) < 2:
        return None
    origin = min(at for at, _ in points)
    xs = [(at - origin).total_seconds() / SECONDS_PER_DAY for at, _ in points]
    ys = [float(value) for _, value in points]
    n = len(points)
    x_mean = math.fsum(xs) / n
    y_mean = math.fsum(ys) / n
    sxx = math.fsum((x - x_mean) ** 2 for x in xs)
    if sxx == 0:
        return None
    sxy = math.fsum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    return LinearFit(origin=origin, intercept_bytes=y_mean - slope * x_mean, slope_bytes_per_day=slope, points=n)


@dataclass(frozen=True)
class EventVolume:
    """Bytes per stored event and events per day, from the latest snapshot.

    ``events_per_day`` is read from the events' own dates (occurred_at, the 14 days before the
    reading) so that a history import, 60 days of events arriving in one hour, does not read as
    60 days of growth per day. ``basis`` says which count it is (older readings only have the
    arrivals of the last 24 hours).
    """

    bytes_per_event: float
    events_per_day: float
    basis: str = "events per day by their own dates"

    @property
    def growth_bytes_per_day(self) -> float:
        return self.bytes_per_event * self.events_per_day


def event_volume_from(snapshot: InfraSnapshot | None) -> EventVolume | None:
    if snapshot is None or not snapshot.events_row_estimate:
        return None
    bytes_per_event = snapshot.events_table_bytes / snapshot.events_row_estimate
    if snapshot.events_occurred_14d is not None:
        return EventVolume(
            bytes_per_event=bytes_per_event,
            events_per_day=snapshot.events_occurred_14d / EVENT_DATES_WINDOW_DAYS,
            basis=f"events per day by their own dates over the {EVENT_DATES_WINDOW_DAYS} days before the reading",
        )
    return EventVolume(
        bytes_per_event=bytes_per_event,
        events_per_day=float(snapshot.events_received_24h),
        basis="events stored in the last 24 hours",
    )


def backfill_offsets(snapshots: Sequence[InfraSnapshot], *, bytes_per_event: float | None) -> list[float]:
    """Per reading (oldest first), the bytes history imports added since the first one: the
    jump to take out before fitting, so an import does not read as growth."""
    offsets, total = [], 0.0
    for index, snapshot in enumerate(snapshots):
        if index and bytes_per_event:
            total += snapshot.events_backfilled * bytes_per_event
        offsets.append(total)
    return offsets


@dataclass(frozen=True)
class ResourceProjection:
    """Where one resource stands and when it reaches its limit. Bytes and days."""

    resource: str
    current_bytes: int | None
    current_at: datetime | None
    limit_bytes: int | None
    limit_source: str  # "admin", "settings", "redis_maxmemory" or "" (no limit)
    points: int
    method: str
    growth_rate_bytes_per_day: float | None
    days_to_limit: float | None
    projected_limit_at: datetime | None
    level: str
    reason: str
    fit: LinearFit | None = None

    @property
    def days_to_limit_whole(self) -> int | None:
        """Whole days left (rounded down): the spec's integer field."""
        return None if self.days_to_limit is None else math.floor(self.days_to_limit)

    @property
    def runway_words(self) -> str | None:
        """The runway as pages say it: "1 day", "85 days", "over a year" (None: no projection)."""
        days = self.days_to_limit_whole
        if days is None:
            return None
        if days > RUNWAY_IN_DAYS_MAX:
            return "over a year"
        return f"{days:,} day{'' if days == 1 else 's'}"

    @property
    def growth_rate_gb_per_day(self) -> float | None:
        return None if self.growth_rate_bytes_per_day is None else self.growth_rate_bytes_per_day / GB


def alert_level(days_to_limit: float | None, *, growth_known: bool) -> str:
    """``critical`` below INFRA_CRITICAL_DAYS, ``warning`` below INFRA_WARNING_DAYS,
    ``ok`` when there is more room (or the resource is not growing), ``unknown``
    when there is no limit or no rate to judge by."""
    if days_to_limit is None:
        return LEVEL_OK if growth_known else LEVEL_UNKNOWN
    if days_to_limit < settings.INFRA_CRITICAL_DAYS:
        return LEVEL_CRITICAL
    if days_to_limit < settings.INFRA_WARNING_DAYS:
        return LEVEL_WARNING
    return LEVEL_OK


def _hours_text(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    if hours < 1:
        minutes = round(hours * 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{hours:.1f} hours"


def _fmt_bytes(value: float) -> str:
    return f"{value / GB:.3f} GB" if abs(value) >= GB else f"{value / MB:.1f} MB"


def resource_project(
    *,
    resource: str,
    points: Sequence[tuple[datetime, int]],
    limit_bytes: int | None,
    limit_source: str,
    event_volume: EventVolume | None = None,
    window_days: int | None = None,
    offsets: Sequence[float] | None = None,
) -> ResourceProjection:
    """Project one resource from its (taken_at, bytes) readings in the window.

    ``event_volume`` is the fallback when the readings are too few for a fit
    (only meaningful for the database). ``offsets`` (bytes per reading, in the
    readings' order) are history imports taken out before the fit (see
    backfill_offsets). Pure: no queries, so it is testable with known answers.
    """
    window_days = window_days or settings.INFRA_PROJECTION_WINDOW_DAYS
    min_points = settings.INFRA_PROJECTION_MIN_POINTS
    min_span = timedelta(hours=settings.INFRA_PROJECTION_MIN_SPAN_HOURS)
    ordered = sorted(points)
    base: dict[str, Any] = {
        "resource": resource,
        "limit_bytes": limit_bytes,
        "limit_source": limit_source,
        "points": len(ordered),
    }
    if not ordered:
        return ResourceProjection(
            **base,
            current_bytes=None,
            current_at=None,
            method=METHOD_NONE,
            growth_rate_bytes_per_day=None,
            days_to_limit=None,
            projected_limit_at=None,
            level=LEVEL_UNKNOWN,
            reason=f"No readings in the last {window_days} days: run `manage.py snapshot_infra` "
            "or wait for the hourly task.",
        )
    current_at, current = ordered[-1]
    span = ordered[-1][0] - ordered[0][0]
    fit: LinearFit | None = None
    imported = 0.0
    if len(ordered) >= min_points and span >= min_span:
        shifts = list(offsets) if offsets is not None and len(offsets) == len(points) else [0.0] * len(points)
        # ``points`` and ``offsets`` share an order; pair them before sorting by time.
        paired = sorted(zip(points, shifts, strict=True))
        imported = paired[-1][1]
        adjusted = least_squares_fit([(at, size - shift) for (at, size), shift in paired])
        # Back in measured bytes: the line goes through the recent readings, with the growth's slope.
        if adjusted is not None:
            fit = replace(adjusted, intercept_bytes=adjusted.intercept_bytes + imported)
    if fit is not None:
        method = METHOD_LEAST_SQUARES
        rate: float | None = fit.slope_bytes_per_day
        reading_word = "reading" if len(ordered) == 1 else "readings"
        basis = f"Least-squares line through {len(ordered)} {reading_word} over the last {window_days} days"
        if imported:
            basis += f" (history imports of {_fmt_bytes(imported)} taken out: a jump, not growth)"
    else:
        too_few = (
            f"Too few readings for a trend: {len(ordered)} reading{'s' if len(ordered) != 1 else ''} over "
            f"{_hours_text(span)} (a trend needs {min_points} over {settings.INFRA_PROJECTION_MIN_SPAN_HOURS:g} hours)"
        )
        if event_volume is not None:
            method = METHOD_EVENT_VOLUME
            rate = event_volume.growth_bytes_per_day
            basis = (
                f"{too_few}; estimated from the events instead: {event_volume.bytes_per_event:,.0f} bytes per "
                f"event x {event_volume.events_per_day:,.0f} {event_volume.basis}"
            )
        else:
            method = METHOD_NONE
            rate = None
            basis = too_few

    days: float | None = None
    if limit_bytes is None:
        reason = f"{basis}. No limit is set, so there are no days to a limit."
    elif current >= limit_bytes:
        days = 0.0
        reason = f"{basis}. Already at or over the limit ({_fmt_bytes(current)} of {_fmt_bytes(limit_bytes)})."
    elif rate is None:
        reason = f"{basis}."
    elif rate == 0:
        reason = f"{basis}. Not growing (flat), so the limit is never reached at this rate."
    elif rate < 0:
        reason = f"{basis}. Shrinking ({_fmt_bytes(rate)} per day), so the limit is not being approached."
    else:
        days = (limit_bytes - current) / rate
        reason = (
            f"{basis}. {_fmt_bytes(limit_bytes - current)} of headroom at {_fmt_bytes(rate)} per day: {days:.1f} days."
        )
    projected_at = current_at + timedelta(days=days) if days is not None and days < 36500 else None
    return ResourceProjection(
        **base,
        current_bytes=current,
        current_at=current_at,
        method=method,
        growth_rate_bytes_per_day=rate,
        days_to_limit=days,
        projected_limit_at=projected_at,
        level=alert_level(days, growth_known=rate is not None and limit_bytes is not None),
        reason=reason,
        fit=fit,
    )


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
            SELECT min(hour),
                   coalesce(sum(count) FILTER (WHERE hour >= %(last)s AND hour < %(end)s), 0),
                   coalesce(sum(count) FILTER (WHERE hour >= %(prior)s AND hour < %(last)s), 0)
            FROM {ApiRequestCount._meta.db_table}
            """,
            {"last": last_start, "end": end, "prior": prior_start},
        )
        counted_since, last_7d, prior_7d = cursor.fetchone()
    last_7d, prior_7d = int(last_7d), int(prior_7d)
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
        return [DailyReading(*row) for row in cursor.fetchall()]


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

    # The spec's InfraLimits fields.
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
