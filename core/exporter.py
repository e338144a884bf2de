"""The Prometheus exporter behind ``GET /metrics``: the registry each app adds its gauges to.

Adding gauges from another app (no edit here)::

    # customers/apps.py
    class CustomersConfig(AppConfig):
        def ready(self) -> None:
            from core.exporter import metrics_provider_register
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

logger = logging.getLogger(__name__)

MetricsProvider = Callable[[], Iterable[Metric]]
_providers: dict[str, MetricsProvider] = {}


def metrics_provider_register(name: str, provider: MetricsProvider) -> None:
    """Add (or replace, by name) a provider of metric families for ``/metrics``."""
    _providers[name] = provider


def metrics_provider_unregister(name: str) -> None:
    _providers.pop(name, None)


class _ProvidersCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "opsconsole_metrics_provider_up", "1 if the provider's metrics were collected.", labels=["provider"]
        )
        for name, provider in sorted(_providers.items()):
            try:
                families = list(provider())
            except Exception:
                # A broken provider must not take the others (the north star's among them) down with it.
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
