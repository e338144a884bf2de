"""The customer metrics engine: events -> rollups -> ``ops_tenant_metrics``.

Flow (one direction): ``ops_events`` (authoritative) is folded into the rollup
tables (customers/models.py) by ``metrics_recompute``; the same run then
computes one ``ops_tenant_metrics`` row per tenant from the rollups with
set-based SQL, assembles the risk components and interventions in Python
(pure functions below, one pass over tenants) and writes every row with one
``INSERT ... ON CONFLICT`` statement. Everything happens in ONE transaction,
so a page never sees half a run and a crash leaves the previous state, which
the next run simply continues from.

Incremental and correct with late commits
-----------------------------------------
Every event row carries ``ingest_xid`` (the inserting transaction's xid8). A
run takes a snapshot S and folds the rows that are visible in S and not folded
yet: ``ingest_xid >= watermark AND pg_visible_in_snapshot(ingest_xid, S) AND
ingest_xid <> ALL(folded_xids)``. It then sets ``watermark = xmin(S)`` (every
transaction below it had finished) and keeps in ``folded_xids`` the xids at or
above the new watermark that it already folded. A transaction that commits
late (its xid was still running at S) is not visible in S, so it is folded by
a later run; one that commits after a higher xid was folded is not lost under
a plain high-water mark. A long transaction elsewhere in the cluster does not
stall the fold; it only keeps ``folded_xids`` from shrinking until it ends.
Cost is proportional to the rows in ``[watermark, ...)`` (btree on ingest_xid).

Reclassification (is_real flips) updates rows in place and keeps their
ingest_xid, so the incremental path cannot see it: whoever flips ``is_real``
must call ``tenant_rollups_rebuild(tenant_ids=...)`` (or ``metrics_recompute(full=True)``).

Retention: day-level rollups keep ROLLUP_RETENTION_DAYS (90) days, so each run's
metrics pass costs tenants x days, never history; first/last times per type
(last seen, last investigation, age) are kept for all history.

Hooks: settings.METRICS_POST_RECOMPUTE_HOOKS (dotted paths) run after the
metrics are written, inside the same transaction, as
hook(as_of=, computed_at=, dirty_only=). With ``dirty_only`` the run rewrote
only the rows of the tenants in its ``metrics_dirty`` temp table (see
``dirty_tenants_sql``); every other tenant's rollups, row and settings are as
the previous run left them, so a hook may limit its work to the dirty ones.
Playbook matching plugs in there and may raise a tenant's risk_level.

Overlap: every writer takes the same transaction-scoped advisory lock. The
periodic run uses ``pg_try_advisory_xact_lock`` and skips (logged) when another
run holds it; rebuilds wait for it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from customers.churn import churned_tenants_settle
from customers.models import MetricsState, RiskLevel, Tenant, TenantKind

logger = logging.getLogger(__name__)

# Advisory lock key shared by every writer of the rollups and ops_tenant_metrics
# (an arbitrary constant; it only has to be unique within this database).
METRICS_LOCK_KEY = 7_104_202_604

# --- Formula constants (spec: friction-intelligence-and-founder-actions) ----------------
STICKINESS_30D_WEEKLY_DIVISOR = 4.3
FRICTION_CAP_PER_SESSION = 5.0
FRICTION_CAP_PER_DAY = 10.0
INVESTIGATION_TYPES = ("INCIDENT_VIEWED", "REPLAY_COMPLETED")
POLICY_FRICTION_TYPE = "POLICY_BLOCK_REPEAT"
POLICY_FRICTION_THRESHOLD = 3  # "3+ POLICY_BLOCK_REPEAT in 7 days"
SYSTEM_FAILURE_THRESHOLD = 3  # REPLAY_FAILED / EXPORT_FAILED (friction_signal system_issue) in 7 days
INVESTIGATION_GAP_DAYS = 7
EMAIL_DELTA_THRESHOLD = 0.5  # "stickiness drop > 50%"
CLIFF_RATIO = 0.5  # this week below half of last week ...
CLIFF_MIN_PREVIOUS_WEEK = 10  # ... and last week had at least this many real events (noise guard)
CHAMPION_MIN_EVENTS = 10  # the prior 30 days must hold at least this many user events
PRICING_USAGE_PCT = 90.0  # events_30d at or above 90% of Tenant.monthly_event_limit
RECENT_CHANGE_DAYS = 14
DECAY_CORRELATION_MAX_DAYS = 14
SERIES_DAYS = 60
# Day-level rollups keep this many days (the 60-day series plus its 6-day rolling lead-in,
# with margin); older rows are pruned once a day and never folded again. This bounds the
# rollups, and so the cost of every metrics run, by tenants x days rather than by history.
# Per-type first/last times (ops_rollup_tenant_span) cover all history.
ROLLUP_RETENTION_DAYS = 90
# The day summaries (customers.models.TenantDaySummary): one row per tenant and day, weights applied.
SUMMARY_TABLE = "ops_rollup_tenant_day_summary"
DAY_ROLLUP_TABLES = (
    "ops_rollup_tenant_day",
    "ops_rollup_tenant_user_day",
    "ops_rollup_session_friction",
    SUMMARY_TABLE,
)
# Memory for the fold's hash aggregates (per run, SET LOCAL): with the default 4MB
# a full rebuild spills its grouping sets to disk and sorts several times.
FOLD_WORK_MEM = "256MB"

# Risk levels: risk_signal_strength thresholds (below MEDIUM = not at risk).
RISK_CRITICAL = 60.0
RISK_HIGH = 40.0
RISK_MEDIUM = 20.0

# Labels for change events in recent_changes ("policy_change 3 days ago").
CHANGE_LABELS = {
    "POLICY_CHANGED": "policy_change",
    "MODEL_SWITCHED": "model_switch",
    "RATE_LIMIT_CHANGED": "rate_limit_change",
    "PLAN_CHANGED": "plan_change",
}
PRIORITY_ORDER = {"immediate": 0, "today": 1, "this_week": 2}


def real_events_predicate(alias: str = "e") -> str:
    """The one SQL predicate that decides which events count in every metric.

    The north-star issue owns the meaning of ``is_real`` (classification and
    reclassification); the metrics engine only ever reads it through here.
    """
    return f"{alias}.is_real"


# =========================================================================================
# Rollups
# =========================================================================================
SUMMARY_COLUMNS = "tenant_id, day, events, engagement, friction_events, policy_blocks, failures, friction_score"
_SUMMARY_PARAMS = {
    "policy_type": POLICY_FRICTION_TYPE,
    "session_cap": FRICTION_CAP_PER_SESSION,
    "day_cap": FRICTION_CAP_PER_DAY,
}


def _summary_select(source: str, *, friction: str) -> str:
    """SELECT of ``ops_rollup_tenant_day_summary`` rows from ``source``'s (tenant_id, event_type, day, n) rows.

    The day's friction score comes from its session counts, which must already be
    folded: ``friction="lateral"`` looks up each (tenant, day) of the result by the
    session rollup's primary key (a fold's few days), ``"join"`` aggregates the whole
    session rollup once (a rebuild). Weighted sums are numeric, so they are exact.
    """
    session_scores = """SELECT f.tenant_id, f.day, LEAST(sum(f.value * et.friction_weight::numeric), %(session_cap)s::numeric) AS score
              FROM ops_rollup_session_friction f JOIN events_eventtype et ON et.name = f.event_type
              WHERE et.friction_weight > 0{where} GROUP BY f.tenant_id, f.day, f.session_key"""
    if friction == "lateral":
        # COALESCE: a day without friction has no session rows, and LEAST ignores a NULL sum.
        friction_join = f"""LEFT JOIN LATERAL (
    SELECT LEAST(COALESCE(sum(x.score), 0), %(day_cap)s::numeric) AS score
    FROM ({session_scores.format(where=" AND f.tenant_id = g.tenant_id AND f.day = g.day")}) x
) fs ON true"""
    else:
        friction_join = f"""LEFT JOIN (
    SELECT x.tenant_id, x.day, LEAST(sum(x.score), %(day_cap)s::numeric) AS score
    FROM ({session_scores.format(where="")}) x GROUP BY x.tenant_id, x.day
) fs ON fs.tenant_id = g.tenant_id AND fs.day = g.day"""
    return f"""
SELECT g.tenant_id, g.day, g.events, g.engagement, g.friction_events, g.policy_blocks, g.failures, COALESCE(fs.score, 0)
FROM (SELECT s.tenant_id, s.day, sum(s.n) AS events,
             sum(s.n * COALESCE(et.engagement_weight, 0)::numeric) AS engagement,
             COALESCE(sum(s.n) FILTER (WHERE et.friction_weight > 0), 0) AS friction_events,
             COALESCE(sum(s.n) FILTER (WHERE s.event_type = %(policy_type)s), 0) AS policy_blocks,
             COALESCE(sum(s.n) FILTER (WHERE et.friction_signal = 'system_issue'), 0) AS failures
      FROM {source} s LEFT JOIN events_eventtype et ON et.name = s.event_type
      GROUP BY s.tenant_id, s.day) g
{friction_join}"""


def _summary_rebuild() -> None:
    """Rebuild the day summaries from the day counts and session counts (after a registry edit)."""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {SUMMARY_TABLE}")
        cursor.execute(
            f"INSERT INTO {SUMMARY_TABLE} ({SUMMARY_COLUMNS})"
            + _summary_select(
                "(SELECT tenant_id, event_type, day, value AS n FROM ops_rollup_tenant_day)", friction="join"
            )
            + " ORDER BY g.day, g.tenant_id",  # the layout of rows arriving day by day (see _fold_statements)
            _SUMMARY_PARAMS,
        )


def _fold_statements(
    where: str, *, track_xids: bool, into_empty: bool = False, mark_dirty: bool = False
) -> list[tuple[str, str]]:
    """The statements that add the selected events to the rollups: (name, sql) pairs.

    Three aggregate passes, each a plain GROUP BY (measured: several times
    faster than one pass with GROUPING SETS, whose five hash tables spill):
    friction counts per session for the friction types only, tenant/type/day
    counts (and from them the first/last times per type and the day summaries,
    whose friction score reads the session counts folded just before), and
    user/day counts. Every pass uses the same ``where`` so they fold the same rows: the
    snapshot filter, not the statement's own snapshot, decides what is folded.
    With ``mark_dirty`` the tenants of the folded events go into the run's
    ``metrics_dirty`` table (their metrics are recomputed; the others' are not).

    Rows are inserted in (day, tenant) order: the layout rows arriving day by day
    have, which a rebuild (hash aggregates come out in no order) must reproduce.
    A day's upserts then touch only that day's pages, and a tenant's window is a
    few rows on each of its days' pages instead of every row on a page of its own.
    Measured on the bench's dense 10M-event history after a rebuild: the incremental
    run at 10M went from 1.45-1.8x to 1.28-1.49x the same run at 1M (signals query
    0.55-0.8 -> 0.42-0.48 s, the fold's upserts 0.56-0.8 -> 0.43-0.47 s).
    """

    def upsert(clause: str) -> str:
        # Into just-truncated tables every key is new: skip the speculative-insertion check.
        return "" if into_empty else clause

    selected = f"{real_events_predicate('e')} AND e.tenant_id <> '' AND {where}"
    mark = (
        ", ins_dirty AS (INSERT INTO metrics_dirty (tenant_id) SELECT DISTINCT tenant_id FROM agg ON CONFLICT DO NOTHING)"
        if mark_dirty
        else ""
    )
    # The UTC day of each event, as a bucket start: date_bin on the timestamptz is ~30% cheaper
    # per row than (occurred_at AT TIME ZONE 'UTC')::date (measured over 10M events), and the
    # conversion to a date runs once per group instead of once per event. "day >= start_day"
    # is written as "occurred_at >= start_day 00:00 UTC" for the same reason.
    bucket = "date_bin('1 day', e.occurred_at, '2000-01-01T00:00:00Z'::timestamptz)"
    day = "(g.bucket AT TIME ZONE 'UTC')::date"
    recent = "e.occurred_at >= %(start_at)s::timestamptz"
    summary_source = "(SELECT tenant_id, event_type, day, n FROM agg WHERE day >= %(start_day)s::date)"
    summary_add = ", ".join(
        f"{c} = {SUMMARY_TABLE}.{c} + EXCLUDED.{c}"
        for c in ("events", "engagement", "friction_events", "policy_blocks", "failures")
    )
    statements = [
        (
            "session_friction",
            f"""
INSERT INTO ops_rollup_session_friction (tenant_id, day, session_key, event_type, value)
SELECT g.tenant_id, {day}, g.session_key, g.event_type, g.n
FROM (SELECT e.tenant_id, {bucket} AS bucket, COALESCE(NULLIF(e.session_id, ''), 'user:' || e.user_id) AS session_key,
             e.event_type, count(*) AS n
      FROM ops_events e
      WHERE {selected} AND e.event_type = ANY(%(friction_types)s::text[]) AND {recent}
      GROUP BY e.tenant_id, {bucket}, COALESCE(NULLIF(e.session_id, ''), 'user:' || e.user_id), e.event_type) g
ORDER BY g.bucket, g.tenant_id
{upsert("ON CONFLICT (tenant_id, day, session_key, event_type) DO UPDATE SET value = ops_rollup_session_friction.value + EXCLUDED.value")}
""",
        ),
        (
            "tenant_day",
            f"""
WITH agg AS MATERIALIZED (
    SELECT g.tenant_id, g.event_type, {day} AS day, g.n, g.first_at, g.last_at
    FROM (SELECT e.tenant_id, e.event_type, {bucket} AS bucket, count(*) AS n,
                 min(e.occurred_at) AS first_at, max(e.occurred_at) AS last_at
          FROM ops_events e WHERE {selected}
          GROUP BY e.tenant_id, e.event_type, {bucket}) g
), ins_day AS (
    INSERT INTO ops_rollup_tenant_day (tenant_id, event_type, day, value)
    SELECT tenant_id, event_type, day, n FROM agg WHERE day >= %(start_day)s::date ORDER BY day, tenant_id
    {upsert("ON CONFLICT (tenant_id, event_type, day) DO UPDATE SET value = ops_rollup_tenant_day.value + EXCLUDED.value")}
), ins_span AS (
    INSERT INTO ops_rollup_tenant_span (tenant_id, event_type, first_at, last_at)
    SELECT tenant_id, event_type, min(first_at), max(last_at) FROM agg GROUP BY tenant_id, event_type ORDER BY tenant_id
    {upsert("ON CONFLICT (tenant_id, event_type) DO UPDATE SET first_at = LEAST(ops_rollup_tenant_span.first_at, EXCLUDED.first_at), last_at = GREATEST(ops_rollup_tenant_span.last_at, EXCLUDED.last_at)")}
), ins_summary AS (
    INSERT INTO {SUMMARY_TABLE} ({SUMMARY_COLUMNS})
    {_summary_select(summary_source, friction="join" if into_empty else "lateral")} ORDER BY g.day, g.tenant_id
    {upsert(f"ON CONFLICT (tenant_id, day) DO UPDATE SET {summary_add}, friction_score = EXCLUDED.friction_score")}
){mark}
SELECT COALESCE(sum(n), 0) FROM agg
""",
        ),
        (
            "tenant_user_day",
            f"""
INSERT INTO ops_rollup_tenant_user_day (tenant_id, user_id, day, value)
SELECT g.tenant_id, g.user_id, {day}, g.n
FROM (SELECT e.tenant_id, e.user_id, {bucket} AS bucket, count(*) AS n FROM ops_events e
      WHERE {selected} AND e.user_id <> '' AND {recent}
      GROUP BY e.tenant_id, e.user_id, {bucket}) g
ORDER BY g.bucket, g.tenant_id
{upsert("ON CONFLICT (tenant_id, user_id, day) DO UPDATE SET value = ops_rollup_tenant_user_day.value + EXCLUDED.value")}
""",
        ),
    ]
    if track_xids:
        # The folded xids at or above the next watermark: few (only transactions that
        # committed while an older one was still running), found through the ingest_xid index.
        statements.append(
            (
                "tracked_xids",
                f"SELECT DISTINCT e.ingest_xid::text FROM ops_events e "
                f"WHERE {selected} AND e.ingest_xid >= %(new_watermark)s::text::xid8",
            )
        )
    return statements


def _fold_run(
    where: str, params: dict[str, Any], *, track_xids: bool, into_empty: bool = False, mark_dirty: bool = False
) -> tuple[int, list[int]]:
    """Run the fold statements; returns (events folded, folded xids at or above the new watermark)."""
    folded = 0
    xids: list[int] = []
    start_day = params.get("start_day")
    params = {
        **params,
        **_SUMMARY_PARAMS,
        "start_at": datetime.combine(start_day, dt_time.min, tzinfo=UTC) if start_day else None,
    }
    with connection.cursor() as cursor:
        for name, sql in _fold_statements(where, track_xids=track_xids, into_empty=into_empty, mark_dirty=mark_dirty):
            cursor.execute(sql, params)
            if name == "tenant_day":
                folded = int(cursor.fetchone()[0])
            elif name == "tracked_xids":
                xids = [int(row[0]) for row in cursor.fetchall()]
    return folded, xids


# Each rollup table and its primary key (the one unique constraint the fold upserts on).
ROLLUP_KEYS: dict[str, tuple[str, ...]] = {
    "ops_rollup_tenant_day": ("tenant_id", "event_type", "day"),
    "ops_rollup_tenant_span": ("tenant_id", "event_type"),
    "ops_rollup_session_friction": ("tenant_id", "day", "session_key", "event_type"),
    "ops_rollup_tenant_user_day": ("tenant_id", "user_id", "day"),
    SUMMARY_TABLE: ("tenant_id", "day"),
}
ROLLUP_TABLES = tuple(ROLLUP_KEYS)


def _friction_types_current() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM events_eventtype WHERE friction_weight > 0 ORDER BY name")
        return [row[0] for row in cursor.fetchall()]


def _snapshot_take() -> tuple[str, int]:
    """The snapshot this run folds up to, and its xmin (the next watermark)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_snapshot()::text, pg_snapshot_xmin(pg_current_snapshot())::text")
        snapshot, xmin = cursor.fetchone()
    return snapshot, int(xmin)


def _state_lock() -> MetricsState:
    state, _ = MetricsState.objects.select_for_update().get_or_create(id=1)
    return state


def rollups_start_day(as_of: date) -> date:
    return as_of - timedelta(days=ROLLUP_RETENTION_DAYS - 1)


def _rollups_prune(state: MetricsState, *, start_day: date) -> None:
    """Drop day-level rows older than the retention window; runs once per new day."""
    if state.rollups_start_day == start_day:
        return
    with connection.cursor() as cursor:
        for table in DAY_ROLLUP_TABLES:
            cursor.execute(f"DELETE FROM {table} WHERE day < %s", [start_day])
    state.rollups_start_day = start_day


def _rollups_fold_new(state: MetricsState, *, friction_types: list[str]) -> int:
    """Fold the events committed since the last run into the rollups; advance the state."""
    snapshot, xmin = _snapshot_take()
    where = (
        "e.ingest_xid >= %(watermark)s::text::xid8"
        " AND pg_visible_in_snapshot(e.ingest_xid, %(snapshot)s::pg_snapshot)"
        " AND NOT (e.ingest_xid = ANY(%(folded)s::text[]::xid8[]))"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{FOLD_WORK_MEM}'")
    folded, new_xids = _fold_run(
        where,
        {
            "watermark": str(state.watermark_xid),
            "snapshot": snapshot,
            "folded": [str(x) for x in state.folded_xids],
            "new_watermark": str(xmin),
            "friction_types": friction_types,
            "start_day": state.rollups_start_day,
        },
        track_xids=True,
        mark_dirty=True,
    )
    still_tracked = {int(x) for x in state.folded_xids if int(x) >= xmin}
    state.folded_xids = sorted(still_tracked | {int(x) for x in new_xids})
    state.watermark_xid = xmin
    return int(folded)


def _rollups_fold_all(state: MetricsState, *, friction_types: list[str]) -> int:
    """Empty the rollups and fold every event visible now; reset the state.

    Bulk load, then index (PostgreSQL's advice for populating a table): the
    primary keys are dropped, the rows inserted, and the keys rebuilt in one
    sort each, which is several times faster than maintaining the btrees row by
    row. All of it is transactional; TRUNCATE already holds the tables'
    exclusive lock, so readers of the rollups wait for the commit and never see
    them empty or unindexed.
    """
    snapshot, xmin = _snapshot_take()
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{FOLD_WORK_MEM}'")
        cursor.execute(f"SET LOCAL maintenance_work_mem = '{FOLD_WORK_MEM}'")
        cursor.execute(f"TRUNCATE {', '.join(ROLLUP_TABLES)}")
        for table in ROLLUP_TABLES:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
        folded, new_xids = _fold_run(
            "pg_visible_in_snapshot(e.ingest_xid, %(snapshot)s::pg_snapshot)",
            {
                "snapshot": snapshot,
                "new_watermark": str(xmin),
                "friction_types": friction_types,
                "start_day": state.rollups_start_day,
            },
            track_xids=True,
            into_empty=True,
        )
        for table, key in ROLLUP_KEYS.items():
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({', '.join(key)})")
            # Fresh statistics for the metrics query that follows in this transaction;
            # freshly loaded tables otherwise get row estimates off by 100x and spilling plans.
            cursor.execute(f"ANALYZE {table}")
    state.folded_xids = sorted(int(x) for x in new_xids)
    state.watermark_xid = xmin
    state.friction_types = friction_types
    return int(folded)


def _rollups_refold_tenants(state: MetricsState, tenant_ids: list[str]) -> int:
    """Rebuild the rollups of some tenants from exactly the events already folded (state unchanged)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO metrics_dirty (tenant_id) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", [tenant_ids]
        )
        for table in ROLLUP_TABLES:
            cursor.execute(f"DELETE FROM {table} WHERE tenant_id = ANY(%s)", [tenant_ids])
    folded, _ = _fold_run(
        "e.tenant_id = ANY(%(tenants)s) AND (e.ingest_xid < %(watermark)s::text::xid8"
        " OR e.ingest_xid = ANY(%(folded)s::text[]::xid8[]))",
        {
            "tenants": tenant_ids,
            "watermark": str(state.watermark_xid),
            "folded": [str(x) for x in state.folded_xids],
            "friction_types": list(state.friction_types),
            "start_day": state.rollups_start_day,
        },
        track_xids=False,
    )
    return int(folded)


# =========================================================================================
# Risk heuristic and interventions (pure functions over one tenant's measured signals)
# =========================================================================================
@dataclass
class TenantSignals:
    """What the SQL measured for one tenant (all windows end on ``as_of``, inclusive)."""

    tenant_id: str
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
    last_investigation: str = ""
    last_investigation_at: datetime | None = None
    champion_user_id: str = ""
    champion_prior_events: int = 0
    champion_prior_total: int = 0
    champion_recent_events: int = 0
    changes: list[tuple[str, date]] = field(default_factory=list)  # (event type, day), last 60 days
    stickiness_peak_day: date | None = None


@dataclass
class TenantAssessment:
    """Everything written to ops_tenant_metrics for one tenant besides the raw counts."""

    stickiness_7d: float
    stickiness_30d: float
    stickiness_delta: float | None
    has_baseline: bool
    days_since_investigation: int | None
    champion_risk: bool
    cliff: bool
    plan_usage_pct: float | None
    recent_changes: list[str]
    decay_correlation: str | None
    risk_signal_strength: float
    risk_level: str | None
    primary_risk_reason: str
    secondary_signals: list[str]
    risk_components: list[dict[str, Any]]
    interventions: list[dict[str, Any]]


def _days_ago_text(days: int) -> str:
    if days <= 0:
        return "today"
    return "1 day ago" if days == 1 else f"{days} days ago"


def _fmt(value: float) -> str:
    return f"{value:.2f}"


def tenant_assess(signals: TenantSignals, *, as_of: date) -> TenantAssessment:
    """Stickiness, the additive risk heuristic and the interventions for one tenant.

    risk_signal_strength is an ATTENTION RANKING, NOT A PREDICTION: the sum of
    the component points below, capped at 100. Every component is returned,
    with its points, the measured value and a sentence saying why.

    ==================  ====  ==============================================================
    component           max   points
    ==================  ====  ==============================================================
    engagement_decay    45    45 * (1 - stickiness_delta) when there is a baseline and
                              delta < 1; 0 when silent_churn fires and stickiness_7d is 0
                              (the same fact, counted once)
    silent_churn        50    active in the last 7 days, last investigation more than 7
                              days ago: 25 + min(25, 3 * (days_since_investigation - 7))
    never_investigated  20    active in 30 days, older than 7 days, no INCIDENT_VIEWED or
                              REPLAY_COMPLETED ever (the "legal-only" pattern)
    friction            30    min(30, 3 * friction_weighted_score)
    champion_silent     20    one user made > 50% of the user events in the 30 days before
                              the last 7 (at least 10 events) and none in the last 7
    usage_cliff         15    events_7d < 0.5 * events_prev_7d, events_prev_7d >= 10
    ==================  ====  ==============================================================

    Levels: critical >= 60, high >= 40, medium >= 20, else not at risk (null).
    Internal, test and demo tenants are never at risk.
    """
    stickiness_7d = round(signals.engagement_7d, 4)
    stickiness_30d = round(signals.engagement_30d / STICKINESS_30D_WEEKLY_DIVISOR, 4)
    has_baseline = stickiness_30d > 0
    stickiness_delta = round(stickiness_7d / stickiness_30d, 4) if has_baseline else None

    days_since_investigation = (
        (as_of - signals.last_investigation_at.astimezone(UTC).date()).days
        if signals.last_investigation_at is not None
        else None
    )
    age_days = (as_of - signals.first_seen_at.astimezone(UTC).date()).days if signals.first_seen_at is not None else 0
    champion_risk = bool(
        signals.champion_user_id
        and signals.champion_prior_total >= CHAMPION_MIN_EVENTS
        and signals.champion_prior_events * 2 > signals.champion_prior_total
        and signals.champion_recent_events == 0
    )
    cliff = (
        signals.events_prev_7d >= CLIFF_MIN_PREVIOUS_WEEK and signals.events_7d < CLIFF_RATIO * signals.events_prev_7d
    )
    plan_usage_pct = (
        round(100.0 * signals.events_30d / signals.monthly_event_limit, 1) if signals.monthly_event_limit else None
    )

    recent = [(t, d) for t, d in signals.changes if 0 <= (as_of - d).days < RECENT_CHANGE_DAYS]
    recent.sort(key=lambda td: (td[1], td[0]), reverse=True)
    recent_changes = [f"{CHANGE_LABELS.get(t, t.lower())} {_days_ago_text((as_of - d).days)}" for t, d in recent]

    decay_correlation: str | None = None
    if stickiness_delta is not None and stickiness_delta < 1 and signals.stickiness_peak_day is not None:
        decline_start = signals.stickiness_peak_day + timedelta(days=1)
        candidates = [
            (d, t)
            for t, d in signals.changes
            if d <= decline_start and (decline_start - d).days <= DECAY_CORRELATION_MAX_DAYS
        ]
        if candidates:
            d, t = max(candidates)
            gap = (decline_start - d).days
            when = "on the day" if gap == 0 else f"{gap} day{'s' if gap != 1 else ''} before"
            decay_correlation = (
                f"{CHANGE_LABELS.get(t, t.lower())} on {d.isoformat()}, {when} the 7-day stickiness began to fall "
                f"({decline_start.isoformat()})"
            )

    active_7d = signals.events_7d > 0
    components: list[dict[str, Any]] = []

    def component(name: str, points: float, max_points: float, value: Any, explanation: str, reason: str) -> None:
        components.append(
            {
                "signal": name,
                "points": round(points, 1),
                "max_points": max_points,
                "value": value,
                "explanation": explanation,
                # The founder-facing sentence, only for a component that scored.
                "reason": reason if points > 0 else "",
            }
        )

    silent = active_7d and days_since_investigation is not None and days_since_investigation > INVESTIGATION_GAP_DAYS
    silent_points = 25 + min(25, 3 * (days_since_investigation - INVESTIGATION_GAP_DAYS)) if silent else 0.0
    component(
        "silent_churn",
        silent_points,
        50,
        days_since_investigation,
        f"API active ({signals.events_7d} events in 7 days) but no investigation for {days_since_investigation} days: "
        f"25 + min(25, 3 x ({days_since_investigation} - 7))"
        if silent
        else "not triggered: needs activity in the last 7 days and the last investigation more than 7 days ago",
        f"Silent churn: active but no investigation (INCIDENT_VIEWED or REPLAY_COMPLETED) for "
        f"{days_since_investigation} days",
    )

    decay_points = 0.0
    if stickiness_delta is not None and stickiness_delta < 1:
        if silent and stickiness_7d == 0:
            decay_explanation = (
                f"stickiness_delta {_fmt(stickiness_delta)}: engagement stopped entirely, counted once as silent_churn"
            )
        else:
            decay_points = 45 * (1 - stickiness_delta)
            decay_explanation = (
                f"stickiness_delta {_fmt(stickiness_delta)} ({_fmt(stickiness_7d)} this week vs "
                f"{_fmt(stickiness_30d)} weekly over 30 days): 45 x (1 - {_fmt(stickiness_delta)})"
            )
    elif stickiness_delta is None:
        decay_explanation = "not triggered: no 30-day baseline (stickiness_30d is 0)"
    else:
        decay_explanation = f"not triggered: stickiness_delta {_fmt(stickiness_delta)} >= 1 (steady or accelerating)"
    component(
        "engagement_decay",
        decay_points,
        45,
        stickiness_delta,
        decay_explanation,
        f"Engagement decay: stickiness_delta {_fmt(stickiness_delta or 0)} "
        f"(7-day stickiness {_fmt(stickiness_7d)} vs {_fmt(stickiness_30d)} weekly baseline)",
    )

    never = signals.events_30d > 0 and signals.last_investigation_at is None and age_days > INVESTIGATION_GAP_DAYS
    component(
        "never_investigated",
        20.0 if never else 0.0,
        20,
        signals.events_30d if never else None,
        f"{signals.events_30d} events in 30 days, first seen {age_days} days ago, never an INCIDENT_VIEWED or "
        "REPLAY_COMPLETED"
        if never
        else "not triggered: investigated at least once, inactive, or younger than 8 days",
        "Never investigated: uses the product (e.g. certificates only) but never viewed an incident or a replay",
    )

    friction_points = min(30.0, 3 * signals.friction_weighted_score)
    component(
        "friction",
        friction_points,
        30,
        round(signals.friction_weighted_score, 4),
        f"friction_weighted_score {_fmt(signals.friction_weighted_score)} over 7 days "
        f"({signals.friction_events_7d} friction events, top {signals.top_friction_type or '-'}): "
        f"min(30, 3 x {_fmt(signals.friction_weighted_score)})",
        f"Friction: weighted score {_fmt(signals.friction_weighted_score)} in 7 days "
        f"(top {signals.top_friction_type or '-'}, {signals.friction_events_7d} events)",
    )

    component(
        "champion_silent",
        20.0 if champion_risk else 0.0,
        20,
        signals.champion_user_id if champion_risk else None,
        f"user {signals.champion_user_id} made {signals.champion_prior_events} of {signals.champion_prior_total} "
        "user events in the 30 days before the last 7, and none in the last 7"
        if champion_risk
        else "not triggered: no single user made more than half of the events and then went silent",
        f"Champion silent: {signals.champion_user_id} (the main user) has made no events in 7 days",
    )

    component(
        "usage_cliff",
        15.0 if cliff else 0.0,
        15,
        signals.events_7d,
        f"{signals.events_7d} events this week < half of {signals.events_prev_7d} last week"
        if cliff
        else f"not triggered: {signals.events_7d} events this week vs {signals.events_prev_7d} last week "
        f"(needs < half, with at least {CLIFF_MIN_PREVIOUS_WEEK} last week)",
        f"Usage cliff: {signals.events_7d} events this week vs {signals.events_prev_7d} last week",
    )

    is_customer = signals.kind == TenantKind.CUSTOMER
    strength = round(min(100.0, sum(c["points"] for c in components)), 1) if is_customer else 0.0
    if strength >= RISK_CRITICAL:
        risk_level: str | None = RiskLevel.CRITICAL
    elif strength >= RISK_HIGH:
        risk_level = RiskLevel.HIGH
    elif strength >= RISK_MEDIUM:
        risk_level = RiskLevel.MEDIUM
    else:
        risk_level = None

    # Primary reason: the component with the most points (ties: the order above).
    scoring = sorted((c for c in components if c["points"] > 0), key=lambda c: -c["points"])
    primary = scoring[0]["reason"] if scoring and is_customer else ""
    secondary = [c["reason"] for c in scoring[1:]] if is_customer else []
    if is_customer and plan_usage_pct is not None and plan_usage_pct >= PRICING_USAGE_PCT:
        secondary.append(f"Plan usage at {plan_usage_pct:.0f}% of the monthly limit")
    if is_customer and recent_changes:
        secondary.append("Recent changes: " + ", ".join(recent_changes))

    interventions = (
        _interventions_build(
            signals,
            strength=strength,
            risk_level=risk_level,
            primary=primary,
            stickiness_7d=stickiness_7d,
            stickiness_30d=stickiness_30d,
            stickiness_delta=stickiness_delta,
            days_since_investigation=days_since_investigation,
            never_investigated=never,
            plan_usage_pct=plan_usage_pct,
        )
        if is_customer
        else []
    )
    return TenantAssessment(
        stickiness_7d=stickiness_7d,
        stickiness_30d=stickiness_30d,
        stickiness_delta=stickiness_delta,
        has_baseline=has_baseline,
        days_since_investigation=days_since_investigation,
        champion_risk=champion_risk,
        cliff=cliff,
        plan_usage_pct=plan_usage_pct,
        recent_changes=recent_changes,
        decay_correlation=decay_correlation,
        risk_signal_strength=strength,
        risk_level=risk_level,
        primary_risk_reason=primary,
        secondary_signals=secondary,
        risk_components=components,
        interventions=interventions,
    )


def _interventions_build(
    signals: TenantSignals,
    *,
    strength: float,
    risk_level: str | None,
    primary: str,
    stickiness_7d: float,
    stickiness_30d: float,
    stickiness_delta: float | None,
    days_since_investigation: int | None,
    never_investigated: bool,
    plan_usage_pct: float | None,
) -> list[dict[str, Any]]:
    """The spec's intervention table, each with the measured values that triggered it.

    call (immediate): risk_level critical. email (today): stickiness_delta < 0.5.
    feature_help (this_week): no investigation for more than 7 days (or never, while active).
    technical (today): 3+ POLICY_BLOCK_REPEAT or 3+ system failures in 7 days.
    pricing (this_week): events in 30 days at >= 90% of the tenant's monthly_event_limit.
    """
    out: list[dict[str, Any]] = []
    if risk_level == RiskLevel.CRITICAL:
        out.append(
            {
                "intervention_type": "call",
                "priority": "immediate",
                "suggested_action": "Schedule 15-min call with customer",
                "context": primary,
                "expected_outcome": "Learn what changed for them and agree on one concrete next step",
                "triggering_signals": [f"risk_signal_strength {strength:.0f} >= {RISK_CRITICAL:.0f} (critical)"],
            }
        )
    if stickiness_delta is not None and stickiness_delta < EMAIL_DELTA_THRESHOLD:
        out.append(
            {
                "intervention_type": "email",
                "priority": "today",
                "suggested_action": "Send personalized check-in email",
                "context": f"Engagement this week is {stickiness_delta:.0%} of their usual weekly level",
                "expected_outcome": "A reply that explains the drop, or renewed usage within a week",
                "triggering_signals": [
                    f"stickiness_delta {_fmt(stickiness_delta)} < {EMAIL_DELTA_THRESHOLD}",
                    f"stickiness_7d {_fmt(stickiness_7d)} vs stickiness_30d {_fmt(stickiness_30d)}",
                ],
            }
        )
    if days_since_investigation is not None and days_since_investigation > INVESTIGATION_GAP_DAYS:
        out.append(
            {
                "intervention_type": "feature_help",
                "priority": "this_week",
                "suggested_action": "Send feature guide or walkthrough",
                "context": f"Last investigation ({signals.last_investigation}) was {days_since_investigation} days ago",
                "expected_outcome": "An INCIDENT_VIEWED or REPLAY_COMPLETED within 7 days",
                "triggering_signals": [
                    f"no INCIDENT_VIEWED or REPLAY_COMPLETED in {days_since_investigation} days "
                    f"> {INVESTIGATION_GAP_DAYS}"
                ],
            }
        )
    elif never_investigated:
        out.append(
            {
                "intervention_type": "feature_help",
                "priority": "this_week",
                "suggested_action": "Send feature guide or walkthrough",
                "context": "They use the product but have never investigated an incident or a replay",
                "expected_outcome": "A first INCIDENT_VIEWED or REPLAY_COMPLETED within 7 days",
                "triggering_signals": [
                    f"no INCIDENT_VIEWED or REPLAY_COMPLETED ever; {signals.events_30d} events in 30 days"
                ],
            }
        )
    technical: list[str] = []
    if signals.policy_blocks_7d >= POLICY_FRICTION_THRESHOLD:
        technical.append(f"{signals.policy_blocks_7d} {POLICY_FRICTION_TYPE} in 7 days >= {POLICY_FRICTION_THRESHOLD}")
    if signals.failures_7d >= SYSTEM_FAILURE_THRESHOLD:
        technical.append(f"{signals.failures_7d} REPLAY_FAILED/EXPORT_FAILED in 7 days >= {SYSTEM_FAILURE_THRESHOLD}")
    if technical:
        out.append(
            {
                "intervention_type": "technical",
                "priority": "today",
                "suggested_action": "Review and adjust policy config"
                if signals.policy_blocks_7d >= POLICY_FRICTION_THRESHOLD
                else "Investigate the failing replays/exports",
                "context": "Repeated blocks or failures are stopping their workflow",
                "expected_outcome": "No repeated blocks or failures in the next 7 days",
                "triggering_signals": technical,
            }
        )
    if plan_usage_pct is not None and plan_usage_pct >= PRICING_USAGE_PCT:
        out.append(
            {
                "intervention_type": "pricing",
                "priority": "this_week",
                "suggested_action": "Offer a plan that fits their usage before they hit the limit",
                "context": f"{signals.events_30d} events in 30 days on a plan of {signals.monthly_event_limit}",
                "expected_outcome": "An upgrade (expansion) instead of a blocked customer",
                "triggering_signals": [
                    f"events_30d {signals.events_30d} = {plan_usage_pct:.0f}% of monthly_event_limit "
                    f"{signals.monthly_event_limit} >= {PRICING_USAGE_PCT:.0f}%"
                ],
            }
        )
    out.sort(key=lambda i: PRIORITY_ORDER[i["priority"]])
    return out


# =========================================================================================
# ops_tenant_metrics: measure (set-based SQL over rollups), assess (Python), write (one statement)
# =========================================================================================
_SIGNALS_SQL = """
WITH et AS (
    SELECT name, friction_weight AS fw FROM events_eventtype
), daily AS (
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
           sum(friction_score) FILTER (WHERE day > %(d)s::date - 7) AS friction_score
    FROM daily GROUP BY tenant_id
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
           max(last_at) FILTER (WHERE event_type = ANY(%(investigation_types)s)) AS last_investigation_at,
           (array_agg(event_type ORDER BY last_at DESC, event_type) FILTER (WHERE event_type = ANY(%(investigation_types)s)))[1]
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
), users AS (
    SELECT tenant_id, user_id,
           COALESCE(sum(value) FILTER (WHERE day <= %(d)s::date - 7), 0) AS prior,
           COALESCE(sum(value) FILTER (WHERE day > %(d)s::date - 7), 0) AS recent
    FROM {user_days} u GROUP BY tenant_id, user_id
), champion AS (
    SELECT DISTINCT ON (u.tenant_id) u.tenant_id, u.user_id, u.prior, u.recent, t.total
    FROM users u JOIN (SELECT tenant_id, sum(prior) AS total FROM users GROUP BY tenant_id) t USING (tenant_id)
    WHERE u.prior * 2 > t.total
    ORDER BY u.tenant_id, u.prior DESC, u.user_id
)
SELECT t.tenant_id, t.kind, t.monthly_event_limit,
       COALESCE(agg.events_7d, 0), COALESCE(agg.events_prev_7d, 0), COALESCE(agg.events_30d, 0),
       COALESCE(agg.engagement_7d, 0), COALESCE(agg.engagement_30d, 0),
       COALESCE(agg.friction_score, 0), COALESCE(agg.friction_events_7d, 0), COALESCE(top_friction.event_type, ''),
       COALESCE(agg.policy_blocks_7d, 0), COALESCE(agg.failures_7d, 0),
       span.first_seen_at, span.last_seen_at, COALESCE(span.last_investigation, ''), span.last_investigation_at,
       COALESCE(champion.user_id, ''), COALESCE(champion.prior, 0), COALESCE(champion.total, 0),
       COALESCE(champion.recent, 0), COALESCE(changes.changes, '[]'::jsonb), peak.peak_day
FROM customers_tenant t
LEFT JOIN agg ON agg.tenant_id = t.tenant_id
LEFT JOIN top_friction ON top_friction.tenant_id = t.tenant_id
LEFT JOIN changes ON changes.tenant_id = t.tenant_id
LEFT JOIN span ON span.tenant_id = t.tenant_id
LEFT JOIN peak ON peak.tenant_id = t.tenant_id
LEFT JOIN champion ON champion.tenant_id = t.tenant_id{where_scope_t}
"""

_METRICS_COLUMNS: dict[str, str] = {
    # column -> SQL type in jsonb_to_recordset
    "tenant_id": "text",
    "computed_at": "timestamptz",
    "as_of": "date",
    "events_7d": "bigint",
    "events_prev_7d": "bigint",
    "events_30d": "bigint",
    "stickiness_7d": "double precision",
    "stickiness_30d": "double precision",
    "stickiness_delta": "double precision",
    "has_baseline": "boolean",
    "friction_weighted_score": "double precision",
    "friction_events_7d": "bigint",
    "top_friction_type": "text",
    "last_seen_at": "timestamptz",
    "last_investigation": "text",
    "last_investigation_at": "timestamptz",
    "days_since_investigation": "integer",
    "champion_user_id": "text",
    "champion_risk": "boolean",
    "cliff": "boolean",
    "plan_usage_pct": "double precision",
    "recent_changes": "jsonb",
    "decay_correlation": "text",
    "risk_signal_strength": "double precision",
    "risk_level": "text",
    "primary_risk_reason": "text",
    "secondary_signals": "jsonb",
    "risk_components": "jsonb",
    "interventions": "jsonb",
    "inputs_kind": "text",
    "inputs_monthly_event_limit": "bigint",
    "stale": "boolean",
    "unraised": "jsonb",
}


def tenant_rows_sql(table: str, where: str, *, scope: str) -> str:
    """A subquery of ``table``'s rows (alias ``x`` in ``where``) for the tenants a query covers.

    ``scope``: "all" tenants; "dirty", the run's ``metrics_dirty`` tenants by a hash
    semi-join (a scan of the whole table, cheapest when many tenants are dirty); or
    "lateral", the same tenants looked up one by one through ``table``'s primary key,
    which starts with tenant_id (cost proportional to those tenants' rows, not to the
    table: an incremental run's few busy tenants no longer pay for everyone's rows).
    The semi-join is on the temp table, never ``= ANY(array)``, which is searched
    linearly for every row.
    """
    if scope == "lateral":
        # OFFSET 0 keeps the planner from pulling the subquery up into a hash join over the
        # whole table (which it does, and which is what this scope exists to avoid).
        return (
            f"(SELECT x.* FROM metrics_dirty m CROSS JOIN LATERAL "
            f"(SELECT * FROM {table} x WHERE x.tenant_id = m.tenant_id AND {where} OFFSET 0) x)"
        )
    if scope == "dirty":
        where = f"{where} AND {dirty_tenants_sql('x.tenant_id')}"
    return f"(SELECT * FROM {table} x WHERE {where})"


def _signals_sql(*, scope: str) -> str:
    """The signals query for every tenant (``scope="all"``), or for the run's ``metrics_dirty`` ones."""

    window = "x.day > %(d)s::date - {days} AND x.day <= %(d)s::date"
    return _SIGNALS_SQL.format(
        daily=tenant_rows_sql(SUMMARY_TABLE, window.format(days=60), scope=scope),
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


def tenant_signals_measure(*, as_of: date, scope: str = "all") -> list[TenantSignals]:
    """One set-based query over the rollups (last 60 days) for every tenant, or the run's dirty ones.

    ``scope``: "all", or how to reach the dirty tenants ("dirty" or "lateral", see tenant_rows_sql).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(array_agg(name) FILTER (WHERE friction_weight > 0), '{}'),"
            " COALESCE(array_agg(name) FILTER (WHERE category = 'change'), '{}') FROM events_eventtype"
        )
        friction_types, change_types = cursor.fetchone()
        cursor.execute(
            _signals_sql(scope=scope),
            {
                "d": as_of,
                "investigation_types": list(INVESTIGATION_TYPES),
                "friction_types": list(friction_types),
                "change_types": list(change_types),
            },
        )
        rows = cursor.fetchall()
    out = []
    for row in rows:
        changes_raw = row[21] if isinstance(row[21], list) else json.loads(row[21])
        out.append(
            TenantSignals(
                tenant_id=row[0],
                kind=row[1],
                monthly_event_limit=row[2],
                events_7d=int(row[3]),
                events_prev_7d=int(row[4]),
                events_30d=int(row[5]),
                engagement_7d=float(row[6]),
                engagement_30d=float(row[7]),
                friction_weighted_score=round(float(row[8]), 4),
                friction_events_7d=int(row[9]),
                top_friction_type=row[10],
                policy_blocks_7d=int(row[11]),
                failures_7d=int(row[12]),
                first_seen_at=row[13],
                last_seen_at=row[14],
                last_investigation=row[15],
                last_investigation_at=row[16],
                champion_user_id=row[17],
                champion_prior_events=int(row[18]),
                champion_prior_total=int(row[19]),
                champion_recent_events=int(row[20]),
                changes=[(t, date.fromisoformat(d)) for t, d in changes_raw],
                stickiness_peak_day=row[22],
            )
        )
    return out


def _metrics_row(signals: TenantSignals, assessment: TenantAssessment, *, as_of: date, now: datetime) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "tenant_id": signals.tenant_id,
        "computed_at": now.isoformat(),
        "as_of": as_of.isoformat(),
        "events_7d": signals.events_7d,
        "events_prev_7d": signals.events_prev_7d,
        "events_30d": signals.events_30d,
        "stickiness_7d": assessment.stickiness_7d,
        "stickiness_30d": assessment.stickiness_30d,
        "stickiness_delta": assessment.stickiness_delta,
        "has_baseline": assessment.has_baseline,
        "friction_weighted_score": signals.friction_weighted_score,
        "friction_events_7d": signals.friction_events_7d,
        "top_friction_type": signals.top_friction_type,
        "last_seen_at": iso(signals.last_seen_at),
        "last_investigation": signals.last_investigation,
        "last_investigation_at": iso(signals.last_investigation_at),
        "days_since_investigation": assessment.days_since_investigation,
        "champion_user_id": signals.champion_user_id if assessment.champion_risk else "",
        "champion_risk": assessment.champion_risk,
        "cliff": assessment.cliff,
        "plan_usage_pct": assessment.plan_usage_pct,
        "recent_changes": assessment.recent_changes,
        "decay_correlation": assessment.decay_correlation,
        "risk_signal_strength": assessment.risk_signal_strength,
        "risk_level": assessment.risk_level,
        "primary_risk_reason": assessment.primary_risk_reason,
        "secondary_signals": assessment.secondary_signals,
        "risk_components": assessment.risk_components,
        "interventions": assessment.interventions,
        "inputs_kind": signals.kind,
        "inputs_monthly_event_limit": signals.monthly_event_limit,
        "stale": False,
        "unraised": None,
    }


# A tenant's row is stale, besides new events, when it is missing, was computed for another
# day (every window moved), or its tenant's kind or plan limit was edited since.
_STALE_TENANTS_SQL = """
INSERT INTO metrics_dirty (tenant_id)
SELECT t.tenant_id FROM customers_tenant t LEFT JOIN ops_tenant_metrics m ON m.tenant_id = t.tenant_id
WHERE (m.tenant_id IS NULL OR m.stale OR m.as_of IS DISTINCT FROM %(d)s::date OR m.inputs_kind IS DISTINCT FROM t.kind
       OR m.inputs_monthly_event_limit IS DISTINCT FROM t.monthly_event_limit){shard}
ON CONFLICT DO NOTHING
"""


def _tenant_shard_sql(column: str) -> str:
    """The shard of a tenant: a stable hash of its id, modulo the number of shards."""
    return f"(hashtext({column}) & 2147483647) %% %(shards)s = %(shard)s"


def _dirty_tenants_begin() -> None:
    """The run's set of tenants whose metrics must be recomputed (dropped at commit).

    Also switches JIT compilation off for the run's transaction: the signals and
    playbook queries cross ``jit_above_cost`` only when the rollups are large, and then
    spend ~0.1 s per statement compiling expressions that run over a few hundred
    thousand rows (measured at 10M events: 1.74 -> 1.61 s for the signals query of an
    incremental run), a cost that grew with the rollups, not with the new events.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS metrics_dirty (tenant_id text PRIMARY KEY) ON COMMIT DROP")


# Up to this share of the tenants dirty, a run reaches them one by one through primary keys.
DIRTY_LATERAL_MAX_SHARE = 0.25


def dirty_scope() -> str:
    """How a query should reach the run's dirty tenants (tenant_rows_sql): one by one through the
    primary keys while they are a quarter of the tenants or fewer (an incremental run's busy
    few), by one hash join over whole tables above that (a new day's run, where all are dirty)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM metrics_dirty), (SELECT count(*) FROM customers_tenant)")
        dirty, tenants = cursor.fetchone()
    return "lateral" if dirty <= DIRTY_LATERAL_MAX_SHARE * tenants else "dirty"


def dirty_tenants_sql(column: str) -> str:
    """``<column> IN (the tenants whose metrics this run rewrote)``: for hooks called with ``dirty_only``.

    A semi-join on the run's temp table (a hash join), not ``= ANY(array)``, which is
    searched linearly for every row.
    """
    return f"{column} IN (SELECT tenant_id FROM metrics_dirty)"


def registry_key_current() -> str:
    """A fingerprint of everything in the event type registry that the metrics read."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT md5(COALESCE(string_agg(concat_ws(',', name, category, friction_signal, friction_weight,"
            " engagement_weight), ';' ORDER BY name), '')) FROM events_eventtype"
        )
        return str(cursor.fetchone()[0])


def tenant_metrics_write(*, as_of: date, now: datetime, dirty_only: bool = False) -> int:
    """Measure, assess and upsert tenants' rows with one statement; returns how many were recomputed.

    Every tenant by default. With ``dirty_only`` only the tenants in the run's
    ``metrics_dirty`` table (folded events, a rebuild) and the stale ones (see
    _STALE_TENANTS_SQL): any other row was computed from the same rollups, day,
    registry and tenant settings, so recomputing it would write the same values.
    Either way every row's ``computed_at`` becomes ``now``. Call inside the run's
    transaction, after ``_dirty_tenants_begin()``.
    """
    if dirty_only:
        with connection.cursor() as cursor:
            cursor.execute(_STALE_TENANTS_SQL.format(shard=""), {"d": as_of})
    written = _metrics_upsert(as_of=as_of, now=now, dirty_only=dirty_only)
    if dirty_only:
        # The unchanged rows were (re)confirmed by this run: one HOT update, no recompute.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE ops_tenant_metrics SET computed_at = %s WHERE computed_at IS DISTINCT FROM %s", [now, now]
            )
    return written


def _metrics_upsert(*, as_of: date, now: datetime, dirty_only: bool) -> int:
    """Measure, assess and upsert the rows of every tenant (or of those in metrics_dirty)."""
    rows = [
        _metrics_row(s, tenant_assess(s, as_of=as_of), as_of=as_of, now=now)
        for s in tenant_signals_measure(as_of=as_of, scope=dirty_scope() if dirty_only else "all")
    ]
    if not rows:
        return 0
    columns = list(_METRICS_COLUMNS)
    record = ", ".join(f"{c} {t}" for c, t in _METRICS_COLUMNS.items())
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != "tenant_id")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO ops_tenant_metrics ({", ".join(columns)})
            SELECT {", ".join(columns)} FROM jsonb_to_recordset(%s::jsonb) AS x({record})
            ON CONFLICT (tenant_id) DO UPDATE SET {updates}
            """,
            [json.dumps(rows, allow_nan=False)],
        )
    return len(rows)


# =========================================================================================
# The entry points
# =========================================================================================
@dataclass
class RecomputeResult:
    skipped: bool = False
    mode: str = "incremental"
    events_folded: int = 0
    tenants_written: int = 0
    watermark_xid: int = 0
    as_of: date | None = None
    # i17: what the run changed beyond the rows it wrote, for `recompute_metrics` to print:
    # churned customers settled to "not at risk", and what each post-recompute hook returned.
    churned_settled: int = 0
    hook_results: list[Any] = field(default_factory=list)


def _post_recompute_hooks() -> list[Callable[..., Any]]:
    return [import_string(path) for path in getattr(settings, "METRICS_POST_RECOMPUTE_HOOKS", [])]


def _metrics_finish(result: RecomputeResult, *, now: datetime, dirty_only: bool) -> None:
    as_of = now.astimezone(UTC).date()
    result.as_of = as_of
    result.tenants_written = tenant_metrics_write(as_of=as_of, now=now, dirty_only=dirty_only)
    result.churned_settled = churned_tenants_settle()  # i17: churned customers are on no at-risk list
    # Still inside the run's transaction: a hook (e.g. playbook matching, which may raise a
    # tenant's risk_level) commits together with the metrics, so readers never see the gap.
    for hook in _post_recompute_hooks():
        result.hook_results.append(hook(as_of=as_of, computed_at=now, dirty_only=dirty_only))


def metrics_recompute(
    *, full: bool = False, now: datetime | None = None, defer_metrics: bool = False
) -> RecomputeResult:
    """Fold new events into the rollups (or rebuild them with ``full``) and rewrite ops_tenant_metrics.

    Idempotent and safe to run from several workers: a run that finds another
    one in progress returns ``skipped=True`` at once (logged) without writing.
    A new friction event type (weight edited from 0) makes the run a full
    rebuild, because the session rollup only keeps friction types.

    With ``defer_metrics`` (phase 1 of ``metrics_recompute_fanout``) the run
    only folds and marks the tenants to recompute as stale; shard tasks write
    their metrics.
    """
    now = now or timezone.now()
    result = RecomputeResult(mode="full" if full else "incremental")
    with transaction.atomic(), connection.cursor() as cursor:
        # The lock comes first: the state row read below must be the last committed one.
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [METRICS_LOCK_KEY])
        if not cursor.fetchone()[0]:
            logger.info("metrics recompute skipped: another run holds the lock")
            result.skipped = True
            return result
        state = _state_lock()
        _dirty_tenants_begin()
        friction_types = _friction_types_current()
        registry_key = registry_key_current()
        # A weight or category edit changes every tenant's numbers: recompute them all.
        dirty_only = registry_key == state.registry_key
        if not full and not set(friction_types) <= set(state.friction_types) and state.last_full_at is not None:
            logger.info("friction types changed (%s); rebuilding the rollups", friction_types)
            full = True
        start_day = rollups_start_day(now.astimezone(UTC).date())
        if full or state.last_full_at is None:
            state.rollups_start_day = start_day
            result.mode = "full"
            result.events_folded = _rollups_fold_all(state, friction_types=friction_types)
            state.last_full_at = now
            dirty_only = False
        else:
            _rollups_prune(state, start_day=start_day)
            result.events_folded = _rollups_fold_new(state, friction_types=list(state.friction_types))
            state.last_incremental_at = now
            if not dirty_only:
                # The registry's weights or categories changed: the day summaries carry them.
                _summary_rebuild()
        state.last_events_folded = result.events_folded
        state.registry_key = registry_key
        state.save()
        result.watermark_xid = state.watermark_xid
        if defer_metrics:
            result.as_of = now.astimezone(UTC).date()
            result.tenants_written = _tenants_mark_stale(as_of=result.as_of, dirty_only=dirty_only)
        else:
            _metrics_finish(result, now=now, dirty_only=dirty_only)
    logger.info(
        "metrics recompute (%s): %d events folded, %d tenants written",
        result.mode,
        result.events_folded,
        result.tenants_written,
    )
    return result


def tenant_rollups_rebuild(*, tenant_ids: Iterable[str], now: datetime | None = None) -> RecomputeResult:
    """Rebuild the rollups of these tenants from ops_events, then rewrite ops_tenant_metrics.

    Call after anything changes already-folded events in place, above all a
    reclassification that flips ``is_real``. Waits for a running recompute
    (the same advisory lock) instead of skipping: the rebuild must happen.
    Only events the incremental path had already folded are refolded, so the
    watermark stays valid and newer events are still picked up by the next run.
    """
    now = now or timezone.now()
    ids = sorted({str(t) for t in tenant_ids})
    result = RecomputeResult(mode="tenants")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [METRICS_LOCK_KEY])
        state = _state_lock()
        _dirty_tenants_begin()
        if ids:
            result.events_folded = _rollups_refold_tenants(state, ids)
        result.watermark_xid = state.watermark_xid
        registry_key = registry_key_current()
        if registry_key != state.registry_key:
            _summary_rebuild()  # the day summaries carry the registry's weights
        _metrics_finish(result, now=now, dirty_only=registry_key == state.registry_key)
        state.registry_key = registry_key
        # Moves metrics_version(): the cached API answers and pages are rebuilt on the next read.
        state.last_tenants_rebuilt_at = now
        state.save(update_fields=["registry_key", "last_tenants_rebuilt_at"])
    return result


# =========================================================================================
# Fan-out: the metrics pass split by tenant shard across Celery workers
# =========================================================================================
def _tenants_mark_stale(*, as_of: date, dirty_only: bool) -> int:
    """Mark the rows a fanned-out run must recompute (those of tenants without a row are stale anyway).

    Committed with the fold: a shard task that is lost leaves its rows stale,
    and the next run recomputes them, so nothing is skipped for good.
    """
    with connection.cursor() as cursor:
        if dirty_only:
            cursor.execute(_STALE_TENANTS_SQL.format(shard=""), {"d": as_of})
            cursor.execute(
                "UPDATE ops_tenant_metrics SET stale = true"
                " WHERE tenant_id IN (SELECT tenant_id FROM metrics_dirty) AND NOT stale"
            )
        else:
            cursor.execute("UPDATE ops_tenant_metrics SET stale = true")
        cursor.execute(
            "SELECT count(*) FROM customers_tenant t LEFT JOIN ops_tenant_metrics m ON m.tenant_id = t.tenant_id"
            " WHERE m.tenant_id IS NULL OR m.stale"
        )
        return int(cursor.fetchone()[0])


def tenant_metrics_shard_write(*, shard: int, shards: int, now: datetime) -> int:
    """Recompute the stale rows of one tenant shard, in its own transaction; returns how many.

    Shards hold the advisory lock SHARED, so they run side by side on several
    workers while a fold (which needs it exclusively) waits or skips. Each
    tenant belongs to exactly one shard, so shards never write the same row.
    """
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not in 0..{shards - 1}")
    as_of = now.astimezone(UTC).date()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [METRICS_LOCK_KEY])
        _dirty_tenants_begin()
        cursor.execute(
            _STALE_TENANTS_SQL.format(shard=f" AND {_tenant_shard_sql('t.tenant_id')}"),
            {"d": as_of, "shard": shard, "shards": shards},
        )
        return _metrics_upsert(as_of=as_of, now=now, dirty_only=True)


def metrics_fanout_finish(*, now: datetime) -> bool:
    """After the last shard: stamp every row's computed_at and run the post-recompute hooks, once.

    Every shard task calls this; only a call that finds no stale row left and
    wins the compare-and-set on the state row does the work (returns True).
    """
    as_of = now.astimezone(UTC).date()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [METRICS_LOCK_KEY])  # waits for running shards
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM customers_tenant t LEFT JOIN ops_tenant_metrics m ON m.tenant_id = t.tenant_id"
            " WHERE m.tenant_id IS NULL OR m.stale OR m.as_of IS DISTINCT FROM %s)",
            [as_of],
        )
        if cursor.fetchone()[0]:
            return False
        claimed = (
            MetricsState.objects.filter(id=1).exclude(last_fanout_finished_at=now).update(last_fanout_finished_at=now)
        )
        if not claimed:
            return False
        cursor.execute(
            "UPDATE ops_tenant_metrics SET computed_at = %s WHERE computed_at IS DISTINCT FROM %s", [now, now]
        )
        churned_tenants_settle()  # i17: churned customers are on no at-risk list
        # The shards' dirty sets are gone with their transactions: the hooks look at every tenant.
        for hook in _post_recompute_hooks():
            hook(as_of=as_of, computed_at=now, dirty_only=False)
    return True


def metrics_recompute_fanout(
    *, shards: int, dispatch: Callable[[int, int, datetime], None], full: bool = False, now: datetime | None = None
) -> RecomputeResult:
    """Fold (one transaction, as metrics_recompute), then hand each tenant shard to ``dispatch``.

    ``dispatch(shard, shards, now)`` must eventually run
    ``tenant_metrics_shard_write`` and then ``metrics_fanout_finish`` for that
    shard (customers.tasks queues a Celery task per shard). The result is the
    same as one ``metrics_recompute`` run; readers may see shards land a few
    seconds apart (each row is consistent on its own, and ``stale`` says which
    rows are waiting).
    """
    now = now or timezone.now()
    result = metrics_recompute(full=full, now=now, defer_metrics=True)
    if not result.skipped:
        for shard in range(shards):
            dispatch(shard, shards, now)
    return result


def tenant_save(*, tenant: Tenant, kind_changed: bool) -> Tenant:
    """Save a tenant edited by the founder. Flagging it internal, test or demo (or
    back to customer) changes which of its events are real: history is reclassified
    when the save commits, instead of at the next periodic classification pass."""
    from events.services import classification_rules_changed

    with transaction.atomic():
        tenant.save()
        if kind_changed:
            classification_rules_changed()
    return tenant
