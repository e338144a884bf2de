"""What the customers app plugs into the north star's channels: Prometheus gauges,
weekly check-in lines and the stale-metrics alert. Registered in CustomersConfig.ready()."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily, Metric

from customers.selectors import at_risk_counts_by_level, metrics_freshness, tenants_at_risk
from events.alerts import condition_alert_update


def customers_metrics() -> Iterable[Metric]:
    """Gauges from the cache tables only (a scrape never reads ops_events)."""
    at_risk = GaugeMetricFamily(
        "opsconsole_customers_at_risk", "Customers at risk, by level (attention ranking).", labels=["level"]
    )
    for level, count in at_risk_counts_by_level().items():
        at_risk.add_metric([level], count)
    yield at_risk
    freshness = metrics_freshness()
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


def metrics_freshness_alert_evaluate(*, now: datetime | None = None) -> str:
    """Raise (or clear) the stale-metrics alert; returns the level."""
    freshness = metrics_freshness(now=now)
    if freshness.computed_at is None:
        detail = "The customer metrics have never been computed: is the Celery worker and beat running?"
    else:
        detail = (
            f"Last recompute finished {freshness.age_minutes:.0f} minutes ago (stale after "
            f"{settings.METRICS_STALE_AFTER_MINUTES}). Check that Celery beat and a worker are running "
            "(`celery -A opsconsole inspect ping`) and the worker log for failed recomputes."
        )
    condition_alert_update(
        key="metrics:freshness", level=freshness.level, title="customer metrics are stale", detail=detail, now=now
    )
    return freshness.level
