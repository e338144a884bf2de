"""Known-answer tests of the growth fit and days to limit, on synthetic snapshot series.

Every expected number below is worked out by hand in the comment next to it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import override_settings

from infra.models import InfraLimitSettings
from infra.projection import EventVolume, least_squares_fit, resource_project
from infra.selectors import infra_alert_levels, infra_days_to_limit, infra_overview

GIB = 1024**3
MIB = 1024**2
T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def days_after(start: datetime, days: float) -> datetime:
    return start + timedelta(days=days)


def project(points: list[tuple[datetime, int]], limit: int | None = 20 * GIB, **kwargs: object):
    return resource_project(
        resource="db_storage", points=points, limit_bytes=limit, limit_source="settings", window_days=7, **kwargs
    )


def test_it_finds_the_exact_rate_and_days_of_a_linear_series():
    # 10 GiB growing 0.5 GiB/day, read every 6 hours for 4 days: 17 points, last = 12 GiB.
    points = [(days_after(T0, k / 4), round(10 * GIB + 0.5 * GIB * k / 4)) for k in range(17)]
    projection = project(points)
    assert projection.method == "least_squares"
    assert projection.points == 17
    assert projection.growth_rate_gb_per_day == pytest.approx(0.5, abs=1e-12)
    # Headroom 20 - 12 = 8 GiB at 0.5 GiB/day = 16 days: more than 14, so ok.
    assert projection.days_to_limit == pytest.approx(16.0, abs=1e-9)
    assert projection.days_to_limit_whole == 16
    assert projection.level == "ok"
    assert projection.current_bytes == 12 * GIB
    assert projection.projected_limit_at == days_after(T0, 4 + 16)
    # The fitted line goes through the first point and climbs 0.5 GiB/day.
    assert projection.fit is not None
    assert projection.fit.intercept_bytes == pytest.approx(10 * GIB, abs=1)
    assert projection.fit.value_at(days_after(T0, 20)) == pytest.approx(20 * GIB, abs=1)


def test_it_gives_no_days_to_limit_for_a_flat_series_and_says_so():
    points = [(days_after(T0, k), 10 * GIB) for k in range(5)]
    projection = project(points)
    assert projection.method == "least_squares"
    assert projection.growth_rate_bytes_per_day == 0
    assert projection.days_to_limit is None
    assert projection.days_to_limit_whole is None
    assert "Not growing" in projection.reason
    # A known limit and a flat line: nothing to warn about.
    assert projection.level == "ok"


def test_it_gives_no_days_to_limit_for_a_shrinking_series_and_says_so():
    # 12, 11.5, 11, 10.5, 10 GiB on days 0..4: slope -0.5 GiB/day.
    points = [(days_after(T0, k), round((12 - 0.5 * k) * GIB)) for k in range(5)]
    projection = project(points)
    assert projection.growth_rate_gb_per_day == pytest.approx(-0.5, abs=1e-12)
    assert projection.days_to_limit is None
    assert "Shrinking" in projection.reason
    assert projection.level == "ok"


def test_it_fits_a_noisy_series_by_least_squares():
    # Days 0..4, sizes 10, 12, 11, 15, 14 GiB. x mean 2, y mean 12.4;
    # Sxy = (-2)(-2.4) + (-1)(-0.4) + 0 + (1)(2.6) + (2)(1.6) = 11; Sxx = 4+1+0+1+4 = 10;
    # slope 1.1 GiB/day, intercept 12.4 - 1.1*2 = 10.2 GiB. Last reading 14 GiB:
    # headroom 6 GiB / 1.1 = 5.4545... days: whole 5, a warning (below 14, not below 3).
    sizes = [10, 12, 11, 15, 14]
    points = [(days_after(T0, k), size * GIB) for k, size in enumerate(sizes)]
    projection = project(points)
    assert projection.growth_rate_gb_per_day == pytest.approx(1.1, rel=1e-9)
    assert projection.fit.intercept_bytes == pytest.approx(10.2 * GIB, rel=1e-9)
    assert projection.days_to_limit == pytest.approx(6 / 1.1, rel=1e-9)
    assert projection.days_to_limit_whole == 5
    assert projection.level == "warning"


def test_it_falls_back_to_event_volume_with_too_few_points():
    # Two readings an hour apart: too few for a fit. 1,000 bytes per event x 86,400
    # events a day = 86,400,000 bytes/day; headroom 2 GiB - 1 GiB = 1,073,741,824 bytes;
    # 1,073,741,824 / 86,400,000 = 12.4276... days.
    points = [(T0, GIB - 1000), (T0 + timedelta(hours=1), GIB)]
    projection = project(points, limit=2 * GIB, event_volume=EventVolume(bytes_per_event=1000.0, events_per_day=86_400))
    assert projection.method == "event_volume"
    assert projection.points == 2
    assert projection.growth_rate_bytes_per_day == 86_400_000
    assert projection.days_to_limit == pytest.approx(1_073_741_824 / 86_400_000)
    assert projection.days_to_limit_whole == 12
    assert projection.fit is None
    # Issue 17: the fallback says it estimates from the events (by their own dates, not arrivals).
    assert "Too few readings" in projection.reason and "estimated from the events instead" in projection.reason


def test_it_says_too_few_points_when_nothing_else_can_project():
    points = [(T0, GIB), (T0 + timedelta(days=2), 2 * GIB)]
    projection = project(points)
    assert projection.method == "none"
    assert projection.growth_rate_bytes_per_day is None
    assert projection.days_to_limit is None
    assert projection.level == "unknown"
    assert "Too few readings for a trend: 2 readings over 48.0 hours" in projection.reason  # issue 17: units


def test_it_treats_points_within_less_than_a_day_as_too_few():
    points = [(T0 + timedelta(hours=h), GIB + h * MIB) for h in range(10)]
    assert project(points).method == "none"


def test_it_answers_zero_days_and_critical_when_already_over_the_limit():
    points = [(days_after(T0, k), (19 + k) * GIB) for k in range(3)]  # last 21 GiB, limit 20
    projection = project(points)
    assert projection.days_to_limit == 0
    assert projection.level == "critical"
    assert "over the limit" in projection.reason


def test_it_is_critical_below_three_days():
    # 1 GiB/day, last reading 18 GiB: 2 days to 20 GiB.
    points = [(days_after(T0, k), (16 + k) * GIB) for k in range(3)]
    projection = project(points)
    assert projection.days_to_limit == pytest.approx(2.0)
    assert projection.level == "critical"


def test_it_has_no_days_without_a_limit_and_says_so():
    points = [(days_after(T0, k), (10 + k) * GIB) for k in range(3)]
    projection = project(points, limit=None)
    assert projection.growth_rate_gb_per_day == pytest.approx(1.0)
    assert projection.days_to_limit is None
    assert projection.level == "unknown"
    assert "No limit is set" in projection.reason


def test_it_cannot_fit_a_line_through_one_instant():
    assert least_squares_fit([(T0, 1), (T0, 5)]) is None
    assert least_squares_fit([(T0, 1)]) is None


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
@override_settings(INFRA_DB_STORAGE_LIMIT_GB=20)
def test_it_projects_only_from_snapshots_in_the_trailing_window(make_snapshot):
    # Every 6 hours over the last 7 days (29 readings, the first exactly 7 days ago):
    # 10 GiB + 0.5 GiB/day, so the last is 13.5 GiB; headroom 6.5 GiB / 0.5 = 13 days: a warning.
    for k in range(29):
        make_snapshot(NOW - timedelta(days=7) + timedelta(hours=6 * k), round(10 * GIB + 0.5 * GIB * k / 4))
    # Outside the window: would wreck the slope if it were used.
    make_snapshot(NOW - timedelta(days=8), 50 * GIB)
    overview = infra_overview()
    assert overview.db_storage.points == 29
    assert overview.db_storage.method == "least_squares"
    assert overview.db_growth_rate_gb_per_day == pytest.approx(0.5)
    assert overview.db_storage_days_to_limit == 13
    assert overview.db_storage.limit_source == "settings"
    assert overview.db_storage.level == "warning"
    assert infra_days_to_limit()["db_storage"] == pytest.approx(13.0)
    assert infra_alert_levels()["db_storage"].level == "warning"


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
@override_settings(INFRA_DB_STORAGE_LIMIT_GB=None)
def test_it_projects_a_young_install_from_event_volume(make_snapshot):
    # One snapshot: ops_events is 5,000,000 bytes for 10,000 rows = 500 bytes per event;
    # 172,800 events in 24 h -> 86,400,000 bytes/day. Admin limit 1 GB: headroom
    # 1,073,741,824 - 73,741,824 = 1,000,000,000 bytes / 86,400,000 = 11.574 days.
    make_snapshot(
        NOW - timedelta(minutes=5),
        73_741_824,
        events_table_bytes=5_000_000,
        events_row_estimate=10_000,
        events_received_24h=172_800,
    )
    InfraLimitSettings(db_storage_limit_gb=1).save()
    overview = infra_overview()
    assert overview.db_storage.method == "event_volume"
    assert overview.db_storage.limit_source == "admin"
    assert overview.db_storage.growth_rate_bytes_per_day == pytest.approx(86_400_000)
    assert overview.db_storage.days_to_limit == pytest.approx(1_000_000_000 / 86_400_000)
    assert overview.db_storage_days_to_limit == 11
    # Event volume says nothing about Redis.
    assert overview.redis_memory.method == "none"


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
@override_settings(INFRA_REDIS_MEMORY_LIMIT_MB=None)
def test_it_uses_redis_maxmemory_as_the_limit_unless_one_is_set(make_snapshot):
    # Redis 100 -> 110 -> 120 MiB over days 0..2 (10 MiB/day); maxmemory 256 MiB:
    # headroom 136 MiB / 10 = 13.6 days.
    for k in range(3):
        make_snapshot(
            NOW - timedelta(days=2 - k),
            GIB,
            redis_used_memory_bytes=(100 + 10 * k) * MIB,
            redis_maxmemory_bytes=256 * MIB,
        )
    overview = infra_overview()
    assert overview.redis_memory.limit_source == "redis_maxmemory"
    assert overview.redis_memory.days_to_limit == pytest.approx(13.6)
    assert overview.redis_memory_days_to_limit == 13
    with override_settings(INFRA_REDIS_MEMORY_LIMIT_MB=150):
        # Settings win over maxmemory: headroom 30 MiB / 10 = 3 days (not below 3: a warning).
        overview = infra_overview()
        assert overview.redis_memory.limit_source == "settings"
        assert overview.redis_memory.days_to_limit == pytest.approx(3.0)
        assert overview.redis_memory.level == "warning"
        # And admin wins over settings: 125 MiB gives 5 MiB / 10 = 0.5 days.
        InfraLimitSettings(redis_memory_limit_mb=125).save()
        overview = infra_overview()
        assert overview.redis_memory.limit_source == "admin"
        assert overview.redis_memory.days_to_limit == pytest.approx(0.5)
        assert overview.redis_memory.level == "critical"


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_it_explains_missing_redis_readings(make_snapshot):
    make_snapshot(NOW - timedelta(hours=1), GIB, redis_reason="Redis at 127.0.0.1:1 did not answer: ConnectionError")
    overview = infra_overview()
    assert overview.redis_memory.points == 0
    assert overview.redis_memory.days_to_limit is None
    assert "127.0.0.1:1 did not answer" in overview.redis_memory.reason


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_it_keeps_the_last_snapshot_of_each_day_for_charts(make_snapshot):
    make_snapshot(datetime(2026, 3, 8, 1, 0, tzinfo=UTC), 1 * GIB)
    make_snapshot(datetime(2026, 3, 8, 23, 0, tzinfo=UTC), 2 * GIB)
    make_snapshot(datetime(2026, 3, 10, 3, 0, tzinfo=UTC), 3 * GIB, redis_used_memory_bytes=7)
    make_snapshot(datetime(2026, 3, 10, 11, 0, tzinfo=UTC), 4 * GIB, api_requests_24h=42)
    # Older than the 30 days asked for.
    make_snapshot(datetime(2026, 2, 1, 0, 0, tzinfo=UTC), 9 * GIB)
    series = infra_overview(series_days=30).series
    assert [(r.day.isoformat(), r.db_size_bytes, r.api_requests_24h) for r in series] == [
        ("2026-03-08", 2 * GIB, 0),
        ("2026-03-10", 4 * GIB, 42),
    ]
