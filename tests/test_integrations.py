"""The apps' contributions to the north star's channels: gauges, digest lines and
condition alerts (infrastructure runway, stale metrics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from core.models import AlertNotification
from core.notifications import condition_alert_update, open_conditions
from customers.integrations import metrics_freshness_alert_evaluate
from customers.models import MetricsState, Tenant, TenantMetrics
from infra.integrations import infra_alerts_evaluate
from opsconsole.checkin import weekly_checkin_compose
from tests.infra.growth import database_growth_record

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
GB = 1024**3


def _at_risk(tenant_id: str, level: str, strength: float) -> None:
    Tenant.objects.create(tenant_id=tenant_id)
    TenantMetrics.objects.create(
        tenant_id=tenant_id,
        risk_level=level,
        risk_signal_strength=strength,
        primary_risk_reason="engagement_decay",
        interventions=[{"priority": "immediate", "suggested_action": "Schedule 15-min call with customer"}],
        computed_at=NOW,
        as_of=NOW.date(),
    )


def _growing_database(*, limit_gb: float, start_gb: float, gb_per_day: float) -> None:
    database_growth_record(
        now=NOW, start_bytes=start_gb * GB, bytes_per_day=gb_per_day * GB, limit_gb=limit_gb, events_table_bytes=GB
    )


@time_machine.travel(NOW, tick=False)
def test_the_scrape_exports_at_risk_counts_by_level_and_infra_days_to_limit():
    _at_risk("acme", "critical", 80)
    _at_risk("globex", "critical", 70)
    _at_risk("initech", "medium", 25)
    # 9 GB growing 0.5 GB a day against 10 GB: (10 - 12.5) ... starts at 5.5 → 9.0 GB on day 7: 2 days left.
    _growing_database(limit_gb=10, start_gb=5.5, gb_per_day=0.5)
    body = Client().get("/metrics").content.decode()
    assert 'opsconsole_customers_at_risk{level="critical"} 2.0' in body
    assert 'opsconsole_customers_at_risk{level="high"} 0.0' in body
    assert 'opsconsole_customers_at_risk{level="medium"} 1.0' in body
    assert 'opsconsole_infra_days_to_limit{resource="db_storage"} 2.0' in body
    assert 'resource="redis_memory"' not in body  # no projection: left out, not a fake 0


@time_machine.travel(NOW, tick=False)
def test_a_condition_is_announced_once_per_change_and_on_recovery(settings):
    settings.ALERT_EMAILS = ["founder@example.com"]
    assert condition_alert_update(key="infra:db_storage", level="ok", title="t", detail="d") == []  # first ok: silent
    warned = condition_alert_update(key="infra:db_storage", level="warning", title="DB in 10 days", detail="d")
    assert [n.subject for n in warned] == ["WARNING: DB in 10 days"]
    assert condition_alert_update(key="infra:db_storage", level="warning", title="DB in 9 days", detail="d") == []
    critical = condition_alert_update(key="infra:db_storage", level="critical", title="DB in 2 days", detail="d")
    assert [(n.status_from, n.status_to) for n in critical] == [("warning", "critical")]
    assert [c.key for c in open_conditions()] == ["infra:db_storage"]
    recovered = condition_alert_update(key="infra:db_storage", level="ok", title="DB fine", detail="d")
    assert [n.subject for n in recovered] == ["RECOVERED: DB fine"]
    assert open_conditions() == []
    assert AlertNotification.objects.count() == 3


@time_machine.travel(NOW, tick=False)
def test_the_runway_alert_fires_below_three_days(settings):
    settings.ALERT_EMAILS = ["founder@example.com"]
    _growing_database(limit_gb=10, start_gb=5.5, gb_per_day=0.5)
    assert infra_alerts_evaluate()["db_storage"] == "critical"
    notification = AlertNotification.objects.get()
    assert notification.subject == "ALERT: Database storage reaches its limit in 2.0 days"


def test_stale_metrics_raise_a_warning_then_critical_and_clear_when_fresh(settings):
    settings.ALERT_EMAILS = ["founder@example.com"]
    MetricsState.objects.update_or_create(pk=1, defaults={"last_incremental_at": NOW})
    with time_machine.travel(NOW + timedelta(minutes=10), tick=False):
        assert metrics_freshness_alert_evaluate() == "ok"
    with time_machine.travel(NOW + timedelta(minutes=16), tick=False):
        assert metrics_freshness_alert_evaluate() == "warning"
    with time_machine.travel(NOW + timedelta(minutes=61), tick=False):
        assert metrics_freshness_alert_evaluate() == "critical"
    MetricsState.objects.filter(pk=1).update(last_incremental_at=NOW + timedelta(minutes=62))
    with time_machine.travel(NOW + timedelta(minutes=63), tick=False):
        assert metrics_freshness_alert_evaluate() == "ok"
    assert list(AlertNotification.objects.order_by("created_at").values_list("status_to", flat=True)) == [
        "warning",
        "critical",
        "ok",
    ]


@time_machine.travel(NOW, tick=False)
def test_the_weekly_digest_lists_the_top_at_risk_customers_and_the_runway():
    _at_risk("acme", "critical", 80)
    _growing_database(limit_gb=10, start_gb=5.5, gb_per_day=0.5)
    _, body = weekly_checkin_compose()
    # Issue 17: each line carries the customer's follow-up state (nobody called yet: its first step).
    assert "acme: critical (80/100), engagement_decay · To call: first: Schedule 15-min call with customer" in body
    assert "Database storage: 2 days to limit (critical)." in body
    assert "not available yet" not in body


@time_machine.travel(NOW, tick=False)
def test_the_weekly_digest_lists_a_critical_customer_before_a_stronger_high_one():
    _at_risk("acme", "high", 55)
    _at_risk("globex", "critical", 45)  # raised above its band by a matched playbook
    _at_risk("initech", "medium", 30)
    _, body = weekly_checkin_compose()
    lines = [line.split(":")[0].strip() for line in body.splitlines() if "/100)" in line]
    assert lines == ["globex", "acme", "initech"]
