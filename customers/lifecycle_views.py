"""Lifecycle and retention on the console: the weekly lifecycle chart (Today, Customers) and the
Retention page (``/retention/``). Same selectors as ``GET /ops/lifecycle`` and ``/ops/retention``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from core.charts import Series, Stack, line_chart, stacked_bar_chart
from core.pages import staff_required
from customers.metrics.lifecycle import LIFECYCLE_WEEKS_DEFAULT, STAGES, lifecycle_weeks
from customers.read_cache import cached_per_recompute
from customers.retention import RETENTION_MONTHS_DEFAULT, RetentionTable, retention_table

LIFECYCLE_CHART_WIDTH = 640
RETENTION_CHART_WIDTH = 640
# The retention chart's two curves: the share of accounts, and the same weighted by MRR.
RETENTION_CURVES = ("Accounts still active", "MRR of accounts still active")


def lifecycle_chart(*, weeks: int = LIFECYCLE_WEEKS_DEFAULT) -> SafeString:
    """The weekly stacked lifecycle chart (dormant below the line), drawn once per recompute and
    day and kept as text: a cached page costs no query for it, and one when it is drawn."""

    def draw() -> str:
        rows = lifecycle_weeks(weeks=weeks, now=timezone.now())
        return str(
            stacked_bar_chart(
                [(w.week, [float(getattr(w, s.stage.value)) for s in STAGES]) for w in rows],
                stacks=[Stack(s.label, s.color, below=s.stage == "dormant") for s in STAGES],
                title=f"Customer accounts by lifecycle stage, last {weeks} weeks (weeks start Monday, "
                f"{settings.TIME_ZONE})",
                y_label="accounts",
                width=LIFECYCLE_CHART_WIDTH,
            )
        )

    return mark_safe(cached_per_recompute(f"lifecycle_chart:{weeks}:{timezone.localdate().isoformat()}", draw))


def lifecycle_legend() -> list[dict[str, str]]:
    """Each stage's meaning, for the sentence under the chart."""
    return [{"label": s.label, "meaning": s.meaning, "color": s.color} for s in STAGES]


def _retention_chart(table: RetentionTable) -> str:
    longest = max((len(c.cells) for c in table.cohorts), default=0)
    series = []
    for label, weighted in zip(RETENTION_CURVES, (False, True), strict=True):
        points = []
        for since in range(longest):
            share = table.average_share(since, weighted=weighted)
            points.append((float(since), None if share is None else round(share * 100, 1)))
        series.append(Series(label, points, dashed=weighted))
    return str(
        line_chart(
            series,
            title="Share of each cohort still active, by months since its first real activity",
            y_label="% still active",
            width=RETENTION_CHART_WIDTH,
            height=240,
        )
    )


@staff_required
def retention_page(request: HttpRequest) -> HttpResponse:
    def build() -> dict[str, Any]:
        table = retention_table(months=RETENTION_MONTHS_DEFAULT, now=timezone.now())
        return {"table": table, "chart": _retention_chart(table)}

    built = cached_per_recompute(f"retention_page:{timezone.localdate().isoformat()}", build)
    table: RetentionTable = built["table"]
    return render(
        request,
        "customers/retention.html",
        {
            "table": table,
            "chart": mark_safe(built["chart"]),
            "months_since": range(max((len(c.cells) for c in table.cohorts), default=0)),
            "time_zone": settings.TIME_ZONE,
            "lifecycle_chart": lifecycle_chart(),
            "lifecycle_legend": lifecycle_legend(),
        },
    )
