"""Events -> rollups: the fold (incremental, full rebuild, per-tenant refold) and the rollups' upkeep.

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
ingest_xid, so the incremental path cannot see it: the customers app registers
a hook with the events app (customers/apps.py) that rebuilds those tenants
(``recompute.tenant_rollups_rebuild``).

Retention: day-level rollups keep ROLLUP_RETENTION_DAYS (90) days, so each run's
metrics pass costs tenants x days, never history; first/last times per type
(last seen, last core-value event, age) and the activity per week and month in
TIME_ZONE (lifecycle and cohort retention, customers/metrics/lifecycle.py) are kept
for all history.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import Any

from django.conf import settings
from django.db import connection

from core.flavour import flavour
from core.rows import row_as_dict, rows_as_dicts
from customers.metrics.daily import SUMMARY_ADDITIVE, SUMMARY_COLUMNS, SUMMARY_PARAMS, SUMMARY_TABLE, summary_select
from customers.metrics.lifecycle import PERIOD_TABLE, cluster_period_statements, period_fold_sql
from customers.metrics.scope import dirty_table, dirty_tenants_add, dirty_tenants_analyze
from customers.models import MetricsState

# Day-level rollups keep this many days (the 60-day series plus its 6-day rolling lead-in,
# with margin); older rows are pruned once a day and never folded again. This bounds the
# rollups, and so the cost of every metrics run, by tenants x days rather than by history.
# Per-type first/last times (ops_rollup_tenant_span) cover all history.
ROLLUP_RETENTION_DAYS = 90
DAY_ROLLUP_TABLES = (
    "ops_rollup_tenant_day",
    "ops_rollup_tenant_user_day",
    "ops_rollup_session_friction",
    SUMMARY_TABLE,
)
# Memory for the fold's hash aggregates (per run, SET LOCAL): with the default 4MB
# a full rebuild spills its grouping sets to disk and sorts several times.
FOLD_WORK_MEM = "256MB"

# The registry's friction types (friction_weight > 0): the session rollup keeps only these.
# events_eventtype is a few dozen rows; read whole.
FRICTION_TYPES_SQL = "SELECT name FROM events_eventtype WHERE friction_weight > 0 ORDER BY name"
SNAPSHOT_SQL = "SELECT pg_current_snapshot()::text AS snapshot, pg_snapshot_xmin(pg_current_snapshot())::text AS xmin"
# The events an incremental fold reads: committed in its snapshot, not folded before (the module's
# docstring). Uses index: ops_events_ingest_xid. The upper bound is implied by the visibility test
# (nothing at or above the snapshot's xmax is visible); written out, it closes the range, so a planner
# without statistics on ingest_xid (a table or shard not analyzed since its rows arrived) still reads
# the range through the index instead of scanning the whole table in every fold statement.
NEW_EVENTS_WHERE = (
    "e.ingest_xid >= %(watermark)s::text::xid8"
    " AND e.ingest_xid < pg_snapshot_xmax(%(snapshot)s::pg_snapshot)"
    " AND pg_visible_in_snapshot(e.ingest_xid, %(snapshot)s::pg_snapshot)"
    " AND NOT (e.ingest_xid = ANY(%(folded)s::text[]::xid8[]))"
)


# The UTC day of each event, as a bucket start: date_bin on the timestamptz is ~30% cheaper
# per row than (occurred_at AT TIME ZONE 'UTC')::date, and the
# conversion to a date runs once per group instead of once per event. "day >= start_day"
# is written as "occurred_at >= start_day 00:00 UTC" for the same reason.
BUCKET_SQL = "date_bin('1 day', e.occurred_at, '2000-01-01T00:00:00Z'::timestamptz)"
DAY_SQL = "(g.bucket AT TIME ZONE 'UTC')::date"
# The selected events per tenant, type and UTC day, with their first and last times ({selected}: the fold's predicate).
DAY_AGGREGATE_SQL = f"""SELECT g.tenant_id, g.event_type, {DAY_SQL} AS day, g.n, g.first_at, g.last_at
    FROM (SELECT e.tenant_id, e.event_type, {BUCKET_SQL} AS bucket, count(*) AS n,
                 min(e.occurred_at) AS first_at, max(e.occurred_at) AS last_at
          FROM ops_events e WHERE {{selected}}
          GROUP BY e.tenant_id, e.event_type, {BUCKET_SQL}) g"""
# How a fold adds to the day counts, the spans and the day summaries (each table's primary key).
DAY_COUNTS_UPSERT = (
    "ON CONFLICT (tenant_id, event_type, day) DO UPDATE SET value = ops_rollup_tenant_day.value + EXCLUDED.value"
)
SPANS_UPSERT = (
    "ON CONFLICT (tenant_id, event_type) DO UPDATE SET first_at = LEAST(ops_rollup_tenant_span.first_at, "
    "EXCLUDED.first_at), last_at = GREATEST(ops_rollup_tenant_span.last_at, EXCLUDED.last_at)"
)
SUMMARY_UPSERT = (
    "ON CONFLICT (tenant_id, day) DO UPDATE SET "
    + ", ".join(f"{c} = {SUMMARY_TABLE}.{c} + EXCLUDED.{c}" for c in SUMMARY_ADDITIVE)
    + ", friction_score = EXCLUDED.friction_score"
)


def real_events_predicate(alias: str = "e") -> str:
    """The one SQL predicate that decides which events count in every metric.

    The north-star issue owns the meaning of ``is_real`` (classification and
    reclassification); the metrics engine only ever reads it through here.
    """
    return f"{alias}.is_real"


def fold_statements(
    where: str, *, track_xids: bool, into_empty: bool = False, mark_dirty: bool = False
) -> list[tuple[str, str]]:
    """The statements that add the selected events to the rollups: (name, sql) pairs.

    (Long on purpose: it is the fold's SQL written out statement by statement, each read whole.)

    Three aggregate passes, each a plain GROUP BY (faster than one pass
    with GROUPING SETS, whose five hash tables spill):
    friction counts per session for the friction types only, tenant/type/day
    counts (and from them the first/last times per type and the day summaries,
    whose friction score reads the session counts folded just before), and
    user/day counts; a fourth counts them per week and month in TIME_ZONE (lifecycle and
    cohort retention, kept for all history). Every pass uses the same ``where`` so they fold the same rows: the
    snapshot filter, not the statement's own snapshot, decides what is folded.
    With ``mark_dirty`` the tenants of the folded events go into the run's
    dirty set (scope.py; their metrics are recomputed, the others' are not).

    Rows are inserted in (day, tenant) order: the layout rows arriving day by day
    have, which a rebuild (hash aggregates come out in no order) must reproduce.
    A day's upserts then touch only that day's pages, and a tenant's window is a
    few rows on each of its days' pages instead of every row on a page of its own
    (BENCHMARKS.md, "history 10x denser", has what it changed).
    """

    def upsert(clause: str) -> str:
        # Into just-truncated tables every key is new: skip the speculative-insertion check.
        return "" if into_empty else clause

    selected = f"{real_events_predicate('e')} AND e.tenant_id <> '' AND {where}"
    mark = (
        f", ins_dirty AS (INSERT INTO {dirty_table()} (tenant_id) SELECT DISTINCT tenant_id FROM agg ON CONFLICT DO NOTHING)"
        if mark_dirty
        else ""
    )
    bucket, day = BUCKET_SQL, DAY_SQL
    recent = "e.occurred_at >= %(start_at)s::timestamptz"
    if track_xids:
        # New events are found by their xid; the window's start only filters them. As a bare comparison it
        # is also an access path, and statistics taken before the newest days arrived make it look selective
        # (tests/customers/test_fold_plan.py): IS TRUE keeps it a filter (occurred_at is never null).
        recent = f"({recent}) IS TRUE"
    summary_source = "(SELECT tenant_id, event_type, day, n FROM agg WHERE day >= %(start_day)s::date)"
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
    {DAY_AGGREGATE_SQL.format(selected=selected)}
), ins_day AS (
    INSERT INTO ops_rollup_tenant_day (tenant_id, event_type, day, value)
    SELECT tenant_id, event_type, day, n FROM agg WHERE day >= %(start_day)s::date ORDER BY day, tenant_id
    {upsert(DAY_COUNTS_UPSERT)}
), ins_span AS (
    INSERT INTO ops_rollup_tenant_span (tenant_id, event_type, first_at, last_at)
    SELECT tenant_id, event_type, min(first_at), max(last_at) FROM agg GROUP BY tenant_id, event_type ORDER BY tenant_id
    {upsert(SPANS_UPSERT)}
), ins_summary AS (
    INSERT INTO {SUMMARY_TABLE} ({SUMMARY_COLUMNS})
    {summary_select(summary_source, friction="join" if into_empty else "lateral")} ORDER BY g.day, g.tenant_id
    {upsert(SUMMARY_UPSERT)}
){mark}
SELECT COALESCE(sum(n), 0) AS folded FROM agg
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
        ("tenant_period", period_fold_sql(selected, upsert=not into_empty)),
    ]
    if flavour().subplans_through_coordinator and not into_empty:
        # The statements a distributed plan needs: each pushed down whole (cluster_day_statements).
        statements[3:4] = cluster_period_statements(selected)
        statements[1:2] = cluster_day_statements(selected, mark_dirty=mark_dirty)
    if track_xids:
        # The folded xids at or above the next watermark: few (only transactions that
        # committed while an older one was still running), found through the ingest_xid index.
        statements.append(
            (
                "tracked_xids",
                f"SELECT DISTINCT e.ingest_xid::text AS xid FROM ops_events e "
                f"WHERE {selected} AND e.ingest_xid >= %(new_watermark)s::text::xid8",
            )
        )
    return statements


def cluster_day_statements(selected: str, *, mark_dirty: bool) -> list[tuple[str, str]]:
    """On Citus, what the ``tenant_day`` statement does, as statements each shard runs on its own.

    There a data-modifying CTE is planned as subplans: the aggregate comes to the coordinator and
    each insert sends its rows back to the shards. Written as one INSERT ... SELECT per table from
    the shard's own events (grouped by tenant, the distribution column), each is pushed down whole
    and nothing crosses the coordinator; the events (an ingest_xid range) are read once per table.
    A full rebuild keeps the single statement: it reads every event, and once is cheaper.
    ``folded`` is answered with the period rows' ``first_day`` (lifecycle.cluster_period_statements).
    """
    agg = f"({DAY_AGGREGATE_SQL.format(selected=selected)})"
    summary_source = f"(SELECT a.tenant_id, a.event_type, a.day, a.n FROM {agg} a WHERE a.day >= %(start_day)s::date)"
    statements = [
        (
            "tenant_day_counts",
            f"""
INSERT INTO ops_rollup_tenant_day (tenant_id, event_type, day, value)
SELECT a.tenant_id, a.event_type, a.day, a.n FROM {agg} a WHERE a.day >= %(start_day)s::date ORDER BY a.day, a.tenant_id
{DAY_COUNTS_UPSERT}
""",
        ),
        (
            "tenant_span",
            f"""
INSERT INTO ops_rollup_tenant_span (tenant_id, event_type, first_at, last_at)
SELECT a.tenant_id, a.event_type, min(a.first_at), max(a.last_at) FROM {agg} a GROUP BY a.tenant_id, a.event_type
ORDER BY a.tenant_id
{SPANS_UPSERT}
""",
        ),
        (
            "day_summary",
            f"""
INSERT INTO {SUMMARY_TABLE} ({SUMMARY_COLUMNS})
{summary_select(summary_source, friction="lateral")} ORDER BY g.day, g.tenant_id
{SUMMARY_UPSERT}
""",
        ),
    ]
    if mark_dirty:
        statements.append(
            (
                "dirty",
                f"INSERT INTO {dirty_table()} (tenant_id) SELECT DISTINCT e.tenant_id FROM ops_events e "
                f"WHERE {selected} ON CONFLICT DO NOTHING",
            )
        )
    return statements


def fold_run(
    where: str,
    params: dict[str, Any],
    *,
    track_xids: bool,
    into_empty: bool = False,
    mark_dirty: bool = False,
    changes: dict[str, Any] | None = None,
) -> tuple[int, list[int]]:
    """Run the fold statements; returns (events folded, folded xids at or above the new watermark).

    ``changes`` (optional) receives ``first_day``: the earliest local day folded (lifecycle reads it)."""
    folded = 0
    xids: list[int] = []
    start_day = params.get("start_day")
    params = {
        **params,
        **SUMMARY_PARAMS,
        # Weeks and months are the founder's calendar (ops_rollup_tenant_period).
        "tz": settings.TIME_ZONE,
        "start_at": datetime.combine(start_day, dt_time.min, tzinfo=UTC) if start_day else None,
    }
    with connection.cursor() as cursor:
        for name, sql in fold_statements(where, track_xids=track_xids, into_empty=into_empty, mark_dirty=mark_dirty):
            cursor.execute(sql, params)
            if name in ("tenant_day", "tenant_period"):
                # On Citus the period statement answers both (fold_statements).
                answer = row_as_dict(cursor)
                folded = int(answer.get("folded", folded))
                if "first_day" in answer and changes is not None:
                    changes["first_day"] = answer["first_day"]
            elif name == "tracked_xids":
                xids = [int(row["xid"]) for row in rows_as_dicts(cursor)]
    return folded, xids


# Each rollup table and its primary key (the one unique constraint the fold upserts on).
ROLLUP_KEYS: dict[str, tuple[str, ...]] = {
    "ops_rollup_tenant_day": ("tenant_id", "event_type", "day"),
    "ops_rollup_tenant_span": ("tenant_id", "event_type"),
    "ops_rollup_session_friction": ("tenant_id", "day", "session_key", "event_type"),
    "ops_rollup_tenant_user_day": ("tenant_id", "user_id", "day"),
    SUMMARY_TABLE: ("tenant_id", "day"),
    PERIOD_TABLE: ("tenant_id", "period", "start_day"),
}
ROLLUP_TABLES = tuple(ROLLUP_KEYS)


def friction_types_current() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(FRICTION_TYPES_SQL)
        return [row["name"] for row in rows_as_dicts(cursor)]


def snapshot_take() -> tuple[str, int]:
    """The snapshot this run folds up to, and its xmin (the next watermark)."""
    with connection.cursor() as cursor:
        cursor.execute(SNAPSHOT_SQL)
        row = row_as_dict(cursor)
    # On Citus, a transaction this snapshot calls finished may still be committing on a worker.
    flavour().prepared_transactions_settle()
    return row["snapshot"], int(row["xmin"])


def state_lock() -> MetricsState:
    state, _ = MetricsState.objects.select_for_update().get_or_create(id=1)
    return state


def rollups_start_day(as_of: date) -> date:
    return as_of - timedelta(days=ROLLUP_RETENTION_DAYS - 1)


def rollups_prune(state: MetricsState, *, start_day: date) -> None:
    """Drop day-level rows older than the retention window; runs once per new day."""
    if state.rollups_start_day == start_day:
        return
    with connection.cursor() as cursor:
        for table in DAY_ROLLUP_TABLES:
            cursor.execute(f"DELETE FROM {table} WHERE day < %s", [start_day])
    state.rollups_start_day = start_day


def rollups_fold_new(state: MetricsState, *, friction_types: list[str], changes: dict[str, Any] | None = None) -> int:
    """Fold the events committed since the last run into the rollups; advance the state.
    ``changes`` receives what lifecycle needs to know of the fold (``fold_run``)."""
    snapshot, xmin = snapshot_take()
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{FOLD_WORK_MEM}'")
    folded, new_xids = fold_run(
        NEW_EVENTS_WHERE,
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
        changes=changes,
    )
    dirty_tenants_analyze()  # the lifecycle's statements read the set next
    still_tracked = {int(x) for x in state.folded_xids if int(x) >= xmin}
    state.folded_xids = sorted(still_tracked | {int(x) for x in new_xids})
    state.watermark_xid = xmin
    return int(folded)


def rollups_fold_all(state: MetricsState, *, friction_types: list[str]) -> int:
    """Empty the rollups and fold every event visible now; reset the state.

    Bulk load, then index (PostgreSQL's advice for populating a table): the
    primary keys are dropped, the rows inserted, and the keys rebuilt in one
    sort each, which is several times faster than maintaining the btrees row by
    row. All of it is transactional; TRUNCATE already holds the tables'
    exclusive lock, so readers of the rollups wait for the commit and never see
    them empty or unindexed.
    """
    snapshot, xmin = snapshot_take()
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{FOLD_WORK_MEM}'")
        cursor.execute(f"SET LOCAL maintenance_work_mem = '{FOLD_WORK_MEM}'")
        cursor.execute(f"TRUNCATE {', '.join(ROLLUP_TABLES)}")
        for table in ROLLUP_TABLES:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
        folded, new_xids = fold_run(
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


def rollups_refold_tenants(state: MetricsState, tenant_ids: list[str]) -> int:
    """Rebuild the rollups of some tenants from exactly the events already folded (state unchanged)."""
    dirty_tenants_add(tenant_ids)
    with connection.cursor() as cursor:
        for table in ROLLUP_TABLES:
            cursor.execute(f"DELETE FROM {table} WHERE tenant_id = ANY(%s)", [tenant_ids])
    folded, _ = fold_run(
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
