"""MRR from account traits and the founder, the revenue figures, and the list ordered by what is at stake."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.cache import cache

from customers.models import TenantMetrics, TenantRevenue, TenantRevenueDay
from customers.revenue import (
    RevenueInputError,
    revenue_traits_apply,
    tenant_billing_revenue_set,
    tenant_founder_revenue_set,
)
from customers.selectors import revenue_figures, tenants_at_risk
from events.models import AccountTraits
from tests.customers.conftest import metrics_rows_store

NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clock():
    cache.clear()
    with time_machine.travel(NOW, tick=False):
        yield


def _traits(tenant_id: str, **properties: Any) -> None:
    AccountTraits.objects.update_or_create(
        tenant_id=tenant_id, defaults={"properties": properties, "updated_at": datetime.now(UTC)}
    )


@pytest.mark.django_db
def test_an_mrr_trait_sets_the_mrr_and_bad_ones_are_named_skips():
    metrics_rows_store([("acme", "high", 60.0), ("bolt", "medium", 40.0), ("cask", None, 0.0), ("dune", None, 0.0)])
    _traits("acme", mrr="499.5", plan="Pro")
    _traits("bolt", mrr="lots")
    _traits("cask", mrr=-20)
    _traits("dune", mrr=80, currency="XYZ")
    applied, skipped = revenue_traits_apply()
    assert applied == 1
    assert skipped == [
        "bolt: MRR 'lots' is not a number",
        "cask: MRR -20 is negative",
        "dune: unknown currency 'XYZ' (an ISO 4217 code such as USD is expected)",
    ]
    acme = TenantRevenue.objects.get(tenant_id="acme")
    assert (acme.mrr, acme.currency, acme.source, acme.plan) == (Decimal("499.50"), "USD", "traits", "Pro")
    assert TenantRevenue.objects.filter(mrr__isnull=False).count() == 1
    assert TenantMetrics.objects.get(tenant_id="acme").mrr == Decimal("499.50")
    # Read once: a second run finds nothing new.
    assert revenue_traits_apply() == (0, [])


@pytest.mark.django_db
def test_billing_wins_over_traits_and_the_founder_over_both():
    metrics_rows_store([("acme", "high", 60.0)])
    _traits("acme", mrr=100)
    revenue_traits_apply()
    tenant_billing_revenue_set(tenant_id="acme", mrr=Decimal("250"), currency="usd", plan="", moment=NOW)
    assert TenantRevenue.objects.get(tenant_id="acme").mrr == Decimal("250.00")
    _traits("acme", mrr=999)
    revenue_traits_apply()
    assert TenantRevenue.objects.get(tenant_id="acme").mrr == Decimal("250.00")
    acme = tenant_founder_revenue_set(
        tenant=TenantRevenue.objects.get(tenant_id="acme").tenant, mrr=Decimal("300"), currency="EUR"
    )
    assert (acme.mrr, acme.currency, acme.source) == (Decimal("300.00"), "EUR", "founder")
    with pytest.raises(RevenueInputError):
        tenant_founder_revenue_set(tenant=acme.tenant, mrr=Decimal("-1"), currency="EUR")
    assert TenantRevenue.objects.get(tenant_id="acme").mrr == Decimal("300.00")


@pytest.mark.django_db
def test_the_month_figures_are_hand_computed():
    metrics_rows_store(
        [
            ("acme", "high", 60.0),
            ("bolt", "medium", 40.0),
            ("cask", None, 0.0),
            ("dune", None, 0.0),
            ("echo", None, 0.0),
        ]
    )
    feb, mar = datetime(2026, 2, 10, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC)
    for tenant_id, before, after in [("acme", 100, 150), ("bolt", 200, 120), ("cask", 300, 0), ("dune", 50, 50)]:
        tenant_billing_revenue_set(tenant_id=tenant_id, mrr=Decimal(before), currency="USD", plan="", moment=feb)
        tenant_billing_revenue_set(tenant_id=tenant_id, mrr=Decimal(after), currency="USD", plan="", moment=mar)
    tenant_billing_revenue_set(
        tenant_id="echo", mrr=Decimal(70), currency="USD", plan="", moment=mar
    )  # new, not expansion
    [usd] = revenue_figures(today=date(2026, 3, 20))
    assert usd.mrr == Decimal("390.00")  # 150 + 120 + 0 + 50 + 70
    assert (usd.at_risk_mrr, usd.at_risk_customers) == (Decimal("270.00"), 2)  # acme 150 + bolt 120
    assert usd.churned_mrr == Decimal("300.00")  # cask 300 -> 0
    assert usd.expansion_mrr == Decimal("50.00")  # acme 100 -> 150
    assert usd.contraction_mrr == Decimal("80.00")  # bolt 200 -> 120
    assert TenantRevenueDay.objects.filter(tenant_id="acme").count() == 2


@pytest.mark.django_db
def test_the_at_risk_api_orders_by_expected_loss_and_carries_mrr(staff_client: Any, settings: Any):
    # Strength 80 on $50 (expected 40) < strength 30 on $1,000 (expected 300) < ... ; "cask" has no MRR: last.
    metrics_rows_store([("acme", "critical", 80.0), ("bolt", "medium", 30.0), ("cask", "high", 60.0)])
    tenant_billing_revenue_set(tenant_id="acme", mrr=Decimal(50), currency="USD", plan="", moment=NOW)
    tenant_billing_revenue_set(tenant_id="bolt", mrr=Decimal(1000), currency="USD", plan="", moment=NOW)
    settings.CALL_LIST_ORDER = "auto"  # 2 of 3 at risk have an MRR: expected loss orders
    rows = staff_client.get("/ops/customers/at-risk").json()
    assert [r["tenant_id"] for r in rows] == ["bolt", "acme", "cask"]
    assert [(r["mrr"], r["expected_loss"], r["mrr_currency"]) for r in rows] == [
        (1000.0, 300.0, "USD"),
        (50.0, 40.0, "USD"),
        (None, None, None),
    ]
    settings.CALL_LIST_ORDER = "risk"
    assert [m.tenant_id for m in tenants_at_risk()] == ["acme", "cask", "bolt"]


@pytest.mark.django_db
def test_the_csv_carries_mrr_and_expected_loss(staff_client: Any):
    metrics_rows_store([("acme", "critical", 80.0)])
    tenant_billing_revenue_set(tenant_id="acme", mrr=Decimal(50), currency="USD", plan="", moment=NOW)
    body = staff_client.get("/customers/at-risk.csv").content.decode()
    header, row = body.splitlines()[:2]
    columns = dict(zip(header.split(","), row.split(","), strict=False))
    assert (columns["mrr"], columns["mrr_currency"], columns["expected_loss"]) == ("50.00", "USD", "40.0")


@pytest.mark.django_db
def test_today_heads_the_call_list_with_the_revenue_at_risk(staff_client: Any):
    metrics_rows_store([("acme", "critical", 80.0), ("bolt", "medium", 30.0), ("cask", None, 0.0)])
    for tenant_id, mrr in [("acme", 1200), ("bolt", 300), ("cask", 5000)]:
        tenant_billing_revenue_set(tenant_id=tenant_id, mrr=Decimal(mrr), currency="USD", plan="", moment=NOW)
    page = staff_client.get("/").content.decode()
    assert "Revenue at risk: $1,500 across 2 customers" in page
    assert 'data-testid="mrr-acme">1,200 USD/mo' in page
