"""Rollups -> TenantSignals: one set-based query measures every tenant (or the run's dirty ones).

All windows end on ``as_of``, inclusive (7 days = as_of-6 .. as_of). The query reads
the day summaries (daily.py, at most one row per tenant and day), the per-type spans
(first/last times, all history), the day counts of the friction and change types
only, and the user/day counts; the registry's roles decide which types are the core
value (vocabulary.py). Rows are read by column name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import connection

from core.flavour import flavour
from core.rows import rows_as_dicts, timestamps_load_natively
from customers.metrics.daily import SUMMARY_TABLE
from customers.metrics.peers import PeerLevels
from customers.metrics.scope import dirty_tenants_sql, tenant_rows_sql
from customers.metrics.vocabulary import Vocabulary, vocabulary_current
from customers.models import TenantKind

# The friction and change types of the registry (a few dozen rows; read whole).
SIGNAL_TYPES_SQL = """
SELECT COALESCE(array_agg(name) FILTER (WHERE friction_weight > 0), '{}') AS friction_types,
       COALESCE(array_agg(name) FILTER (WHERE category = 'change'), '{}') AS change_types
FROM events_eventtype
"""


@dataclass
class TenantSignals:
    """What the SQL measured for one tenant (all windows end on ``as_of``, inclusive)."""

    tenant_id: str
    name: str = ""  # the tenant's name ({account} in texts; the id when empty)
    kind: str = TenantKind.CUSTOMER
    monthly_event_limit: int | None = None
    events_7d: int = 0
    events_prev_7d: int = 0
    events_30d: int = 0
    engagement_7d: float = 0.0  # sum(count * engagement_weight) over 7 days
    engagement_30d: float = 0.0  # the same over 30 days (not yet / 4.3)
    friction_weighted_score: float = 0.0
    friction_events_7d: int = 0
    top_friction_type: str = ""
    policy_blocks_7d: int = 0
    failures_7d: int = 0
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    # The last core-value event (the registry's core_value types): its type and time.
    last_investigation: str = ""
    last_investigation_at: datetime | None = None
    champion_user_id: str = ""
    champion_prior_events: int = 0
    champion_prior_total: int = 0
    champion_recent_events: int = 0
    changes: list[tuple[str, date]] = field(default_factory=list)  # (event type, day), last 60 days
    stickiness_peak_day: date | None = None
    # Level and shape of use over the rollups' 90 days (peers.py compares the level with the other customers).
    events_28d: int = 0
    events_prev_28d: int = 0  # the 28 days before the last 28
    events_90d: int = 0
    active_days_28d: int = 0  # days with at least one real event
    active_days_90d: int = 0
    friction_events_28d: int = 0
    # The account's first 28 days the rollups hold (its first weeks when it is young): events and days covered.
    early_events: int = 0
    early_days: int = 0
    core_events_7d: int = 0
    core_events_28d: int = 0
    core_events_90d: int = 0
    users_7d: int = 0
    users_28d: int = 0
    # Events in the last 14 days: the recent use features.py sets against the account's own earlier level.
    events_14d: int = 0
    # Where the account's 28-day level stands among the customers' (0 = the lowest, 1 = the highest);
    # None with too few customers to compare with (set by peers.py, not by the query).
    peer_level_pct: float | None = None
    # The console's earliest event of any account (peers.py): an account first seen in the record's first weeks
    # may be older than its first event says.
    record_start: date | None = None


# The longest window the signals read: the rollups' whole retention (fold.py keeps 90 days).
SIGNAL_WINDOW_DAYS = 90

# The account's champion: the user with more than half of the events before the last 7 days.
CHAMPION_SQL = """SELECT DISTINCT ON (u.tenant_id) u.tenant_id, u.user_id, u.prior, u.recent, t.total
    FROM users u JOIN (SELECT tenant_id, sum(prior) AS total FROM users GROUP BY tenant_id) t USING (tenant_id)
    WHERE u.prior * 2 > t.total
    ORDER BY u.tenant_id, u.prior DESC, u.user_id"""
# The same on Citus, the total a window over the tenant's users: there the CTEs read more than once
# (daily, users) are inlined (NOT MATERIALIZED) so the whole query runs on each shard, and the join of
# users to its own aggregate kept Citus from pushing it down. Materialized, each was a distributed
# subplan whose rows (every dirty tenant's days, every user) went through the coordinator to every shard.
CLUSTER_CHAMPION_SQL = """SELECT DISTINCT ON (u.tenant_id) u.tenant_id, u.user_id, u.prior, u.recent, u.total
    FROM (SELECT tenant_id, user_id, prior, recent, sum(prior) OVER (PARTITION BY tenant_id) AS total FROM users) u
    WHERE u.prior * 2 > u.total
    ORDER BY u.tenant_id, u.prior DESC, u.user_id"""

# Every rollup is reached through its primary key, which starts with tenant_id (tenant_rows_sql):
# the day summaries and the day counts by (tenant_id, ..., day), the spans by (tenant_id, event_type),
# the user days by (tenant_id, user_id, day); customers_tenant by its primary key.
SIGNALS_SQL = """
WITH et AS (
    SELECT name, friction_weight AS fw FROM events_eventtype
), daily AS {inline}(
    -- At most one row per tenant and day: the day summaries (weights and caps applied at fold time).
    SELECT * FROM {daily} s
), agg AS (
    SELECT tenant_id,
           sum(events) FILTER (WHERE day > %(d)s::date - 7) AS events_7d,
           sum(events) FILTER (WHERE day > %(d)s::date - 14 AND day <= %(d)s::date - 7) AS events_prev_7d,
           sum(events) FILTER (WHERE day > %(d)s::date - 30) AS events_30d,
           sum(engagement) FILTER (WHERE day > %(d)s::date - 7) AS engagement_7d,
           sum(engagement) FILTER (WHERE day > %(d)s::date - 30) AS engagement_30d,
           sum(friction_events) FILTER (WHERE day > %(d)s::date - 7) AS friction_events_7d,
           sum(policy_blocks) FILTER (WHERE day > %(d)s::date - 7) AS policy_blocks_7d,
           sum(failures) FILTER (WHERE day > %(d)s::date - 7) AS failures_7d,
           -- Each day's score is already capped per session (5) and per day (10).
           sum(friction_score) FILTER (WHERE day > %(d)s::date - 7) AS friction_score,
           sum(events) FILTER (WHERE day > %(d)s::date - 28) AS events_28d,
           sum(events) FILTER (WHERE day > %(d)s::date - 56 AND day <= %(d)s::date - 28) AS events_prev_28d,
           sum(events) AS events_90d,
           count(*) FILTER (WHERE day > %(d)s::date - 28 AND events > 0) AS active_days_28d,
           count(*) FILTER (WHERE events > 0) AS active_days_90d,
           sum(friction_events) FILTER (WHERE day > %(d)s::date - 28) AS friction_events_28d,
           sum(events) FILTER (WHERE day > %(d)s::date - 14) AS events_14d
    FROM daily GROUP BY tenant_id
), early AS (
    -- The first 28 days of the account the rollups hold: its first weeks while it is young. A window over
    -- each tenant's days, not a join back to agg: the backtest's private copies have no fresh statistics,
    -- and a misestimated join of the two turned into a nested loop over every day row.
    SELECT x.tenant_id, sum(x.events) FILTER (WHERE x.day < x.first_day + 28) AS early_events,
           least(28, %(d)s::date - min(x.first_day) + 1) AS early_days
    FROM (SELECT tenant_id, day, events, min(day) OVER (PARTITION BY tenant_id) AS first_day FROM daily) x
    GROUP BY x.tenant_id
), core AS (
    SELECT r.tenant_id,
           sum(r.value) FILTER (WHERE r.day > %(d)s::date - 7) AS core_7d,
           sum(r.value) FILTER (WHERE r.day > %(d)s::date - 28) AS core_28d,
           sum(r.value) AS core_90d
    FROM {core_days} r GROUP BY r.tenant_id
), top_friction AS (
    -- Per-type counts only where the type matters: friction types over 7 days.
    SELECT DISTINCT ON (tenant_id) tenant_id, event_type
    FROM (SELECT r.tenant_id, r.event_type, sum(r.value * et.fw) AS w, sum(r.value) AS n
          FROM {friction_days} r JOIN et ON et.name = r.event_type
          GROUP BY r.tenant_id, r.event_type) x
    ORDER BY tenant_id, w DESC, n DESC, event_type
), changes AS (
    SELECT r.tenant_id, jsonb_agg(jsonb_build_array(r.event_type, r.day) ORDER BY r.day, r.event_type) AS changes
    FROM {change_days} r GROUP BY r.tenant_id
), span AS (
    SELECT tenant_id, min(first_at) AS first_seen_at, max(last_at) AS last_seen_at,
           max(last_at) FILTER (WHERE event_type = ANY(%(core_value_types)s::text[])) AS last_investigation_at,
           (array_agg(event_type ORDER BY last_at DESC, event_type) FILTER (WHERE event_type = ANY(%(core_value_types)s::text[])))[1]
               AS last_investigation
    FROM {spans} s GROUP BY tenant_id
), eng_roll AS (
    -- numeric: exact, and its sum slides over the frame (float8's sum has no inverse, so
    -- PostgreSQL re-adds the whole 7-day frame for every row).
    SELECT tenant_id, day,
           sum(engagement) OVER (PARTITION BY tenant_id ORDER BY day
                                 RANGE BETWEEN INTERVAL '6 days' PRECEDING AND CURRENT ROW) AS rolling
    FROM daily WHERE engagement > 0 AND day > %(d)s::date - 36
), peak AS (
    -- The latest day on which the 7-day stickiness was at its 30-day high.
    SELECT DISTINCT ON (tenant_id) tenant_id, day AS peak_day FROM eng_roll
    WHERE day > %(d)s::date - 30 ORDER BY tenant_id, rolling DESC, day DESC
), users AS {inline}(
    SELECT tenant_id, user_id,
           COALESCE(sum(value) FILTER (WHERE day <= %(d)s::date - 7), 0) AS prior,
           COALESCE(sum(value) FILTER (WHERE day > %(d)s::date - 7), 0) AS recent,
           COALESCE(sum(value) FILTER (WHERE day > %(d)s::date - 28), 0) AS last_28d
    FROM {user_days} u GROUP BY tenant_id, user_id
), user_counts AS (
    SELECT tenant_id, count(*) FILTER (WHERE recent > 0) AS users_7d, count(*) FILTER (WHERE last_28d > 0) AS users_28d
    FROM users GROUP BY tenant_id
), champion AS (
    {champion}
)
SELECT t.tenant_id, t.name, t.kind, t.monthly_event_limit,
       COALESCE(agg.events_7d, 0) AS events_7d, COALESCE(agg.events_prev_7d, 0) AS events_prev_7d,
       COALESCE(agg.events_30d, 0) AS events_30d,
       COALESCE(agg.engagement_7d, 0) AS engagement_7d, COALESCE(agg.engagement_30d, 0) AS engagement_30d,
       COALESCE(agg.friction_score, 0) AS friction_weighted_score,
       COALESCE(agg.friction_events_7d, 0) AS friction_events_7d,
       COALESCE(top_friction.event_type, '') AS top_friction_type,
       COALESCE(agg.policy_blocks_7d, 0) AS policy_blocks_7d, COALESCE(agg.failures_7d, 0) AS failures_7d,
       span.first_seen_at, span.last_seen_at, COALESCE(span.last_investigation, '') AS last_investigation,
       span.last_investigation_at,
       COALESCE(champion.user_id, '') AS champion_user_id, COALESCE(champion.prior, 0) AS champion_prior_events,
       COALESCE(champion.total, 0) AS champion_prior_total, COALESCE(champion.recent, 0) AS champion_recent_events,
       COALESCE(changes.changes, '[]'::jsonb) AS changes, peak.peak_day AS stickiness_peak_day,
       COALESCE(agg.events_28d, 0) AS events_28d, COALESCE(agg.events_prev_28d, 0) AS events_prev_28d,
       COALESCE(agg.events_90d, 0) AS events_90d, COALESCE(agg.active_days_28d, 0) AS active_days_28d,
       COALESCE(agg.active_days_90d, 0) AS active_days_90d, COALESCE(agg.friction_events_28d, 0) AS friction_events_28d,
       COALESCE(early.early_events, 0) AS early_events, COALESCE(early.early_days, 0) AS early_days,
       COALESCE(core.core_7d, 0) AS core_events_7d, COALESCE(core.core_28d, 0) AS core_events_28d,
       COALESCE(core.core_90d, 0) AS core_events_90d,
       COALESCE(user_counts.users_7d, 0) AS users_7d, COALESCE(user_counts.users_28d, 0) AS users_28d,
       COALESCE(agg.events_14d, 0) AS events_14d
FROM customers_tenant t
LEFT JOIN agg ON agg.tenant_id = t.tenant_id
LEFT JOIN top_friction ON top_friction.tenant_id = t.tenant_id
LEFT JOIN changes ON changes.tenant_id = t.tenant_id
LEFT JOIN span ON span.tenant_id = t.tenant_id
LEFT JOIN peak ON peak.tenant_id = t.tenant_id
LEFT JOIN champion ON champion.tenant_id = t.tenant_id
LEFT JOIN early ON early.tenant_id = t.tenant_id
LEFT JOIN core ON core.tenant_id = t.tenant_id
LEFT JOIN user_counts ON user_counts.tenant_id = t.tenant_id{where_scope_t}
"""


def _signals_sql(*, scope: str) -> str:
    """The signals query for every tenant (``scope="all"``), or for the run's dirty ones (scope.py)."""

    window = "x.day > %(d)s::date - {days} AND x.day <= %(d)s::date"
    server = flavour()
    return SIGNALS_SQL.format(
        inline=server.cte_inline_hint,
        # A join of the users to their own aggregate is a subplan through the coordinator.
        champion=CLUSTER_CHAMPION_SQL if server.subplans_through_coordinator else CHAMPION_SQL,
        daily=tenant_rows_sql(SUMMARY_TABLE, window.format(days=SIGNAL_WINDOW_DAYS), scope=scope),
        core_days=tenant_rows_sql(
            "ops_rollup_tenant_day",
            "x.event_type = ANY(%(core_value_types)s::text[]) AND " + window.format(days=SIGNAL_WINDOW_DAYS),
            scope=scope,
        ),
        friction_days=tenant_rows_sql(
            "ops_rollup_tenant_day",
            "x.event_type = ANY(%(friction_types)s::text[]) AND " + window.format(days=7),
            scope=scope,
        ),
        change_days=tenant_rows_sql(
            "ops_rollup_tenant_day",
            "x.event_type = ANY(%(change_types)s::text[]) AND " + window.format(days=60),
            scope=scope,
        ),
        spans=tenant_rows_sql("ops_rollup_tenant_span", "true", scope=scope),
        user_days=tenant_rows_sql("ops_rollup_tenant_user_day", window.format(days=37), scope=scope),
        where_scope_t="" if scope == "all" else f"\nWHERE {dirty_tenants_sql('t.tenant_id')}",
    )


def tenant_signals_measure(
    *, as_of: date, scope: str = "all", vocabulary: Vocabulary | None = None, peers: PeerLevels | None = None
) -> list[TenantSignals]:
    """One set-based query over the rollups (last 60 days) for every tenant, or the run's dirty ones.

    ``scope``: "all", or how to reach the dirty tenants ("dirty" or "lateral", see tenant_rows_sql).
    ``vocabulary``: the registry's roles (read now when not given); its core-value types
    decide ``last_investigation`` (the last core-value event).
    ``peers``: the customers' levels to place each account among (peers.py); None: not placed.
    """
    vocabulary = vocabulary or vocabulary_current()
    with connection.cursor() as cursor:
        cursor.execute(SIGNAL_TYPES_SQL)
        types = rows_as_dicts(cursor)[0]
        timestamps_load_natively(cursor)  # three per tenant
        cursor.execute(
            _signals_sql(scope=scope),
            {
                "d": as_of,
                "core_value_types": list(vocabulary.core_value),
                "friction_types": list(types["friction_types"]),
                "change_types": list(types["change_types"]),
            },
        )
        rows = rows_as_dicts(cursor)
    measured = [_signals_from_row(row) for row in rows]
    if peers is not None:
        for signals in measured:
            signals.peer_level_pct = peers.level(active_days=signals.active_days_28d, events=signals.events_28d)
            signals.record_start = peers.record_start
    return measured


INT_LEVEL_FIELDS = (
    "events_28d", "events_prev_28d", "events_90d", "active_days_28d", "active_days_90d", "friction_events_28d",
    "early_events", "early_days", "core_events_7d", "core_events_28d", "core_events_90d", "users_7d", "users_28d",
    "events_14d",
)  # fmt: skip


def _signals_from_row(row: dict[str, object]) -> TenantSignals:
    changes = row["changes"] if isinstance(row["changes"], list) else json.loads(str(row["changes"]))
    return TenantSignals(
        tenant_id=str(row["tenant_id"]),
        name=str(row["name"] or ""),
        kind=str(row["kind"]),
        monthly_event_limit=row["monthly_event_limit"],  # type: ignore[arg-type]
        events_7d=int(row["events_7d"]),  # type: ignore[call-overload]
        events_prev_7d=int(row["events_prev_7d"]),  # type: ignore[call-overload]
        events_30d=int(row["events_30d"]),  # type: ignore[call-overload]
        engagement_7d=float(row["engagement_7d"]),  # type: ignore[arg-type]
        engagement_30d=float(row["engagement_30d"]),  # type: ignore[arg-type]
        friction_weighted_score=round(float(row["friction_weighted_score"]), 4),  # type: ignore[arg-type]
        friction_events_7d=int(row["friction_events_7d"]),  # type: ignore[call-overload]
        top_friction_type=str(row["top_friction_type"]),
        policy_blocks_7d=int(row["policy_blocks_7d"]),  # type: ignore[call-overload]
        failures_7d=int(row["failures_7d"]),  # type: ignore[call-overload]
        first_seen_at=row["first_seen_at"],  # type: ignore[arg-type]
        last_seen_at=row["last_seen_at"],  # type: ignore[arg-type]
        last_investigation=str(row["last_investigation"]),
        last_investigation_at=row["last_investigation_at"],  # type: ignore[arg-type]
        champion_user_id=str(row["champion_user_id"]),
        champion_prior_events=int(row["champion_prior_events"]),  # type: ignore[call-overload]
        champion_prior_total=int(row["champion_prior_total"]),  # type: ignore[call-overload]
        champion_recent_events=int(row["champion_recent_events"]),  # type: ignore[call-overload]
        changes=[(t, date.fromisoformat(d)) for t, d in changes],  # type: ignore[union-attr]
        stickiness_peak_day=row["stickiness_peak_day"],  # type: ignore[arg-type]
        **{name: int(row[name]) for name in INT_LEVEL_FIELDS},  # type: ignore[call-overload]
    )
