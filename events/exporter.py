"""The Prometheus exporter behind ``GET /metrics``, and the hook other apps use to add gauges.

Adding gauges from another app (no edit here)::

    # customers/apps.py
    class CustomersConfig(AppConfig):
        def ready(self) -> None:
            from events.exporter import metrics_provider_register
            from customers.integrations import customers_metrics
            metrics_provider_register("customers", customers_metrics)

    # customers/integrations.py
    from prometheus_client.core import GaugeMetricFamily
    def customers_metrics() -> Iterable[Metric]:
        gauge = GaugeMetricFamily("opsconsole_customers_at_risk", "Customers at risk, by level.", labels=["level"])
        for level, count in ...cached table...:
            gauge.add_metric([level], count)
        yield gauge

Contract for a provider: it is called on every scrape, so it reads cached tables
only (never ``ops_events``); metric names start with ``opsconsole_``. A provider
that raises does not break the scrape: its metrics are left out and
``opsconsole_metrics_provider_up{provider="..."}`` is 0 (the error is logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from events.selectors import Status, north_star_targets, real_users_summary

logger = logging.getLogger(__name__)

MetricsProvider = Callable[[], Iterable[Metric]]
_providers: dict[str, MetricsProvider] = {}


def metrics_provider_register(name: str, provider: MetricsProvider) -> None:
    """Add (or replace, by name) a provider of metric families for ``/metrics``."""
    _providers[name] = provider


def metrics_provider_unregister(name: str) -> None:
    _providers.pop(name, None)


def north_star_metrics() -> Iterable[Metric]:
    """The north star's gauges, from one query over the real-user cache."""
    summary = real_users_summary()
    targets = north_star_targets()
    days = GaugeMetricFamily(
        "opsconsole_days_since_last_real_user_interaction",
        "Days since the last real user interaction (absent while there are no real users).",
    )
    if summary.days_since_last is not None:
        days.add_metric([], summary.days_since_last)
    yield days
    last = GaugeMetricFamily(
        "opsconsole_last_real_user_interaction_timestamp_seconds",
        "Unix time of the last real user interaction (absent while there are no real users).",
    )
    if summary.last_interaction_at is not None:
        last.add_metric([], summary.last_interaction_at.timestamp())
    yield last
    status = GaugeMetricFamily(
        "opsconsole_north_star_status",
        "1 for the current north-star status (no_users_yet, active, warning, critical), 0 for the others.",
        labels=["status"],
    )
    for name in (Status.NO_USERS_YET, Status.ACTIVE, Status.WARNING, Status.CRITICAL):
        status.add_metric([name], 1.0 if summary.status == name else 0.0)
    yield status
    yield GaugeMetricFamily("opsconsole_real_users", "Distinct real users ever.", value=summary.total_users)
    yield GaugeMetricFamily(
        "opsconsole_daily_active_real_users", "Distinct real users in the last 24 hours.", value=summary.dau
    )
    yield GaugeMetricFamily(
        "opsconsole_monthly_active_real_users", "Distinct real users in the last 30 days.", value=summary.mau
    )
    yield GaugeMetricFamily(
        "opsconsole_daily_active_real_users_target", "DAU target (editable in admin).", value=targets.dau_target
    )
    yield GaugeMetricFamily(
        "opsconsole_monthly_active_real_users_target", "MAU target (editable in admin).", value=targets.mau_target
    )


metrics_provider_register("north_star", north_star_metrics)


class _ProvidersCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "opsconsole_metrics_provider_up", "1 if the provider's metrics were collected.", labels=["provider"]
        )
        for name, provider in sorted(_providers.items()):
            try:
                families = list(provider())
            except Exception:
                # A broken provider must not take the north star down with it.
                logger.exception("Metrics provider %r failed; its metrics are left out of this scrape", name)
                up.add_metric([name], 0.0)
                continue
            up.add_metric([name], 1.0)
            yield from families
        yield up


def metrics_exposition() -> bytes:
    """The Prometheus text format for one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ProvidersCollector())
    return generate_latest(registry)
