"""GET /metrics, the provider hook, and the shipped Prometheus and Grafana files."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from core.exporter import metrics_provider_register, metrics_provider_unregister
from tests.conftest import skip_or_fail

T0 = datetime(2026, 2, 8, 12, 0, tzinfo=UTC)
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(client, moment: datetime, **headers: str) -> dict:
    with time_machine.travel(moment, tick=False):
        response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return samples(response.content.decode())


@pytest.mark.django_db
def test_it_exports_the_north_star_gauges(client, ingest):
    with time_machine.travel(T0, tick=False):
        ingest(
            {"event_id": str(uuid.uuid4()), "event_type": "LOGIN", "user_id": "u1"},
            {
                "event_id": str(uuid.uuid4()),
                "event_type": "SIGNUP",
                "user_id": "u2",
                "occurred_at": "2026-01-20T12:00:00+00:00",
            },
            {
                "event_id": str(uuid.uuid4()),
                "event_type": "LOGIN",
                "user_id": "bot",
                "metadata": {"user_agent": "curl/8"},
            },
        )
    got = scrape(client, T0 + timedelta(days=2))
    assert got[("opsconsole_days_since_last_real_user_interaction", ())] == 2.0
    assert got[("opsconsole_last_real_user_interaction_timestamp_seconds", ())] == T0.timestamp()
    assert got[("opsconsole_real_users", ())] == 2
    assert got[("opsconsole_daily_active_real_users", ())] == 0
    assert got[("opsconsole_monthly_active_real_users", ())] == 2
    assert got[("opsconsole_daily_active_real_users_target", ())] == 10
    assert got[("opsconsole_monthly_active_real_users_target", ())] == 50
    assert got[("opsconsole_north_star_status", (("status", "warning"),))] == 1
    assert got[("opsconsole_north_star_status", (("status", "active"),))] == 0
    assert got[("opsconsole_metrics_provider_up", (("provider", "north_star"),))] == 1


@pytest.mark.django_db
def test_it_leaves_the_days_gauge_out_while_there_are_no_real_users(client):
    got = scrape(client, T0)
    assert ("opsconsole_days_since_last_real_user_interaction", ()) not in got
    assert got[("opsconsole_real_users", ())] == 0
    assert got[("opsconsole_north_star_status", (("status", "no_users_yet"),))] == 1


@pytest.mark.django_db
def test_a_scrape_never_reads_the_event_table(client, ingest):
    ingest({"event_type": "LOGIN", "user_id": "u1"})
    with CaptureQueriesContext(connection) as queries:
        client.get("/metrics")
    assert queries.captured_queries
    assert not [q["sql"] for q in queries if "ops_events" in q["sql"]]


@pytest.mark.django_db
def test_it_requires_the_bearer_token_when_one_is_set(client, settings):
    settings.METRICS_BEARER_TOKEN = "s3cret-token"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200
    assert client.post("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 405


@pytest.mark.django_db
def test_another_app_can_add_gauges_and_a_broken_one_does_not_break_the_scrape(client):
    def at_risk() -> Iterable[Metric]:
        gauge = GaugeMetricFamily("opsconsole_customers_at_risk", "Customers at risk.", labels=["level"])
        gauge.add_metric(["high"], 3)
        gauge.add_metric(["medium"], 5)
        yield gauge

    def broken() -> Iterable[Metric]:
        raise RuntimeError("cache table missing")

    from core import exporter

    installed = dict(exporter._providers)
    metrics_provider_register("customers", at_risk)
    metrics_provider_register("infra", broken)
    try:
        got = scrape(client, T0)
    finally:
        metrics_provider_unregister("customers")
        metrics_provider_unregister("infra")
        exporter._providers.update(installed)  # the apps' real providers
    assert got[("opsconsole_customers_at_risk", (("level", "high"),))] == 3
    assert got[("opsconsole_customers_at_risk", (("level", "medium"),))] == 5
    assert got[("opsconsole_metrics_provider_up", (("provider", "customers"),))] == 1
    assert got[("opsconsole_metrics_provider_up", (("provider", "infra"),))] == 0
    assert got[("opsconsole_real_users", ())] == 0  # the north star is still there


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        skip_or_fail("promtool is not installed (Debian/Ubuntu: apt-get install prometheus)")
    return str(path)


def test_the_shipped_prometheus_rules_are_valid():
    result = subprocess.run(
        [_promtool(), "check", "rules", str(DEPLOY / "prometheus" / "rules.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout  # issue 17: the stale alert's never-succeeded rule


def test_the_shipped_rules_fire_as_the_spec_says():
    # Unit tests in deploy/prometheus/rules_test.yml: > 7 for 1h is critical, 1-7 warning.
    result = subprocess.run(
        [_promtool(), "test", "rules", "rules_test.yml"],
        capture_output=True,
        text=True,
        cwd=DEPLOY / "prometheus",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_shipped_prometheus_config_is_valid(tmp_path):
    # promtool checks that the token file it names exists: the copy names one the test writes,
    # as `python -m opsconsole.dotenv --production ... --metrics-token-file` does on a real box.
    token_path = "/etc/prometheus/opsconsole_metrics_token"
    shipped = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    assert f"credentials_file: {token_path}" in shipped
    (tmp_path / "opsconsole_metrics_token").write_text("t" * 43 + "\n")
    (tmp_path / "prometheus.yml").write_text(shipped.replace(token_path, str(tmp_path / "opsconsole_metrics_token")))
    shutil.copy(DEPLOY / "prometheus" / "rules.yml", tmp_path / "rules.yml")
    result = subprocess.run(
        [_promtool(), "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_use_only_metrics_the_console_exports():
    import yaml

    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert by_name["NoUserActivityThisWeek"]["expr"].strip() == "opsconsole_days_since_last_real_user_interaction > 7"
    assert by_name["NoUserActivityThisWeek"]["for"] == "1h"
    assert by_name["NoUserActivityThisWeek"]["labels"]["severity"] == "critical"
    assert by_name["RealUserActivityWarning"]["labels"]["severity"] == "warning"


def test_the_grafana_dashboard_has_the_spec_panel_and_the_other_gauges():
    dashboard = json.loads((DEPLOY / "grafana" / "dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    # Importable without editing: every panel uses the datasource variable the dashboard defines.
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"])
    star = next(p for p in panels if p["title"] == "Days Since Last Real User Interaction")
    assert star["type"] == "stat"
    assert star["targets"][0]["expr"] == "opsconsole_days_since_last_real_user_interaction"
    defaults = star["fieldConfig"]["defaults"]
    assert defaults["unit"] == "d"
    assert defaults["color"]["mode"] == "thresholds"
    assert defaults["thresholds"]["steps"] == [
        {"color": "green", "value": None},
        {"color": "yellow", "value": 1},
        {"color": "red", "value": 7},
    ]
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for gauge in (
        "opsconsole_real_users",
        "opsconsole_daily_active_real_users",
        "opsconsole_monthly_active_real_users",
        "opsconsole_customers_at_risk",
        "opsconsole_infra_days_to_limit",
    ):
        assert gauge in exprs
