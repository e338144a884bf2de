"""Days to a limit from measured readings: the fit, the estimate from event volume, and the words.

Pure functions over readings (selectors.py reads them and calls ``resource_project``).

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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from infra.models import InfraSnapshot
from infra.services import EVENT_DATES_WINDOW_DAYS

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
        """Whole days left (rounded down): the documented integer field."""
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


def _growth(
    ordered: list[tuple[datetime, int]],
    *,
    points: Sequence[tuple[datetime, int]],
    offsets: Sequence[float] | None,
    event_volume: EventVolume | None,
    window_days: int,
) -> tuple[LinearFit | None, str, float | None, str]:
    """How fast the resource grows: (the fit, the method, bytes per day, the words for how it was found)."""
    min_points = settings.INFRA_PROJECTION_MIN_POINTS
    span = ordered[-1][0] - ordered[0][0]
    if len(ordered) >= min_points and span >= timedelta(hours=settings.INFRA_PROJECTION_MIN_SPAN_HOURS):
        shifts = list(offsets) if offsets is not None and len(offsets) == len(points) else [0.0] * len(points)
        # ``points`` and ``offsets`` share an order; pair them before sorting by time.
        paired = sorted(zip(points, shifts, strict=True))
        imported = paired[-1][1]
        adjusted = least_squares_fit([(at, size - shift) for (at, size), shift in paired])
        if adjusted is not None:
            # Back in measured bytes: the line goes through the recent readings, with the growth's slope.
            fit = replace(adjusted, intercept_bytes=adjusted.intercept_bytes + imported)
            reading_word = "reading" if len(ordered) == 1 else "readings"
            basis = f"Least-squares line through {len(ordered)} {reading_word} over the last {window_days} days"
            if imported:
                basis += f" (history imports of {_fmt_bytes(imported)} taken out: a jump, not growth)"
            return fit, METHOD_LEAST_SQUARES, fit.slope_bytes_per_day, basis
    too_few = (
        f"Too few readings for a trend: {len(ordered)} reading{'s' if len(ordered) != 1 else ''} over "
        f"{_hours_text(span)} (a trend needs {min_points} over {settings.INFRA_PROJECTION_MIN_SPAN_HOURS:g} hours)"
    )
    if event_volume is None:
        return None, METHOD_NONE, None, too_few
    return (
        None,
        METHOD_EVENT_VOLUME,
        event_volume.growth_bytes_per_day,
        f"{too_few}; estimated from the events instead: {event_volume.bytes_per_event:,.0f} bytes per "
        f"event x {event_volume.events_per_day:,.0f} {event_volume.basis}",
    )


def _days_to_limit(
    current: float, *, limit_bytes: int | None, rate: float | None, basis: str
) -> tuple[float | None, str]:
    """Days until ``limit_bytes`` at ``rate`` bytes per day (None when it is never reached), and why."""
    if limit_bytes is None:
        return None, f"{basis}. No limit is set, so there are no days to a limit."
    if current >= limit_bytes:
        return 0.0, f"{basis}. Already at or over the limit ({_fmt_bytes(current)} of {_fmt_bytes(limit_bytes)})."
    if rate is None:
        return None, f"{basis}."
    if rate == 0:
        return None, f"{basis}. Not growing (flat), so the limit is never reached at this rate."
    if rate < 0:
        return None, f"{basis}. Shrinking ({_fmt_bytes(rate)} per day), so the limit is not being approached."
    days = (limit_bytes - current) / rate
    return days, (
        f"{basis}. {_fmt_bytes(limit_bytes - current)} of headroom at {_fmt_bytes(rate)} per day: {days:.1f} days."
    )


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
    fit, method, rate, basis = _growth(
        ordered, points=points, offsets=offsets, event_volume=event_volume, window_days=window_days
    )
    days, reason = _days_to_limit(current, limit_bytes=limit_bytes, rate=rate, basis=basis)
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
