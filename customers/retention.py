"""Cohort retention: customer accounts by month of first real activity x months since, share still active.

Read from the monthly activity the recompute folds (``ops_rollup_tenant_period``, all history,
months in settings.TIME_ZONE): an account belongs to the cohort of the month of its first real
event; it is active in a month when it had at least one real event that month. The share of
cohort C still active k months later is (accounts of C active in month C+k) / (accounts of C).
The current month counts as far as it has gone, so its cells are marked partial.

Weighted by MRR, each account weighs its MRR at the end of its cohort month, from the revenue
history (``ops_tenant_revenue_day``: the last figure recorded on or before that month's last
day); an account whose history starts later weighs its current MRR. Only accounts in
REVENUE_DEFAULT_CURRENCY are weighted (amounts in different currencies do not add up); an account
with no figure in that currency weighs nothing. The weighted share is then (MRR of the cohort's
accounts active in month C+k) / (MRR of the cohort): how much of the revenue the cohort came in
with belongs to accounts still using the product.

Churned accounts stay in their cohort (the denominator) and count as active only in months with
real activity: retention measures use, so a churned account that stopped is not retained, and one
still using the product after its churn was recorded is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection

from core.rows import rows_as_dicts

RETENTION_MONTHS_MAX = 24
RETENTION_MONTHS_DEFAULT = 12

# Accounts and MRR per (cohort, active month) for the cohorts from first_cohort on. Reads the month
# rows of ops_rollup_tenant_period (sequential: the period column is the key's second field; one
# row per customer and active month) joined to customers_tenant by its primary key (co-located on
# Citus); each cohort's weight is the newest ops_tenant_revenue_day row on or before the cohort
# month's end (its primary key, tenant_id then day), else ops_tenant_revenue (its primary key).
RETENTION_SQL = """
WITH active AS MATERIALIZED (
    SELECT p.tenant_id, p.start_day AS month
    FROM ops_rollup_tenant_period p JOIN customers_tenant t ON t.tenant_id = p.tenant_id
    WHERE p.period = 'month' AND t.kind = 'customer' AND p.start_day <= %(this_month)s::date
), cohort AS MATERIALIZED (
    SELECT tenant_id, min(month) AS cohort FROM active GROUP BY tenant_id HAVING min(month) >= %(first_cohort)s::date
), history AS (
    SELECT DISTINCT ON (c.tenant_id) c.tenant_id, d.mrr, d.currency
    FROM cohort c JOIN ops_tenant_revenue_day d
      ON d.tenant_id = c.tenant_id AND d.day < (c.cohort + interval '1 month')::date
    ORDER BY c.tenant_id, d.day DESC
), weight AS (
    SELECT c.tenant_id, c.cohort,
           CASE WHEN h.tenant_id IS NOT NULL THEN CASE WHEN h.currency = %(currency)s THEN h.mrr END
                WHEN r.currency = %(currency)s THEN r.mrr END AS mrr
    FROM cohort c LEFT JOIN history h ON h.tenant_id = c.tenant_id LEFT JOIN ops_tenant_revenue r ON r.tenant_id = c.tenant_id
)
SELECT w.cohort, a.month, count(*) AS accounts, sum(w.mrr) AS mrr
FROM weight w JOIN active a ON a.tenant_id = w.tenant_id AND a.month >= w.cohort
GROUP BY w.cohort, a.month
ORDER BY w.cohort, a.month
"""


@dataclass(frozen=True)
class RetentionCell:
    months_since: int
    month: date
    accounts: int
    share: float  # of the cohort's accounts, 0-1
    mrr: Decimal
    mrr_share: float | None  # of the cohort's MRR, 0-1; None when the cohort has no MRR
    partial: bool  # the current month, still running


@dataclass(frozen=True)
class RetentionCohort:
    cohort: date  # first day of the month of first real activity
    accounts: int
    mrr: Decimal
    cells: list[RetentionCell] = field(default_factory=list)


@dataclass(frozen=True)
class RetentionTable:
    months: int
    currency: str
    this_month: date
    cohorts: list[RetentionCohort]

    def average_share(self, months_since: int, *, weighted: bool = False) -> float | None:
        """The share still active ``months_since`` months in, over every cohort that has reached
        that month completely (the partial current month left out), each account counted once."""
        base = active = Decimal(0)
        for cohort in self.cohorts:
            if _month_add(cohort.cohort, months_since) >= self.this_month:
                continue  # not reached yet, or only partly (the current month)
            cell = cohort.cells[months_since]
            base += cohort.mrr if weighted else cohort.accounts
            active += cell.mrr if weighted else cell.accounts
        return float(active / base) if base else None


def month_start(moment: datetime) -> date:
    """The first day of the month ``moment`` falls in, in settings.TIME_ZONE."""
    return moment.astimezone(ZoneInfo(settings.TIME_ZONE)).date().replace(day=1)


def _month_add(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _months_between(start: date, end: date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


def retention_table(*, months: int, now: datetime) -> RetentionTable:
    """The last ``months`` cohorts (the current month's included), oldest first, each with its
    share still active for every month since, up to the current one. One query."""
    this_month = month_start(now)
    first_cohort = _month_add(this_month, -(months - 1))
    currency = settings.REVENUE_DEFAULT_CURRENCY
    with connection.cursor() as cursor:
        cursor.execute(RETENTION_SQL, {"this_month": this_month, "first_cohort": first_cohort, "currency": currency})
        rows = rows_as_dicts(cursor)
    by_cohort: dict[date, list[dict[str, Any]]] = {}
    for row in rows:
        by_cohort.setdefault(row["cohort"], []).append(row)
    cohorts = []
    for start, cohort_rows in sorted(by_cohort.items()):
        found = {r["month"]: r for r in cohort_rows}
        size, size_mrr = int(found[start]["accounts"]), found[start]["mrr"] or Decimal(0)
        cells = []
        # Every month from the cohort's to the current one: a month nobody was active reads 0%.
        for since in range(_months_between(start, this_month) + 1):
            month = _month_add(start, since)
            accounts = int(found[month]["accounts"]) if month in found else 0
            mrr = (found[month]["mrr"] or Decimal(0)) if month in found else Decimal(0)
            cells.append(
                RetentionCell(
                    months_since=since,
                    month=month,
                    accounts=accounts,
                    share=accounts / size,
                    mrr=mrr,
                    mrr_share=float(mrr / size_mrr) if size_mrr else None,
                    partial=month == this_month,
                )
            )
        cohorts.append(RetentionCohort(cohort=start, accounts=size, mrr=size_mrr, cells=cells))
    return RetentionTable(months=months, currency=currency, this_month=this_month, cohorts=cohorts)
