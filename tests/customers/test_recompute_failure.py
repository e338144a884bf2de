"""A failing recompute is said plainly (issue 17): the task, its message and since when, on Today,
in the stale-metrics alert and in the Prometheus gauges; and "never computed" alerts too.

The failure is a real one raised by PostgreSQL inside the engine's transaction (a trigger on
ops_tenant_metrics that refuses every write, as an overflow from an admin value would), run
through the real Celery task.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection

from core.models import ConditionAlertState
from customers.failures import recompute_failure_get
from customers.integrations import customers_metrics, metrics_freshness_alert_evaluate
from customers.models import MetricsState
from customers.tasks import metrics_recompute_task
from tests.customers.conftest import NOW, Ev, days_ago

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def refusing_metrics(metrics_db: Any) -> Iterator[None]:
    metrics_db([Ev("acme", "INCIDENT_VIEWED", days_ago(1))])
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION test_refuse_metrics() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'numeric field overflow' USING ERRCODE = '22003'; END $$;
            CREATE TRIGGER test_refuse_metrics BEFORE INSERT OR UPDATE ON ops_tenant_metrics
            FOR EACH ROW EXECUTE FUNCTION test_refuse_metrics();
            """
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER IF EXISTS test_refuse_metrics ON ops_tenant_metrics;"
                " DROP FUNCTION IF EXISTS test_refuse_metrics();"
            )


def _gauges() -> dict[str, float]:
    return {m.name: m.samples[0].value for m in customers_metrics() if m.samples and not m.samples[0].labels}


def _unrefuse() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER test_refuse_metrics ON ops_tenant_metrics")


@pytest.mark.not_on_citus(
    "makes the write fail with a trigger on ops_tenant_metrics, and Citus refuses triggers on distributed tables"
)
def test_a_failing_recompute_is_named_on_today_in_the_alert_and_in_prometheus(
    refusing_metrics: None, staff_client: Any, settings: Any
) -> None:
    settings.ALERT_EMAILS = ["founder@example.com"]
    assert metrics_recompute_task.apply().failed()
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        assert metrics_recompute_task.apply().failed()
    failure = recompute_failure_get()
    assert failure is not None and failure.in_a_row == 2 and failure.since == NOW
    assert failure.task == "customers.metrics_recompute"
    assert failure.message.startswith("DataError: numeric field overflow")

    with time_machine.travel(NOW + timedelta(minutes=30), tick=False):
        cache.clear()
        body = staff_client.get("/").content.decode()
        assert "The recompute is failing:" in body and "<code>customers.metrics_recompute</code> failed 2 times" in body
        assert "numeric field overflow" in body and "is the Celery beat running" not in body
        # Never computed, and a run has failed: the stale alert fires and names the error.
        assert metrics_freshness_alert_evaluate() == "warning"
        detail = ConditionAlertState.objects.get(key="metrics:freshness").detail
        assert "The recompute is failing: customers.metrics_recompute failed 2 times" in detail
        assert "numeric field overflow" in detail
        gauges = _gauges()
        assert gauges["opsconsole_metrics_recompute_never_succeeded"] == 1.0
        assert gauges["opsconsole_metrics_recompute_failing_seconds"] == 30 * 60

    _unrefuse()
    with time_machine.travel(NOW + timedelta(minutes=31), tick=False):
        assert metrics_recompute_task.apply().successful()
        assert recompute_failure_get() is None
        assert MetricsState.objects.get().last_failure_message.startswith("DataError")  # history
        cache.clear()
        body = staff_client.get("/").content.decode()
        assert "The recompute is failing" not in body and "Customer metrics computed 0 minutes ago" in body
        gauges = _gauges()
        assert gauges["opsconsole_metrics_recompute_never_succeeded"] == 0.0
        assert gauges["opsconsole_metrics_recompute_failing_seconds"] == 0.0


def test_never_computed_stays_quiet_on_a_new_install_and_warns_once_events_wait(metrics_db: Any) -> None:
    assert metrics_freshness_alert_evaluate() == "unknown"  # nothing has arrived yet: a new install
    metrics_db([Ev("acme", "INCIDENT_VIEWED", days_ago(1))])
    assert metrics_freshness_alert_evaluate() == "unknown"  # events just arrived: a run is due soon
    with time_machine.travel(NOW + timedelta(minutes=20), tick=False):
        assert metrics_freshness_alert_evaluate() == "warning"
        assert "No recompute has failed" in ConditionAlertState.objects.get(key="metrics:freshness").detail
