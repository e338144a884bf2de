"""The Infrastructure page: readings over time with the fitted line projected to the limit."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import SafeString

from core.charts import HLine, Marker, Series, line_chart
from core.pages import staff_required
from infra.projection import RUNWAY_IN_DAYS_MAX, ResourceProjection
from infra.selectors import InfraOverview, infra_overview

MB = 1024 * 1024
# How far past today the projection is drawn when the limit is further away (or unknown).
PROJECTION_HORIZON_DAYS = 60


def _projection_chart(
    overview: InfraOverview, projection: ResourceProjection, readings: list[tuple[datetime, int]]
) -> SafeString:
    series = [Series("Readings (MB)", [(at, size / MB) for at, size in readings])]
    markers = [Marker(overview.generated_at, "now")]
    hlines = []
    if projection.limit_bytes:
        hlines.append(HLine(projection.limit_bytes / MB, f"limit {projection.limit_bytes / MB:,.0f} MB"))
    rate = projection.growth_rate_bytes_per_day
    if rate is not None and projection.current_at is not None and projection.current_bytes is not None:
        # Every projection, fitted or estimated, is drawn to the limit, marked with the day it crosses,
        # while that is within a year; otherwise (or with no limit) 60 days ahead, and the limit line
        # is left out too, so the axes fit the readings rather than a line years away and far above.
        end = overview.generated_at + timedelta(days=PROJECTION_HORIZON_DAYS)
        crossing = projection.projected_limit_at
        if crossing is not None and crossing <= overview.generated_at + timedelta(days=RUNWAY_IN_DAYS_MAX):
            end = crossing
            markers.append(Marker(end, f"limit reached {end:%-d %b %Y}"))
        elif hlines:
            hlines.clear()
        if projection.fit is not None and readings:
            start = readings[0][0]
            line = [(start, projection.fit.value_at(start) / MB), (end, projection.fit.value_at(end) / MB)]
            label = "Fitted line, projected"
        else:
            start, at = projection.current_at, projection.current_bytes
            line = [(start, at / MB), (end, (at + rate * (end - start).total_seconds() / 86400) / MB)]
            label = "Estimated from the events, projected"
        series.append(Series(label, line, dashed=True))
    title = f"{projection.resource.replace('_', ' ')} over time"
    return line_chart(series, title=title, y_label="MB", markers=markers, hlines=hlines, y_min=None)


@staff_required
def infra_page(request: HttpRequest) -> HttpResponse:
    overview = infra_overview(series_days=30)
    db_readings = [(r.taken_at, r.db_size_bytes) for r in overview.series]
    redis_readings = [
        (r.taken_at, r.redis_used_memory_bytes) for r in overview.series if r.redis_used_memory_bytes is not None
    ]
    return render(
        request,
        "infra/infra.html",
        {
            "overview": overview,
            "resources": [
                (overview.db_storage, _projection_chart(overview, overview.db_storage, db_readings)),
                (overview.redis_memory, _projection_chart(overview, overview.redis_memory, redis_readings)),
            ],
        },
    )
