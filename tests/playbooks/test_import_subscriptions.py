"""manage.py import_subscriptions: a Stripe subscriptions export becomes each customer's MRR through the
webhook's own definition, checked whole first, idempotent; values computed by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command

from customers.models import Tenant, TenantRevenue, TenantRevenueDay
from playbooks.models import StripeCustomerLink, StripeSubscription

pytestmark = pytest.mark.django_db

# The Dashboard's export header (a subset of its columns, in its order), plus the subscription's
# tenant_id metadata and the coupon's size, which the export leaves to the founder to add.
HEADER = (
    "id,Customer ID,Customer Email,Plan,Product,Quantity,Currency,Interval,Amount,Status,Created (UTC),"
    "Start (UTC),Current Period Start (UTC),Current Period End (UTC),Canceled At (UTC),Cancel At Period End,"
    "Ended At (UTC),Coupon,Percent Off,tenant_id (metadata)"
)
GOOD_ROWS = [
    # acme: 3 seats at 49.00 a month = 147.00, described as of its current period (5 Mar).
    "sub_A,cus_A,ops@acme.io,price_seat,Seat,3,usd,month,49.00,active,2026-01-05 10:00,2026-01-05 10:00,"
    "2026-03-05 10:00,2026-04-05 10:00,,false,,,,acme",
    # acme: 1,200.00 a year with 25% off = 100.00 x 0.75 = 75.00 a month, as of 1 Feb.
    "sub_B,cus_A,ops@acme.io,price_year,Platform,1,usd,year,1200.00,active,2026-02-01 09:00,2026-02-01 09:00,"
    "2026-02-01 09:00,2027-02-01 09:00,,false,,SAVE25,25,acme",
    # globex, mapped in admin: 2 x 10.00 EUR a week = 20 x 52 / 12 = 86.67 a month.
    "sub_C,cus_G,,price_week,Weekly,2,eur,week,10.00,active,2026-03-02 08:00,2026-03-02 08:00,"
    "2026-03-16 08:00,2026-03-23 08:00,,false,,,,",
    # hooli: canceled and ended on 10 Mar: no revenue.
    "sub_D,cus_H,,price_basic,Basic,1,usd,month,30.00,canceled,2025-12-01 08:00,2025-12-01 08:00,"
    "2026-03-01 08:00,2026-04-01 08:00,2026-03-10 12:00,false,2026-03-10 12:00,,,hooli",
    # initech: 5,000 yen a month (a zero-decimal currency).
    "sub_E,cus_I,,price_jp,Tokyo,1,jpy,month,5000,active,2026-03-01 00:00,2026-03-01 00:00,"
    "2026-03-01 00:00,2026-04-01 00:00,,false,,,,initech",
]


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(datetime(2026, 3, 20, 12, tzinfo=UTC), tick=False):
        yield


@pytest.fixture
def tenants() -> None:
    for tenant_id in ("acme", "globex", "hooli", "initech"):
        Tenant.objects.create(tenant_id=tenant_id, name=tenant_id.capitalize())
    StripeCustomerLink.objects.create(stripe_customer_id="cus_G", tenant_id="globex")


def _file(tmp_path: Path, rows: list[str], header: str = HEADER) -> str:
    path = tmp_path / "subscriptions.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return str(path)


def _run(path: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("import_subscriptions", path, stdout=out)
    return out.getvalue()


def _revenue() -> dict[str, tuple[Decimal | None, str, str]]:
    return {r.tenant_id: (r.mrr, r.currency, r.source) for r in TenantRevenue.objects.all()}


def test_an_export_gives_each_customer_its_hand_computed_mrr_and_history(tenants, tmp_path):
    out = _run(_file(tmp_path, GOOD_ROWS))
    assert "Recorded 5 subscription(s) for 4 customer(s); 0 already recorded." in out
    assert _revenue() == {
        "acme": (Decimal("222.00"), "USD", "stripe"),
        "globex": (Decimal("86.67"), "EUR", "stripe"),
        "hooli": (Decimal("0.00"), "USD", "stripe"),
        "initech": (Decimal("5000.00"), "JPY", "stripe"),
    }
    # Oldest first: acme's history gains a day per subscription, as the webhook's events would give it.
    assert list(TenantRevenueDay.objects.filter(tenant_id="acme").order_by("day").values_list("day", "mrr")) == [
        (date(2026, 2, 1), Decimal("75.00")),
        (date(2026, 3, 5), Decimal("222.00")),
    ]
    assert StripeSubscription.objects.get(subscription_id="sub_B").plan == "Platform"
    # The customer named by metadata is mapped for the webhook's later events too.
    assert StripeCustomerLink.objects.get(stripe_customer_id="cus_A").tenant_id == "acme"


def test_running_it_twice_writes_nothing_new(tenants, tmp_path):
    path = _file(tmp_path, GOOD_ROWS)
    _run(path)
    before = (
        list(TenantRevenue.objects.order_by("tenant_id").values_list("tenant_id", "mrr", "updated_at")),
        list(TenantRevenueDay.objects.order_by("tenant_id", "day").values_list("tenant_id", "day", "mrr")),
        list(StripeSubscription.objects.order_by("subscription_id").values_list("subscription_id", "updated_at")),
    )
    with time_machine.travel(datetime(2026, 3, 20, 13, tzinfo=UTC), tick=False):
        out = _run(path)
    assert "Recorded 0 subscription(s) for 0 customer(s); 5 already recorded." in out
    after = (
        list(TenantRevenue.objects.order_by("tenant_id").values_list("tenant_id", "mrr", "updated_at")),
        list(TenantRevenueDay.objects.order_by("tenant_id", "day").values_list("tenant_id", "day", "mrr")),
        list(StripeSubscription.objects.order_by("subscription_id").values_list("subscription_id", "updated_at")),
    )
    assert after == before


def test_a_newer_row_for_a_subscription_moves_its_mrr(tenants, tmp_path):
    _run(_file(tmp_path, GOOD_ROWS))
    # sub_A's next period: 5 seats.
    upgraded = (
        GOOD_ROWS[0].replace(",3,usd,", ",5,usd,").replace("2026-03-05 10:00,2026-04-05", "2026-03-19 10:00,2026-04-19")
    )
    out = _run(_file(tmp_path, [upgraded]))
    assert "Recorded 1 subscription(s)" in out
    assert _revenue()["acme"] == (Decimal("320.00"), "USD", "stripe")  # 5 x 49 + 75


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (GOOD_ROWS[0].replace(",49.00,", ",4x.00,"), "line 3, column Amount: '4x.00' is not an amount (e.g. 49.00)"),
        (
            GOOD_ROWS[0].replace(",49.00,", ",-49.00,"),
            "line 3, column Amount: -49.00 is negative: MRR cannot be below 0",
        ),
        (GOOD_ROWS[0].replace(",usd,", ",usdd,"), "line 3, column Currency: unknown currency 'usdd'"),
        (
            GOOD_ROWS[0].replace(",month,", ",fortnight,"),
            "line 3, column Interval: 'fortnight' is not a billing interval",
        ),
        (
            GOOD_ROWS[0].replace(",3,usd,", ",three,usd,"),
            "line 3, column Quantity: quantity 'three' is not a whole number",
        ),
        (
            GOOD_ROWS[0].replace(",2026-03-05 10:00,", ",5 March,"),
            "line 3, column Current Period Start (UTC): '5 March'",
        ),
        (GOOD_ROWS[0].replace(",acme", ",nobody"), "line 3, column tenant_id (metadata): unknown tenant 'nobody'"),
        (GOOD_ROWS[2].replace("cus_G", "cus_X"), "line 3, column Customer ID: Stripe customer cus_X is not mapped"),
        (GOOD_ROWS[1].replace(",25,acme", ",125,acme"), "line 3, column Percent Off: '125' is not a percentage"),
        (GOOD_ROWS[4].replace("sub_E", "sub_B"), "line 3, column id: subscription sub_B is also on line 2"),
    ],
)
def test_a_bad_row_refuses_the_whole_file_naming_its_line_and_column(tenants, tmp_path, row, problem):
    path = _file(tmp_path, [GOOD_ROWS[1], row, *GOOD_ROWS[2:4]])
    with pytest.raises(CommandError) as refused:
        _run(path)
    assert "Nothing was imported" in str(refused.value)
    assert problem in str(refused.value)
    assert TenantRevenue.objects.count() == 0
    assert TenantRevenueDay.objects.count() == 0
    assert StripeSubscription.objects.count() == 0
    assert not StripeCustomerLink.objects.exclude(stripe_customer_id="cus_G").exists()


def test_a_header_without_the_exports_columns_is_refused(tenants, tmp_path):
    with pytest.raises(CommandError) as refused:
        _run(_file(tmp_path, ["sub_A,acme,49"], header="id,tenant,price"))
    assert "line 1: the header must name the columns amount, currency, interval, status" in str(refused.value)
    assert StripeSubscription.objects.count() == 0


def test_a_coupon_the_export_does_not_size_is_named_and_not_applied(tenants, tmp_path: Any):
    row = GOOD_ROWS[1].replace(",SAVE25,25,", ",SAVE25,,")
    out = _run(_file(tmp_path, [row]))
    assert "coupon SAVE25 not applied" in out
    assert _revenue()["acme"] == (Decimal("100.00"), "USD", "stripe")
