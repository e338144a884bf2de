"""Reads of the customers app. The console pages and the API both call these,
so a number on a page and in the API can never differ.

Everything here reads the caches only (``ops_tenant_metrics`` and the rollup
tables), never ``ops_events``, with a constant number of queries whatever the
number of tenants.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Case, Count, F, Q, QuerySet
from django.utils import timezone

from core.rows import rows_as_dicts, value_of
from customers.metrics.daily import SUMMARY_TABLE
from customers.metrics.risk import STICKINESS_30D_WEEKLY_DIVISOR
from customers.models import (
    TenantKind,
    TenantMetrics,
    at_risk_order,
    expected_loss_order,
    risk_sort_keys,
)
from customers.read_cache import cached_per_recompute

# Days a Customer page charts.
SERIES_DAYS = 60

# Sortable columns of the customer list: public names (an API contract) -> what they sort by.
# The direction applies to every key of a column; ties are broken by tenant_id.
CUSTOMER_ORDERINGS: dict[str, tuple[F | Case, ...]] = {
    "tenant_id": (F("tenant_id"),),
    "name": (F("tenant__name"),),
    # The at-risk order: the level (critical > high > medium > not at risk), then the strength.
    "risk_level": risk_sort_keys(),
    "risk_signal_strength": (F("risk_signal_strength"),),
    "stickiness_7d": (F("stickiness_7d"),),
    "stickiness_30d": (F("stickiness_30d"),),
    "stickiness_delta": (F("stickiness_delta"),),
    "friction_score": (F("friction_weighted_score"),),
    "events_7d": (F("events_7d"),),
    "events_30d": (F("events_30d"),),
    "days_since_investigation": (F("days_since_investigation"),),
    "last_seen_at": (F("last_seen_at"),),
}
# Most at risk first: the at-risk list's order (at_risk_order()) over every tenant, served by ops_tm_list_risk.
DEFAULT_CUSTOMER_ORDERING = "-risk_level"


@dataclass(frozen=True)
class CustomerFilters:
    """What the customer list can be narrowed by. ``kind=None`` means every kind."""

    kind: str | None = TenantKind.CUSTOMER
    risk_level: str | None = None  # critical/high/medium, or "none" for not at risk
    at_risk: bool | None = None
    has_baseline: bool | None = None
    search: str = ""


def customers_list(
    *, filters: CustomerFilters | None = None, ordering: str = DEFAULT_CUSTOMER_ORDERING
) -> QuerySet[TenantMetrics]:
    """Tenants with their cached metrics, filtered and sorted (ties by tenant_id).

    ``ordering`` is a key of CUSTOMER_ORDERINGS, optionally prefixed with "-";
    null values (e.g. stickiness_delta without a baseline, or no risk level) sort
    last either way. ``-risk_level`` is the at-risk order (critical, high, medium,
    strongest first within a level), then the tenants not at risk, strongest first.
    Raises ValueError for an unknown ordering.
    """
    filters = filters or CustomerFilters()
    descending = ordering.startswith("-")
    key = ordering.lstrip("-")
    if key not in CUSTOMER_ORDERINGS:
        raise ValueError(f"Unknown ordering '{ordering}'. Use one of: {', '.join(sorted(CUSTOMER_ORDERINGS))}.")
    order = [
        expr.desc(nulls_last=True) if descending else expr.asc(nulls_last=True) for expr in CUSTOMER_ORDERINGS[key]
    ]

    qs = TenantMetrics.objects.select_related("tenant")
    if filters.kind is not None:
        qs = qs.filter(tenant__kind=filters.kind)
    if filters.risk_level == "none":
        qs = qs.filter(risk_level__isnull=True)
    elif filters.risk_level:
        qs = qs.filter(risk_level=filters.risk_level)
    if filters.at_risk is not None:
        qs = qs.filter(risk_level__isnull=not filters.at_risk)
    if filters.has_baseline is not None:
        qs = qs.filter(has_baseline=filters.has_baseline)
    if filters.search:
        qs = qs.filter(Q(tenant__tenant_id__icontains=filters.search) | Q(tenant__name__icontains=filters.search))
    return qs.order_by(*order, F("tenant_id").asc())


# CALL_LIST_ORDER=auto orders by expected loss once more than this share of the customers at risk have an MRR.
EXPECTED_LOSS_MIN_SHARE = 0.5
CALL_LIST_ORDERS = {"risk": at_risk_order, "expected_loss": expected_loss_order}


def call_list_order_in_force() -> str:
    """``risk`` or ``expected_loss``: the setting CALL_LIST_ORDER, or under ``auto`` expected loss when
    the MRR of most customers at risk is known (one aggregate over the at-risk partial index)."""
    if settings.CALL_LIST_ORDER != "auto":
        return settings.CALL_LIST_ORDER
    counts = TenantMetrics.objects.filter(risk_level__isnull=False, tenant__kind=TenantKind.CUSTOMER).aggregate(
        n=Count("tenant_id"), known=Count("mrr")
    )
    return "expected_loss" if counts["n"] and counts["known"] > counts["n"] * EXPECTED_LOSS_MIN_SHARE else "risk"


def tenants_at_risk(*, limit: int = 10, order: str | None = None) -> list[TenantMetrics]:
    """ "Who should I call today?": customers at risk (one query), in ``order`` (default: the one in force).

    ``risk``: critical first, then high, then medium; within a level the strongest signal first; ties
    by tenant_id (``at_risk_order()``, served by the partial index ``ops_tm_at_risk``). The level leads
    because a matched playbook can raise a tenant above its strength's band. ``expected_loss``: the most
    revenue expected to be lost first, then the risk order (``expected_loss_order()``, ``ops_tm_at_risk_loss``).
    """
    keys = CALL_LIST_ORDERS[order or call_list_order_in_force()]
    return list(
        TenantMetrics.objects.select_related("tenant", "tenant__revenue")
        .filter(risk_level__isnull=False, tenant__kind=TenantKind.CUSTOMER)
        .order_by(*keys())[:limit]
    )


@dataclass(frozen=True)
class RevenueFigures:
    """One currency's revenue figures (major unit per month); the customers are of kind customer."""

    currency: str
    mrr: Decimal
    customers: int
    at_risk_mrr: Decimal
    at_risk_customers: int
    churned_mrr: Decimal
    expansion_mrr: Decimal
    contraction_mrr: Decimal


# The revenue tables stay on a Citus coordinator (as billing's do), so no statement joins them with the
# per-account tables: the customers and their risk are read for the revenue's tenants by id, and the sums
# are made here. MRR in force per tenant: ops_tenant_revenue (read whole, one row per customer).
_REVENUE_NOW_SQL = "SELECT tenant_id, currency, mrr FROM ops_tenant_revenue WHERE mrr IS NOT NULL"
# Which of those tenants are customers, and at risk. Uses customers_tenant's and ops_tenant_metrics'
# primary keys (co-located on Citus).
_CUSTOMERS_AT_RISK_SQL = """
SELECT c.tenant_id, m.risk_level IS NOT NULL AS at_risk
FROM customers_tenant c LEFT JOIN ops_tenant_metrics m ON m.tenant_id = c.tenant_id
WHERE c.kind = 'customer' AND c.tenant_id = ANY(%(ids)s::text[])
"""
# The month's moves: each history row of the month against the tenant's row before it (which may
# be older than the month). To 0: churned; up from above 0: expansion; down but above 0: contraction.
# Uses the index ops_tenant_revenue_day_day for the month's tenants, then their rows by primary key.
_REVENUE_MOVES_SQL = """
WITH moved AS (
    SELECT DISTINCT tenant_id FROM ops_tenant_revenue_day WHERE day >= %(start)s AND day <= %(end)s
), steps AS (
    SELECT d.tenant_id, d.day, d.mrr, d.currency,
           lag(d.mrr) OVER w AS before, lag(d.currency) OVER w AS before_currency
    FROM ops_tenant_revenue_day d JOIN moved USING (tenant_id)
    WINDOW w AS (PARTITION BY d.tenant_id ORDER BY d.day)
)
SELECT s.tenant_id, s.currency, s.mrr, s.before
FROM steps s
WHERE s.day >= %(start)s AND s.day <= %(end)s AND s.currency = s.before_currency AND s.before IS NOT NULL
"""


def revenue_figures(*, today: date | None = None) -> list[RevenueFigures]:
    """MRR, revenue at risk, and this month's churned, expansion and contraction MRR, one entry per
    currency, the largest MRR first (three queries). A change of currency is neither expansion nor
    contraction."""
    today = today or timezone.localdate()
    with connection.cursor() as cursor:
        cursor.execute(_REVENUE_NOW_SQL)
        now = rows_as_dicts(cursor)
        cursor.execute(_REVENUE_MOVES_SQL, {"start": today.replace(day=1), "end": today})
        moves = rows_as_dicts(cursor)
        ids = sorted({r["tenant_id"] for r in now} | {r["tenant_id"] for r in moves})
        cursor.execute(_CUSTOMERS_AT_RISK_SQL, {"ids": ids})
        at_risk = {r["tenant_id"]: bool(r["at_risk"]) for r in rows_as_dicts(cursor)}
    zero = Decimal("0.00")
    sums: dict[str, dict[str, Any]] = {}

    def of(currency: str) -> dict[str, Any]:
        return sums.setdefault(
            currency,
            {"mrr": zero, "customers": 0, "at_risk_mrr": zero, "at_risk_customers": 0, "churned_mrr": zero,
             "expansion_mrr": zero, "contraction_mrr": zero},
        )  # fmt: skip

    for r in now:
        if r["tenant_id"] not in at_risk:
            continue  # not a customer (internal, test, demo)
        f = of(r["currency"])
        f["mrr"] += r["mrr"]
        f["customers"] += 1 if r["mrr"] > 0 else 0
        if at_risk[r["tenant_id"]]:
            f["at_risk_mrr"] += r["mrr"]
            f["at_risk_customers"] += 1 if r["mrr"] > 0 else 0
    for r in moves:
        if r["tenant_id"] not in at_risk:
            continue
        f = of(r["currency"])
        if r["mrr"] == 0 and r["before"] > 0:
            f["churned_mrr"] += r["before"]
        elif r["before"] > 0 and r["mrr"] > r["before"]:
            f["expansion_mrr"] += r["mrr"] - r["before"]
        elif 0 < r["mrr"] < r["before"]:
            f["contraction_mrr"] += r["before"] - r["mrr"]
    figures = [RevenueFigures(currency=currency, **values) for currency, values in sums.items()]
    return sorted(figures, key=lambda f: (-f.mrr, f.currency))


def tenant_metrics_get(*, tenant_id: str) -> TenantMetrics | None:
    return TenantMetrics.objects.select_related("tenant").filter(tenant_id=tenant_id).first()


# The day summaries (customers/metrics/daily.py, the one daily formula) of one tenant, by their
# primary key (tenant_id, day), with the days without events filled in.
_SERIES_SQL = f"""
WITH days AS (
    SELECT generate_series(%(d)s::date - %(n)s - 5, %(d)s::date, interval '1 day')::date AS day
)
SELECT days.day, COALESCE(s.events, 0) AS events, COALESCE(s.engagement, 0) AS engagement,
       sum(COALESCE(s.engagement, 0)) OVER (ORDER BY days.day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS rolling,
       COALESCE(s.friction_score, 0) AS friction
FROM days
LEFT JOIN {SUMMARY_TABLE} s ON s.tenant_id = %(t)s AND s.day = days.day
ORDER BY days.day
"""


def tenant_daily_series(*, tenant_id: str, as_of: date, days: int = SERIES_DAYS) -> list[dict[str, Any]]:
    """One entry per UTC day for the ``days`` days ending on ``as_of`` (oldest first), from the rollups.

    ``engagement`` is that day's weighted engagement; ``stickiness_7d`` the
    7-day rolling sum ending that day (what stickiness_7d was on that day);
    ``friction_score`` that day's capped friction (FRICTION_CAPS_TEXT
    in customers/metrics/friction.py); ``events`` the real events that day. One query.
    """
    with connection.cursor() as cursor:
        cursor.execute(_SERIES_SQL, {"t": tenant_id, "d": as_of, "n": days})
        rows = rows_as_dicts(cursor)
    first_day = as_of - timedelta(days=days - 1)
    return [
        {
            "day": row["day"],
            "events": int(row["events"]),
            "engagement": round(float(row["engagement"]), 4),
            "stickiness_7d": round(float(row["rolling"]), 4),
            "friction_score": round(float(row["friction"]), 4),
        }
        for row in rows
        if row["day"] >= first_day
    ]


# --- Console pages ---------------------------------------------------------------------------------
# Reads the console pages need beyond the API's. Same rule: caches and rollups, a constant number
# of queries; the one read of ops_events (the timeline) is a keyset probe of ops_events_tenant_time.


def stickiness_series(*, tenant_id: str, as_of: date, days: int = SERIES_DAYS) -> list[dict[str, Any]]:
    """``tenant_daily_series`` for the last ``days`` days plus ``stickiness_30d`` per day.

    ``stickiness_30d`` on a day is the 30-day rolling engagement ending that day
    divided by 4.3, exactly how the engine computes the tenant's stickiness_30d
    on ``as_of`` (so the last point equals ``TenantMetrics.stickiness_30d``).
    One query: the series is read 29 days longer and the 30-day window is summed here.
    """
    extended = tenant_daily_series(tenant_id=tenant_id, as_of=as_of, days=days + 29)
    engagement = [point["engagement"] for point in extended]
    out = []
    for index, point in enumerate(extended[29:], start=29):
        window = sum(engagement[index - 29 : index + 1])
        out.append({**point, "stickiness_30d": round(window / STICKINESS_30D_WEEKLY_DIVISOR, 4)})
    return out


def tenant_change_days(*, tenant_id: str, as_of: date, days: int = SERIES_DAYS) -> list[tuple[date, str]]:
    """Change events (category ``change``: policy, model, rate limit, plan) per UTC day
    over the ``days`` days ending on ``as_of``, oldest first, from the day rollup. One query."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT r.day, r.event_type FROM ops_rollup_tenant_day r
            JOIN events_eventtype et ON et.name = r.event_type AND et.category = 'change'
            WHERE r.tenant_id = %(t)s AND r.day > %(d)s::date - %(n)s AND r.day <= %(d)s::date
            ORDER BY r.day, r.event_type
            """,
            {"t": tenant_id, "d": as_of, "n": days},
        )
        return [(row["day"], row["event_type"]) for row in rows_as_dicts(cursor)]


def real_users_daily(*, as_of: date, days: int = 30) -> list[tuple[date, int]]:
    """Distinct users with at least one real event on each UTC day, for the ``days`` days
    ending on ``as_of`` (oldest first; 0 on a day without any).

    Read from the engine's per-user day rollup (``ops_rollup_tenant_user_day``), never
    from ops_events: cost is users x days. A user active in two tenants counts once.
    Not the north star's DAU, which is a rolling 24 hours of interaction types only.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT d.day::date AS day, count(DISTINCT r.user_id) AS users
            FROM generate_series(%(d)s::date - %(n)s + 1, %(d)s::date, interval '1 day') AS d(day)
            LEFT JOIN ops_rollup_tenant_user_day r ON r.day = d.day::date
            GROUP BY d.day ORDER BY d.day
            """,
            {"d": as_of, "n": days},
        )
        return [(row["day"], int(row["users"])) for row in rows_as_dicts(cursor)]


@dataclass(frozen=True)
class MetricsFreshness:
    """When the cached metrics were last computed; ``computed_at`` None means never."""

    computed_at: datetime | None
    now: datetime
    stale_after: timedelta

    @property
    def age_minutes(self) -> float | None:
        return None if self.computed_at is None else (self.now - self.computed_at).total_seconds() / 60

    @property
    def minutes_ago(self) -> int | None:
        age = self.age_minutes
        return None if age is None else max(0, int(age))

    @property
    def stale_after_minutes(self) -> int:
        return int(self.stale_after.total_seconds() // 60)

    @property
    def is_stale(self) -> bool:
        return self.computed_at is None or self.now - self.computed_at > self.stale_after

    @property
    def level(self) -> str:
        """For the stale-metrics alert: ``unknown`` (never computed), ``ok``, ``warning``
        (stale) or ``critical`` (four times the threshold)."""
        if self.computed_at is None:
            return "unknown"
        age = self.now - self.computed_at
        return "critical" if age > 4 * self.stale_after else "warning" if age > self.stale_after else "ok"


def _metrics_computed_at() -> datetime | None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT GREATEST((SELECT max(computed_at) FROM ops_tenant_metrics),
                            (SELECT GREATEST(last_incremental_at, last_full_at) FROM ops_metrics_state LIMIT 1))
                   AS computed_at
            """
        )
        return value_of(cursor, "computed_at")


def metrics_freshness(*, now: datetime | None = None, per_recompute: bool = False) -> MetricsFreshness:
    """The latest of: the newest ``ops_tenant_metrics.computed_at`` and the engine state's last run
    (a run over zero tenants writes no metrics row but is still a run). One query.

    ``per_recompute`` (pages) reuses the answer until the next recompute: the
    newest ``computed_at`` is a scan of every tenant's row (it has no index, so a
    recompute's stamp of every row stays a HOT update), and only a run moves it.
    """
    computed_at = (
        cached_per_recompute("metrics_computed_at", _metrics_computed_at) if per_recompute else _metrics_computed_at()
    )
    return MetricsFreshness(
        computed_at=computed_at,
        now=now or timezone.now(),
        stale_after=timedelta(minutes=settings.METRICS_STALE_AFTER_MINUTES),
    )


@dataclass(frozen=True)
class TimelineEvent:
    id: int
    occurred_at: datetime
    event_type: str
    user_id: str
    session_id: str
    is_real: bool
    exclusion_reason: str
    friction_signal: str
    friction_weight: float

    @property
    def is_friction(self) -> bool:
        return self.friction_weight > 0

    @property
    def cursor(self) -> str:
        return f"{self.occurred_at.isoformat()}~{self.id}"


@dataclass(frozen=True)
class TimelinePage:
    events: list[TimelineEvent]
    next_cursor: str | None  # pass as ``before`` for the next (older) page; None on the last page


def timeline_cursor_parse(value: str) -> tuple[datetime, int]:
    """``<occurred_at ISO>~<id>`` -> (occurred_at, id); ValueError when malformed."""
    stamp, _, pk = value.rpartition("~")
    occurred_at = datetime.fromisoformat(stamp)
    if occurred_at.tzinfo is None:
        raise ValueError("the cursor's time has no time zone")
    return occurred_at, int(pk)


def tenant_events_page(*, tenant_id: str, before: str | None = None, limit: int = 50) -> TimelinePage:
    """A tenant's events, newest first, ``limit`` at a time (keyset pagination).

    ``before`` is the ``next_cursor`` of the previous page. The WHERE keeps
    ``occurred_at <= t`` on its own so the scan starts at the cursor in the
    ``(tenant_id, occurred_at)`` index, whatever the tenant's history: no OFFSET.
    Raises ValueError for a malformed cursor.
    """
    params: dict[str, Any] = {"t": tenant_id, "limit": limit + 1}
    keyset = ""
    if before:
        params["at"], params["pk"] = timeline_cursor_parse(before)
        keyset = "AND e.occurred_at <= %(at)s AND (e.occurred_at < %(at)s OR e.id < %(pk)s)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT e.id, e.occurred_at, e.event_type, e.user_id, e.session_id, e.is_real, e.exclusion_reason,
                   e.friction_signal, COALESCE(et.friction_weight, 0) AS friction_weight
            FROM ops_events e LEFT JOIN events_eventtype et ON et.name = e.event_type
            WHERE e.tenant_id = %(t)s {keyset}
            ORDER BY e.occurred_at DESC, e.id DESC
            LIMIT %(limit)s
            """,
            params,
        )
        rows = [TimelineEvent(**row) for row in rows_as_dicts(cursor)]
    more = len(rows) > limit
    rows = rows[:limit]
    return TimelinePage(events=rows, next_cursor=rows[-1].cursor if more else None)


def at_risk_counts_by_level() -> dict[str, int]:
    """Customers at risk per level (one aggregate query over the cache)."""
    rows = (
        TenantMetrics.objects.filter(risk_level__isnull=False, tenant__kind=TenantKind.CUSTOMER)
        .values("risk_level")
        .annotate(n=Count("tenant_id"))
    )
    counts = {level: 0 for level in ("critical", "high", "medium")}
    counts.update({row["risk_level"]: row["n"] for row in rows})
    return counts
