"""What the infra app plugs into the north star's channels: days-to-limit gauges (registered in
InfraConfig.ready()), the weekly check-in's lines (opsconsole/checkin.py) and the runway alerts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric

LABELS = {"db_storage": "Database storage", "redis_memory": "Redis memory"}


def infra_metrics() -> Iterable[Metric]:
    """Days to limit per resource; a resource without a projection is left out (not 0, not NaN)."""
    from infra.selectors import infra_days_to_limit

    gauge = GaugeMetricFamily(
        "opsconsole_infra_days_to_limit", "Days until the resource reaches its limit, by resource.", labels=["resource"]
    )
    for resource, days in infra_days_to_limit().items():
        if days is not None:
            gauge.add_metric([resource], days)
    yield gauge


def infra_checkin_lines(now: datetime) -> list[str]:
    from infra.selectors import infra_alert_levels

    lines = []
    for resource, level in infra_alert_levels().items():
        days = "no projection" if level.days_to_limit is None else f"{level.days_to_limit:.0f} days to limit"
        lines.append(f"{LABELS.get(resource, resource)}: {days} ({level.level}). {level.reason}")
    return lines


def infra_alerts_evaluate(*, now: datetime | None = None) -> dict[str, str]:
    """Warning below 14 days to limit, critical below 3, announced once per change."""
    from core.notifications import condition_alert_update
    from infra.selectors import infra_alert_levels

    levels = {}
    for resource, level in infra_alert_levels().items():
        name = LABELS.get(resource, resource)
        days = "unknown" if level.days_to_limit is None else f"{level.days_to_limit:.1f}"
        condition_alert_update(
            key=f"infra:{resource}",
            level=level.level,
            title=f"{name} reaches its limit in {days} days",
            detail=f"{level.reason} Action: raise the limit or free space before it fills (see /infra/).",
            now=now,
        )
        levels[resource] = level.level
    return levels
