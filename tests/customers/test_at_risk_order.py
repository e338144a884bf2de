"""The at-risk order: critical, then high, then medium; within a level the strongest signal first.

A matched playbook can raise a tenant's level above its strength's band, so strength alone
would call a merely high customer before a critical one. Every list of tenants at risk uses
customers.models.at_risk_order(), and PostgreSQL reads it from an index, without a sort.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from customers.metrics.recompute import metrics_recompute
from customers.selectors import customers_list, tenants_at_risk
from playbooks.models import Playbook
from tests.customers.conftest import RANKED_AT_RISK, RANKED_TENANTS, Ev, days_ago, events_store, metrics_rows_store

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_tenant_a_playbook_raised_to_critical_is_called_before_a_stronger_high_one(
    transactional_db: Any, frozen_now: datetime, read_client: Any
) -> None:
    """Through the real post-recompute hook: "blocked" scores 15 (not at risk) and a critical
    playbook raises it to critical; "decay" scores 54.3 (high, as computed by hand in
    test_customers_api.py) and matches no enabled playbook."""
    Playbook.objects.exclude(pk="policy_friction").update(enabled=False)
    Playbook.objects.filter(pk="policy_friction").update(risk_level="critical")
    events = [Ev("decay", "EXPORT_COMPLETED", days_ago(d)) for d in range(7, 30) for _ in range(2)]
    events += [Ev("decay", "EXPORT_COMPLETED", days_ago(2)), Ev("decay", "INCIDENT_VIEWED", days_ago(2))]
    events += [Ev("blocked", "INCIDENT_VIEWED", days_ago(d)) for d in range(30)]
    events += [Ev("blocked", "POLICY_BLOCK_REPEAT", days_ago(1), session_id="s9") for _ in range(4)]
    events_store(events)
    metrics_recompute()

    body = read_client.get("/ops/customers/at-risk").json()
    assert [(c["tenant_id"], c["risk_level"], c["risk_signal_strength"]) for c in body] == [
        ("blocked", "critical", 15.0),
        ("decay", "high", 54.3),
    ]
    assert [m.tenant_id for m in tenants_at_risk(limit=5)] == ["blocked", "decay"]  # the weekly check-in's list


def _plan(run: Callable[[], Any]) -> str:
    """PostgreSQL's plan for the one query ``run`` makes, with sequential scans and sorts
    priced out: a plan without a Sort node proves an index delivers the ORDER BY."""
    with CaptureQueriesContext(connection) as ctx:
        run()
    (query,) = ctx.captured_queries
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("ANALYZE ops_tenant_metrics")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN {query['sql']}")
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.not_on_citus(
    "reads one server's EXPLAIN: on Citus the plan is a Custom Scan over the shards, whose own plans use the index on each worker"
)
def test_the_at_risk_list_and_the_default_customer_list_are_read_from_an_index(transactional_db: Any) -> None:
    metrics_rows_store(RANKED_TENANTS)

    at_risk = _plan(lambda: tenants_at_risk(limit=10, order="risk"))
    assert "ops_tm_at_risk " in at_risk + " " and "Sort" not in at_risk, at_risk
    by_loss = _plan(lambda: tenants_at_risk(limit=10, order="expected_loss"))
    assert "ops_tm_at_risk_loss" in by_loss and "Sort" not in by_loss, by_loss
    default_page = _plan(lambda: list(customers_list()[50:100]))
    assert "ops_tm_list_risk" in default_page and "Sort" not in default_page, default_page
    by_strength = _plan(lambda: list(customers_list(ordering="-risk_signal_strength")[:50]))
    assert "ops_tm_list_default" in by_strength and "Sort" not in by_strength, by_strength


def test_admin_lists_the_cached_metrics_most_at_risk_first(transactional_db: Any, staff_client: Any) -> None:
    metrics_rows_store(RANKED_TENANTS)
    get_user_model().objects.filter(username="founder").update(is_superuser=True)
    body = staff_client.get("/admin/customers/tenantmetrics/").content.decode()
    assert re.findall(r'href="/admin/customers/tenantmetrics/([^/"]+)/change/', body) == [*RANKED_AT_RISK, "calm"]


def test_admin_sorts_tenants_by_how_urgent_their_risk_level_is(transactional_db: Any, staff_client: Any) -> None:
    metrics_rows_store(RANKED_TENANTS)
    get_user_model().objects.filter(username="founder").update(is_superuser=True)
    # Column 4 of the tenant list is "risk level": critical, high, medium, then not at risk (not alphabetical,
    # which only happens to agree for the three level names); ties by the list's default order (tenant_id).
    body = staff_client.get("/admin/customers/tenant/?o=4.1").content.decode()
    ids = re.findall(r'href="/admin/customers/tenant/([^/"]+)/change/', body)
    assert ids == ["globex", "initech", "acme", "bravo", "umbrella", "hooli", "zeta", "calm"]
    reversed_ids = re.findall(
        r'href="/admin/customers/tenant/([^/"]+)/change/',
        staff_client.get("/admin/customers/tenant/?o=-4.1").content.decode(),
    )
    assert reversed_ids == ["calm", "hooli", "zeta", "acme", "bravo", "umbrella", "globex", "initech"]
