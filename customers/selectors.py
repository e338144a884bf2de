"""Reads of the customers app. The console pages and the API both call these,
so a number on a page and in the API can never differ.

Everything here reads the caches only (``ops_tenant_metrics`` and the rollup
tables), never ``ops_events``, with a constant number of queries whatever the
number of tenants.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from customers.models import MetricsState, TenantKind, TenantMetrics
from customers.services import FRICTION_CAP_PER_DAY, FRICTION_CAP_PER_SESSION, SERIES_DAYS

# Sortable columns of the customer list (public names -> model fields).
CUSTOMER_ORDERINGS: dict[str, str] = {
    "tenant_id": "tenant_id",
    "name": "tenant__name",
    "risk_signal_strength": "risk_signal_strength",
    "stickiness_7d": "stickiness_7d",
    "stickiness_30d": "stickiness_30d",
    "stickiness_delta": "stickiness_delta",
    "friction_score": "friction_weighted_score",
    "events_7d": "events_7d",
    "events_30d": "events_30d",
    "days_since_investigation": "days_since_investigation",
    "last_seen_at": "last_seen_at",
}
DEFAULT_CUSTOMER_ORDERING = "-risk_signal_strength"


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
    null values (e.g. stickiness_delta without a baseline) sort last either way.
    Raises ValueError for an unknown ordering.
    """
    filters = filters or CustomerFilters()
    descending = ordering.startswith("-")
    key = ordering.lstrip("-")
    if key not in CUSTOMER_ORDERINGS:
        raise ValueError(f"Unknown ordering '{ordering}'. Use one of: {', '.join(sorted(CUSTOMER_ORDERINGS))}.")
    field_expr = F(CUSTOMER_ORDERINGS[key])
    order = field_expr.desc(nulls_last=True) if descending else field_expr.asc(nulls_last=True)

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
    return qs.order_by(order, "tenant_id")


def tenants_at_risk(*, limit: int = 10) -> list[TenantMetrics]:
    """ "Who should I call today?": customers at risk, strongest signal first (one query).

    Served by the partial index ``ops_tm_at_risk``.
    """
    return list(
        TenantMetrics.objects.select_related("tenant")
        .filter(risk_level__isnull=False, tenant__kind=TenantKind.CUSTOMER)
        .order_by("-risk_signal_strength", "tenant_id")[:limit]
    )


def tenant_metrics_get(*, tenant_id: str) -> TenantMetrics | None:
    return TenantMetrics.objects.select_related("tenant").filter(tenant_id=tenant_id).first()


_SERIES_SQL = """
WITH days AS (
    SELECT generate_series(%(d)s::date - %(n)s - 5, %(d)s::date, interval '1 day')::date AS day
), engagement AS (
    SELECT r.day, sum(r.value * et.engagement_weight) AS v
    FROM ops_rollup_tenant_day r JOIN events_eventtype et ON et.name = r.event_type
    WHERE r.tenant_id = %(t)s AND r.day > %(d)s::date - %(n)s - 6 AND r.day <= %(d)s::date
      AND et.engagement_weight > 0
    GROUP BY r.day
), events AS (
    SELECT day, sum(value) AS n FROM ops_rollup_tenant_day
    WHERE tenant_id = %(t)s AND day > %(d)s::date - %(n)s AND day <= %(d)s::date GROUP BY day
), friction AS (
    SELECT day, LEAST(sum(session_score), %(day_cap)s) AS score
    FROM (SELECT f.day, LEAST(sum(f.value * et.friction_weight), %(session_cap)s) AS session_score
          FROM ops_rollup_session_friction f JOIN events_eventtype et ON et.name = f.event_type
          WHERE f.tenant_id = %(t)s AND f.day > %(d)s::date - %(n)s AND f.day <= %(d)s::date
            AND et.friction_weight > 0
          GROUP BY f.day, f.session_key) s
    GROUP BY day
)
SELECT days.day, COALESCE(events.n, 0), COALESCE(engagement.v, 0),
       sum(COALESCE(engagement.v, 0)) OVER (ORDER BY days.day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW),
       COALESCE(friction.score, 0)
FROM days
LEFT JOIN engagement ON engagement.day = days.day
LEFT JOIN events ON events.day = days.day
LEFT JOIN friction ON friction.day = days.day
ORDER BY days.day
"""


def tenant_daily_series(*, tenant_id: str, as_of: date, days: int = SERIES_DAYS) -> list[dict[str, Any]]:
    """One entry per UTC day for the ``days`` days ending on ``as_of`` (oldest first), from the rollups.

    ``engagement`` is that day's weighted engagement; ``stickiness_7d`` the
    7-day rolling sum ending that day (what stickiness_7d was on that day);
    ``friction_score`` that day's capped friction (sessions capped at 5, the
    day at 10); ``events`` the real events that day. One query.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _SERIES_SQL,
            {
                "t": tenant_id,
                "d": as_of,
                "n": days,
                "session_cap": FRICTION_CAP_PER_SESSION,
                "day_cap": FRICTION_CAP_PER_DAY,
            },
        )
        rows = cursor.fetchall()
    first_day = as_of - timedelta(days=days - 1)
    return [
        {
            "day": day,
            "events": int(events),
            "engagement": round(float(engagement), 4),
            "stickiness_7d": round(float(rolling), 4),
            "friction_score": round(float(friction), 4),
        }
        for day, events, engagement, rolling, friction in rows
        if day >= first_day
    ]


@dataclass(frozen=True)
class MetricsFreshness:
    """How old the cached metrics are. ``computed_at`` is None before the first run."""

    computed_at: datetime | None
    age_minutes: float | None
    is_stale: bool
    level: str  # ok / warning (stale) / critical (four times the threshold) / unknown (never computed)


def metrics_freshness(*, now: datetime | None = None) -> MetricsFreshness:
    """From the engine's state row (one query): when the last recompute finished."""
    now = now or timezone.now()
    state = MetricsState.objects.filter(pk=1).values("last_incremental_at", "last_full_at").first() or {}
    stamps = [at for at in (state.get("last_incremental_at"), state.get("last_full_at")) if at is not None]
    if not stamps:
        return MetricsFreshness(None, None, False, "unknown")
    computed_at = max(stamps)
    age = (now - computed_at).total_seconds() / 60
    threshold = settings.METRICS_STALE_AFTER_MINUTES
    level = "critical" if age > 4 * threshold else "warning" if age > threshold else "ok"
    return MetricsFreshness(computed_at, age, age > threshold, level)


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
