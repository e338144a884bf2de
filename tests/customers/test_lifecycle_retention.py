"""Lifecycle stages and cohort retention equal a hand-worked example.

The founder's calendar is Europe/Paris (UTC+1 in these weeks), so an event late on a Sunday in
UTC falls in the next local week and month. NOW is Sunday 15 March 2026, 12:00 UTC: the current
week began Monday 9 March, the current month on 1 March.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection

from customers.metrics.lifecycle import lifecycle_weeks
from customers.metrics.recompute import metrics_recompute
from customers.models import Tenant, TenantRevenue, TenantRevenueDay
from customers.retention import retention_table
from tests.customers.conftest import NOW, Ev

pytestmark = pytest.mark.django_db(transaction=True)


def at(day: str, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


W_4, W_3, W_2, W_1, W_0 = (date(2026, 2, 9), date(2026, 2, 16), date(2026, 2, 23), date(2026, 3, 2), date(2026, 3, 9))


@pytest.fixture
def paris(settings):
    settings.TIME_ZONE = "Europe/Paris"


def test_each_account_gets_its_stage_per_local_week(metrics_db, paris):
    metrics_db(
        [
            # alpha: active, active, a week off, back.
            Ev("alpha", "API_CALL", at("2026-02-18")),
            Ev("alpha", "API_CALL", at("2026-02-25")),
            Ev("alpha", "API_CALL", at("2026-03-10")),
            # bravo: Sunday 8 March 23:30 UTC is Monday 9 March 00:30 in Paris: this week, not last.
            Ev("bravo", "API_CALL", at("2026-03-08", 23, 30)),
            # charlie: last week only.
            Ev("charlie", "API_CALL", at("2026-03-04")),
            # delta: two weeks in a row, then only a non-real event.
            Ev("delta", "API_CALL", at("2026-02-10")),
            Ev("delta", "API_CALL", at("2026-02-17")),
            Ev("delta", "API_CALL", at("2026-02-24"), is_real=False),
            # echo: a test account, staged but never counted among customers.
            Ev("echo", "API_CALL", at("2026-03-11")),
        ]
    )
    Tenant.objects.filter(tenant_id="echo").update(kind="test")
    metrics_recompute()

    with connection.cursor() as cursor:
        cursor.execute("SELECT tenant_id, week, stage FROM ops_tenant_lifecycle ORDER BY tenant_id, week")
        stages = cursor.fetchall()
    assert stages == [
        ("alpha", W_3, "new"),
        ("alpha", W_2, "returning"),
        ("alpha", W_1, "dormant"),
        ("alpha", W_0, "resurrecting"),
        ("bravo", W_0, "new"),
        ("charlie", W_1, "new"),
        ("charlie", W_0, "dormant"),
        ("delta", W_4, "new"),
        ("delta", W_3, "returning"),
        ("delta", W_2, "dormant"),
        ("echo", W_0, "new"),
    ]
    weeks = lifecycle_weeks(weeks=6, now=NOW)
    assert [(w.week, w.new, w.returning, w.resurrecting, w.dormant) for w in weeks] == [
        (date(2026, 2, 2), 0, 0, 0, 0),
        (W_4, 1, 0, 0, 0),
        (W_3, 1, 1, 0, 0),
        (W_2, 0, 1, 0, 1),
        (W_1, 1, 0, 0, 1),
        (W_0, 1, 0, 1, 1),
    ]


def test_a_new_week_turns_last_weeks_accounts_dormant_without_new_events(metrics_db, paris):
    metrics_db([Ev("alpha", "API_CALL", at("2026-03-10")), Ev("bravo", "API_CALL", at("2026-03-03"))])
    metrics_recompute()
    metrics_recompute(now=at("2026-03-16", 9))  # Monday 10:00 in Paris: a new week, nothing new folded
    [last, this] = lifecycle_weeks(weeks=2, now=at("2026-03-16", 9))
    assert (last.week, last.new, last.dormant) == (W_0, 1, 1)  # alpha new; bravo dormant since last week
    assert (this.week, this.new, this.returning, this.dormant) == (date(2026, 3, 16), 0, 0, 1)  # alpha dormant


def test_cohort_retention_by_accounts_and_by_mrr(metrics_db, paris):
    metrics_db(
        [
            Ev("foxtrot", "API_CALL", at("2026-01-20")),
            Ev("foxtrot", "API_CALL", at("2026-03-12")),
            Ev("alpha", "API_CALL", at("2026-02-18")),
            Ev("alpha", "API_CALL", at("2026-03-10")),
            Ev("delta", "API_CALL", at("2026-02-10")),
            # golf: 31 January 23:30 UTC is 1 February in Paris: the February cohort.
            Ev("golf", "API_CALL", at("2026-01-31", 23, 30)),
            Ev("bravo", "API_CALL", at("2026-03-08", 23, 30)),
            Ev("charlie", "API_CALL", at("2026-03-04")),
        ]
    )
    # Weights (USD, the default currency): foxtrot 200 at the end of January; alpha 100 at the end
    # of February (its later 300 does not count); delta has no history, so its current 50; golf is
    # billed in EUR, so it weighs nothing.
    TenantRevenueDay.objects.create(
        tenant_id="foxtrot", day=date(2026, 1, 10), mrr=200, currency="USD", source="founder"
    )
    TenantRevenueDay.objects.create(tenant_id="alpha", day=date(2026, 2, 1), mrr=100, currency="USD", source="founder")
    TenantRevenueDay.objects.create(tenant_id="alpha", day=date(2026, 3, 5), mrr=300, currency="USD", source="founder")
    TenantRevenue.objects.create(tenant_id="alpha", mrr=300, currency="USD")
    TenantRevenue.objects.create(tenant_id="delta", mrr=50, currency="USD")
    TenantRevenueDay.objects.create(tenant_id="golf", day=date(2026, 3, 1), mrr=80, currency="EUR", source="founder")
    TenantRevenue.objects.create(tenant_id="golf", mrr=80, currency="EUR")
    metrics_recompute()

    table = retention_table(months=3, now=NOW)
    got = [
        (
            c.cohort,
            c.accounts,
            c.mrr,
            [(x.accounts, round(x.share, 4), x.mrr_share and round(x.mrr_share, 4), x.partial) for x in c.cells],
        )
        for c in table.cohorts
    ]
    assert got == [
        # January: foxtrot; away in February, back in March.
        (date(2026, 1, 1), 1, Decimal("200.00"), [(1, 1.0, 1.0, False), (0, 0.0, 0.0, False), (1, 1.0, 1.0, True)]),
        # February: alpha, delta, golf; in March only alpha (100 of the cohort's 150).
        (date(2026, 2, 1), 3, Decimal("150.00"), [(3, 1.0, 1.0, False), (1, 0.3333, 0.6667, True)]),
        # March: bravo and charlie, no MRR known.
        (date(2026, 3, 1), 2, Decimal("0"), [(2, 1.0, None, True)]),
    ]
    # One month in, over the cohorts that completed it: January's alone (February's is running).
    assert table.average_share(1) == 0.0
    assert table.average_share(0) == 1.0
    # A window of 2 months leaves January's cohort out.
    assert [c.cohort for c in retention_table(months=2, now=NOW).cohorts] == [date(2026, 2, 1), date(2026, 3, 1)]
