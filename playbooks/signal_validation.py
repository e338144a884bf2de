"""Was the risk signal right? ``signal_validation``, read by the Playbooks page and API.

Signal validation (``signal_validation``): for every recorded churn, the
highest risk level the tenant had on the churn's day or in the LOOKBACK_DAYS
days before it and how many days before the churn it first reached that level;
and, for every tenant ever flagged, its level and whether it churned: a churned
tenant's level is the one that warned of its churn (as above), any other's its
highest level ever. One definition (``flagged_before_churn``) behind both tables,
so a level's churned count in one is its churns in the other.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Min
from django.utils import timezone

from core.rows import rows_as_dicts
from customers.models import RiskLevel
from playbooks.evaluation import LEVEL_RANK
from playbooks.models import ChurnRecord, TenantRiskDay

LOOKBACK_DAYS = 90
LEVELS = [RiskLevel.CRITICAL, RiskLevel.HIGH, RiskLevel.MEDIUM]


def _days_summary(values: list[int]) -> dict[str, float | None]:
    if not values:
        return {"min": None, "median": None, "max": None}
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def flagged_before_churn(flag_day: date, churn_day: date) -> bool:
    """Whether a day the tenant was flagged counts as a warning of a churn: on the churn's day or
    in the LOOKBACK_DAYS before it. The one definition both validation tables use: before, one
    counted the churn day and the other did not, so a churn recorded on the day of its first flag
    read "not flagged 1 (100%)" beside "critical, churned afterwards 1".
    """
    return churn_day - timedelta(days=LOOKBACK_DAYS) <= flag_day <= churn_day


# Every customer ever flagged: its highest level and the first day at that level. A scan of
# ops_tenant_risk_day (one row per at-risk customer and day), joined to customers_tenant by primary key.
FLAGGED_TENANTS_SQL = """
WITH ranked AS (
    SELECT d.tenant_id, d.day,
           array_position(ARRAY['medium','high','critical']::text[], d.risk_level::text) AS r
    FROM ops_tenant_risk_day d
    JOIN customers_tenant t ON t.tenant_id = d.tenant_id AND t.kind = 'customer'
), top AS (SELECT tenant_id, max(r) AS r FROM ranked GROUP BY tenant_id)
SELECT top.tenant_id, top.r AS rank, min(ranked.day) AS first_day
FROM top JOIN ranked ON ranked.tenant_id = top.tenant_id AND ranked.r = top.r
GROUP BY top.tenant_id, top.r
"""


def _churns_judged(churns: list[ChurnRecord]) -> tuple[list[dict[str, Any]], dict[str | None, list[int]]]:
    """Each churn with the highest level its customer reached in the lookback before it and how many days
    before; and those days by level."""
    history: dict[str, list[tuple[date, int]]] = defaultdict(list)
    if churns:
        earliest = min(c.date for c in churns) - timedelta(days=LOOKBACK_DAYS)
        for tenant_id, day, day_level in TenantRiskDay.objects.filter(
            tenant_id__in={c.tenant_id for c in churns}, day__gte=earliest
        ).values_list("tenant_id", "day", "risk_level"):
            history[tenant_id].append((day, LEVEL_RANK[day_level]))
    rank_level = {rank: level for level, rank in LEVEL_RANK.items()}
    per_churn = []
    lead_days: dict[str | None, list[int]] = defaultdict(list)
    for churn in churns:
        window = [(d, r) for d, r in history.get(churn.tenant_id, []) if flagged_before_churn(d, churn.date)]
        top = max((r for _, r in window), default=0)
        level = rank_level[top]
        days_before = (churn.date - min(d for d, r in window if r == top)).days if top else None
        if days_before is not None:
            lead_days[level].append(days_before)
        per_churn.append(
            {
                "tenant_id": churn.tenant_id,
                "name": churn.tenant.name,
                "date": churn.date,
                "reason": churn.reason,
                "highest_level": level,
                "days_flagged_before": days_before,
            }
        )
    return per_churn, lead_days


def _flagged_by_level(per_churn: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per level, the customers ever flagged at it and how many of them churned.

    A churned customer sits in the row of the level that warned of its churn (its latest churn's); any
    other customer in the row of its highest level ever. So the churned column of each level equals the
    churns table's count at that level."""
    rank_level = {rank: level for level, rank in LEVEL_RANK.items()}
    with connection.cursor() as cursor:
        cursor.execute(FLAGGED_TENANTS_SQL)
        flagged_rows = rows_as_dicts(cursor)
    warned_level = {c["tenant_id"]: c["highest_level"] for c in per_churn if c["highest_level"] is not None}
    by_level: dict[str | None, list[str]] = defaultdict(list)
    for row in flagged_rows:
        by_level[warned_level.get(row["tenant_id"], rank_level[row["rank"]])].append(row["tenant_id"])
    flagged = []
    for level in LEVELS:
        tenants = by_level.get(level, [])
        churned = sum(1 for t in tenants if t in warned_level)
        flagged.append(
            {
                "risk_level": level,
                "tenants": len(tenants),
                "churned": churned,
                "share_churned": round(churned / len(tenants), 3) if tenants else None,
            }
        )
    return flagged


def _trust_warning(n: int, minimum: int) -> str | None:
    if n >= minimum:
        return None
    return (
        "No churn recorded yet: nothing to judge the risk signal against."
        if n == 0
        else f"Only {n} churn{'s' if n != 1 else ''} recorded: too few to judge the risk signal."
    ) + f" Until at least {minimum} are recorded, treat the risk levels as an attention ranking, not a prediction."


def signal_validation(*, today: date | None = None) -> dict[str, Any]:
    """Was the risk signal right? Definitions in the module docstring. Three queries."""
    today = today or timezone.localdate()
    churns = list(ChurnRecord.objects.select_related("tenant").order_by("date", "id"))
    per_churn, lead_days = _churns_judged(churns)
    n = len(churns)
    churns_by_level = []
    for level in [*LEVELS, None]:
        count = sum(1 for c in per_churn if c["highest_level"] == level)
        churns_by_level.append(
            {
                "risk_level": level or "not_flagged",
                "churns": count,
                "share": round(count / n, 3) if n else None,
                "days_before": _days_summary(lead_days.get(level, [])) if level else None,
            }
        )
    minimum = settings.MIN_CHURNS_FOR_TRUST  # one setting, shared with the backtest (validation/)
    return {
        "as_of": today,
        "lookback_days": LOOKBACK_DAYS,
        "churns_recorded": n,
        "minimum_churns_for_trust": minimum,
        "warning": _trust_warning(n, minimum),
        "churns_by_level": churns_by_level,
        "flagged": _flagged_by_level(per_churn),
        "churns": per_churn,
        "risk_history_starts": TenantRiskDay.objects.aggregate(first=Min("day"))["first"],
    }
