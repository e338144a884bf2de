"""What the customers app plugs into the north star's channels: Prometheus gauges (registered in
CustomersConfig.ready()), plain at-risk lines and the stale-metrics alert. The weekly check-in
(opsconsole/checkin.py) shows playbooks' at-risk lines, which add each customer's follow-up."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily, Metric

from core.notifications import condition_alert_update
from customers.failures import RecomputeFailure, recompute_failure_get
from customers.selectors import at_risk_counts_by_level, metrics_freshness, tenants_at_risk
from events.models import Event


def customers_metrics() -> Iterable[Metric]:
    """Gauges from the cache tables only (a scrape never reads ops_events)."""
    at_risk = GaugeMetricFamily(
        "opsconsole_customers_at_risk", "Customers at risk, by level (attention ranking).", labels=["level"]
    )
    for level, count in at_risk_counts_by_level().items():
        at_risk.add_metric([level], count)
    yield at_risk
    freshness = metrics_freshness()
    never = GaugeMetricFamily(
        "opsconsole_metrics_recompute_never_succeeded",
        "1 while no recompute of the customer metrics has ever finished on this install, else 0.",
    )
    never.add_metric([], 1.0 if freshness.computed_at is None else 0.0)
    yield never
    failure = recompute_failure_get()
    failing = GaugeMetricFamily(
        "opsconsole_metrics_recompute_failing_seconds",
        "Seconds since the recompute started failing (0 when its last run succeeded); Today names the error.",
    )
    failing.add_metric([], (freshness.now - failure.since).total_seconds() if failure else 0.0)
    yield failing
    age = GaugeMetricFamily(
        "opsconsole_metrics_age_seconds",
        "Seconds since the customer metrics were last recomputed (absent before the first run).",
    )
    if freshness.age_minutes is not None:
        age.add_metric([], freshness.age_minutes * 60)
    yield age


def at_risk_checkin_lines(now: datetime) -> list[str]:
    rows = tenants_at_risk(limit=5)
    if not rows:
        return ["No customer is at risk right now."]
    lines = []
    for row in rows:
        first = (row.interventions or [{}])[0]
        action = f" → [{first.get('priority')}] {first.get('suggested_action')}" if first else ""
        lines.append(
            f"{row.tenant_id}: {row.risk_level} ({row.risk_signal_strength:.0f}/100), {row.primary_risk_reason}{action}"
        )
    return lines


def recompute_failure_text(failure: RecomputeFailure) -> str:
    """The failing recompute in the founder's words: the task, its error, since when, where to look."""
    times = f"{failure.in_a_row} time{'s' if failure.in_a_row != 1 else ''} in a row"
    return (
        f"The recompute is failing: {failure.task} failed {times} since {failure.since:%Y-%m-%d %H:%M %Z} "
        f"(last at {failure.at:%H:%M}) with {failure.message}. The Celery worker's log has the traceback; "
        "`python manage.py recompute_metrics` shows it too."
    )


def metrics_freshness_alert_evaluate(*, now: datetime | None = None) -> str:
    """Raise (or clear) the stale-metrics alert; returns the level.

    Never computed is a warning too once the install is not new (a recompute has failed, or
    events have waited longer than the stale threshold): before, it stayed silent for good.
    """
    freshness = metrics_freshness(now=now)
    failure = recompute_failure_get()
    level = freshness.level
    if freshness.computed_at is None:
        waiting = Event.objects.filter(received_at__lt=freshness.now - freshness.stale_after).exists()
        level = "warning" if failure is not None or waiting else "unknown"
        detail = "The customer metrics have never been computed."
    else:
        detail = (
            f"Last recompute finished {freshness.age_minutes:.0f} minutes ago (stale after "
            f"{settings.METRICS_STALE_AFTER_MINUTES})."
        )
    if failure is not None:
        detail += " " + recompute_failure_text(failure)
    else:
        detail += (
            " No recompute has failed: check that Celery beat and a worker are running"
            " (`celery -A opsconsole inspect ping`)."
        )
    condition_alert_update(
        key="metrics:freshness", level=level, title="customer metrics are stale", detail=detail, now=now
    )
    return level
