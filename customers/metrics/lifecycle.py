"""Lifecycle: each account's stage per week, written by the recompute, incrementally.

PostHog's lifecycle definitions, applied to accounts instead of persons. "Active in a week"
means at least one real event (the engine's one predicate, fold.real_events_predicate) that
week; weeks are calendar weeks in settings.TIME_ZONE starting on Monday (ISO weeks).

- new: the account's first active week ever;
- returning: active this week and the week before;
- resurrecting: active this week, not the week before, and active some week before that;
- dormant: active the week before, not this week.

A week in which the account was neither active nor active the week before has no stage (no row).
The current week counts as far as it has gone: an account active last week and not yet this
week reads dormant until its next real event.

Churned accounts are not special-cased: the stage describes activity, not the contract. A
churned account that stops using the product is dormant the week after its last real event and
then drops out of the chart; one that comes back with real activity reads resurrecting, the
same "came back" the engine applies to the at-risk lists (customers/churn.py). Internal, test
and demo accounts get stages (their real events are few or none) but are left out of the counts,
like every list of customers.

Incremental: the stages are a function of the weekly activity rows (``ops_rollup_tenant_period``,
folded with the other rollups over all history) and of the current week. A run rewrites the
stages of the tenants whose events it folded (the run's dirty set, scope.py), and of every
tenant when the week turns (``MetricsState.lifecycle_week``) or the rollups were rebuilt; the
per-week counts the chart reads are then recounted from the stages. A test proves incremental
runs leave exactly what a full rebuild leaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection

from core.rows import row_as_dict, rows_as_dicts
from customers.metrics.scope import dirty_scope, dirty_table, tenant_rows_sql
from customers.models import LifecycleStage, MetricsState

PERIOD_TABLE = "ops_rollup_tenant_period"
LIFECYCLE_TABLE = "ops_tenant_lifecycle"
COUNT_TABLE = "ops_lifecycle_count"
# Weeks of counts kept for the chart and the API (the stages themselves cover all history).
LIFECYCLE_WEEKS_MAX = 52
LIFECYCLE_WEEKS_DEFAULT = 12


@dataclass(frozen=True)
class StageText:
    stage: LifecycleStage
    label: str
    meaning: str
    color: str


# The stages in the order the chart stacks them, with what the page, the API and the docs say.
STAGES: tuple[StageText, ...] = (
    StageText(LifecycleStage.NEW, "New", "first real activity ever this week", "#2563eb"),
    StageText(LifecycleStage.RETURNING, "Returning", "active this week and the week before", "#059669"),
    StageText(
        LifecycleStage.RESURRECTING,
        "Resurrecting",
        "active this week after at least one week without real activity",
        "#9333ea",
    ),
    StageText(LifecycleStage.DORMANT, "Dormant", "active the week before, no real activity this week", "#dc2626"),
)


def period_fold_sql(selected: str, *, upsert: bool) -> str:
    """The fold statement of ``ops_rollup_tenant_period``: the selected events per tenant and
    local day (one conversion to TIME_ZONE per event), then summed into weeks and months.

    ``selected`` is the fold's predicate over ``ops_events e``; rows are written in (start, tenant)
    order like the other rollups. Upserts through the table's primary key. Returns ``first_day``, the
    earliest local day it folded (NULL when nothing): the stages before its week did not change."""
    conflict = (
        "ON CONFLICT (tenant_id, period, start_day) DO UPDATE SET value = ops_rollup_tenant_period.value + EXCLUDED.value"
        if upsert
        else ""
    )
    return f"""
WITH d AS MATERIALIZED (
    SELECT e.tenant_id, (e.occurred_at AT TIME ZONE %(tz)s)::date AS day, count(*) AS n
    FROM ops_events e WHERE {selected}
    GROUP BY 1, 2
), ins_week AS (
    INSERT INTO {PERIOD_TABLE} (tenant_id, period, start_day, value)
    SELECT tenant_id, 'week', date_trunc('week', day)::date, sum(n) FROM d GROUP BY 1, 3 ORDER BY 3, 1
    {conflict}
), ins_month AS (
    INSERT INTO {PERIOD_TABLE} (tenant_id, period, start_day, value)
    SELECT tenant_id, 'month', date_trunc('month', day)::date, sum(n) FROM d GROUP BY 1, 3 ORDER BY 3, 1
    {conflict}
)
SELECT min(day) AS first_day FROM d
"""


def cluster_period_statements(selected: str) -> list[tuple[str, str]]:
    """On Citus, what ``period_fold_sql`` does, as statements each shard runs on its own.

    There its data-modifying CTEs are planned as subplans whose rows pass through the coordinator;
    one INSERT ... SELECT grouped by tenant (the distribution column) writes the weeks and the
    months together from the shard's own events (``date_trunc`` of a timestamp: Citus pushes down
    only immutable functions in VALUES, and a local day has no zone left to apply). The last
    statement, named ``tenant_period`` as the single statement is, answers ``first_day`` and, in
    the same pass over the events, ``folded`` (which plain PostgreSQL's ``tenant_day`` answers).
    Upserts through the primary key.
    """
    return [
        (
            "tenant_period_rows",
            f"""
INSERT INTO {PERIOD_TABLE} (tenant_id, period, start_day, value)
SELECT d.tenant_id, p.period, p.start_day, sum(d.n)
FROM (SELECT e.tenant_id, (e.occurred_at AT TIME ZONE %(tz)s)::date AS day, count(*) AS n
      FROM ops_events e WHERE {selected} GROUP BY 1, 2) d
CROSS JOIN LATERAL (VALUES ('week', date_trunc('week', d.day::timestamp)::date),
                           ('month', date_trunc('month', d.day::timestamp)::date)) AS p(period, start_day)
GROUP BY d.tenant_id, p.period, p.start_day ORDER BY p.start_day, d.tenant_id
ON CONFLICT (tenant_id, period, start_day) DO UPDATE SET value = {PERIOD_TABLE}.value + EXCLUDED.value
""",
        ),
        (
            "tenant_period",
            "SELECT count(*) AS folded, min((e.occurred_at AT TIME ZONE %(tz)s)::date) AS first_day "
            f"FROM ops_events e WHERE {selected}",
        ),
    ]


# The stages of the tenants a run covers from the week ``from_week`` on, from all their active weeks
# (lag/lead per tenant over the rows of ops_rollup_tenant_period's primary key, tenant_id first). An
# active week is new, returning or resurrecting; the week after an active week without activity is
# dormant. Weeks after the current one are never written (an event dated ahead of the clock waits for
# its week). ``counted``: a customer account (its stage is in the weekly counts) when written; the
# tenant's primary key, co-located on Citus. Returns what it wrote, for the counts.
LIFECYCLE_WRITE_SQL = """
INSERT INTO ops_tenant_lifecycle (tenant_id, week, stage, counted)
SELECT w.tenant_id, v.week, v.stage, t.kind = 'customer'
FROM (SELECT x.tenant_id, x.start_day,
             lag(x.start_day) OVER (PARTITION BY x.tenant_id ORDER BY x.start_day) AS prev_active,
             lead(x.start_day) OVER (PARTITION BY x.tenant_id ORDER BY x.start_day) AS next_active
      FROM {rows} x) w
CROSS JOIN LATERAL (VALUES
    (w.start_day, CASE WHEN w.prev_active IS NULL THEN 'new'
                       WHEN w.prev_active = w.start_day - 7 THEN 'returning'
                       ELSE 'resurrecting' END),
    (w.start_day + 7, CASE WHEN w.next_active IS DISTINCT FROM w.start_day + 7 THEN 'dormant' END)
) AS v(week, stage)
JOIN customers_tenant t ON t.tenant_id = w.tenant_id
WHERE v.stage IS NOT NULL AND v.week <= %(this_week)s::date AND v.week >= %(from_week)s::date
ORDER BY v.week, w.tenant_id
{returning}
"""
LIFECYCLE_ROWS_WHERE = "x.period = 'week' AND x.start_day <= %(this_week)s::date"
# The dirty tenants' stages from ``from_week`` on go before they are written again (primary key,
# tenant_id first; on Citus a co-located semi-join on the dirty set, {dirty}: scope.dirty_table());
# what they counted comes off the weekly counts in the same statement.
LIFECYCLE_DELETE_DIRTY_SQL = """
WITH gone AS (
    DELETE FROM ops_tenant_lifecycle
    WHERE tenant_id IN (SELECT tenant_id FROM {dirty}) AND week >= %(from_week)s::date
    RETURNING week, stage, counted
)
UPDATE ops_lifecycle_count c SET accounts = c.accounts - g.n
FROM (SELECT week, stage, count(*) AS n FROM gone
      WHERE counted AND week > %(this_week)s::date - 7 * %(weeks)s GROUP BY week, stage) g
WHERE c.week = g.week AND c.stage = g.stage
"""
# Two statements: one is distributed on Citus, the other stays on the coordinator.
LIFECYCLE_TRUNCATE_SQL = f"TRUNCATE {LIFECYCLE_TABLE}"
COUNTS_CLEAR_SQL = "DELETE FROM ops_lifecycle_count"
# Customer accounts per week and stage over the kept weeks, after a full rewrite: one pass over
# ops_tenant_lifecycle (sequential; most of its rows are in the window). A few hundred rows out.
COUNTS_WRITE_SQL = """
INSERT INTO ops_lifecycle_count (week, stage, accounts)
SELECT l.week, l.stage, count(*) FROM ops_tenant_lifecycle l
WHERE l.week > %(this_week)s::date - 7 * %(weeks)s AND l.counted
GROUP BY l.week, l.stage
"""
# After a partial rewrite, the stages just written go onto the counts (their primary key); weeks
# nobody is in any more go, so the table holds what a full recount holds.
COUNTS_ADD_SQL = """
WITH written AS ({write})
INSERT INTO ops_lifecycle_count (week, stage, accounts)
SELECT week, stage, count(*) FROM written
WHERE counted AND week > %(this_week)s::date - 7 * %(weeks)s GROUP BY week, stage
ON CONFLICT (week, stage) DO UPDATE SET accounts = ops_lifecycle_count.accounts + EXCLUDED.accounts
"""
COUNTS_EMPTY_DROP_SQL = "DELETE FROM ops_lifecycle_count WHERE accounts = 0"
DIRTY_ANY_SQL = "SELECT EXISTS (SELECT 1 FROM {dirty}) AS any"
# The chart's and the API's rows: the whole of ops_lifecycle_count's window (its primary key).
COUNTS_READ_SQL = """
SELECT week, stage, accounts FROM ops_lifecycle_count WHERE week > %(this_week)s::date - 7 * %(weeks)s
ORDER BY week, stage
"""


def week_start(moment: datetime) -> date:
    """Monday of the week ``moment`` falls in, in settings.TIME_ZONE."""
    local = moment.astimezone(ZoneInfo(settings.TIME_ZONE)).date()
    return local - timedelta(days=local.weekday())


def lifecycle_refresh(state: MetricsState, *, now: datetime, rebuild: bool, first_day: date | None = None) -> int:
    """Rewrite the stages the run's folds changed and the weekly counts; returns the rows written
    (the stages on a full rewrite, the counts moved up on a partial one).

    ``rebuild``: the rollups were rebuilt (every tenant's activity may differ). Every tenant is
    also rewritten when the week has turned since the last run. Otherwise only the tenants in
    the run's dirty set (scope.py: those whose events were folded or refolded), and only from
    the week of ``first_day`` on (the earliest local day the fold touched: a week's stage reads
    that week, the one before and whether any came before, so earlier weeks cannot change; None:
    all their weeks, as after a refold); with none, nothing is written. The counts move by what
    was deleted and written, so a run's cost follows its tenants' new weeks, not their history.
    Call inside the run's transaction, after the fold. Sets ``state.lifecycle_week``; the caller
    saves the state.
    """
    this_week = week_start(now)
    everyone = rebuild or state.lifecycle_week != this_week
    from_week = date.min if first_day is None else first_day - timedelta(days=first_day.weekday())
    params: dict[str, Any] = {"this_week": this_week, "weeks": LIFECYCLE_WEEKS_MAX, "from_week": from_week}
    with connection.cursor() as cursor:
        if everyone:
            cursor.execute(LIFECYCLE_TRUNCATE_SQL)
            cursor.execute(COUNTS_CLEAR_SQL)
            params["from_week"] = date.min
            rows = tenant_rows_sql(PERIOD_TABLE, LIFECYCLE_ROWS_WHERE, scope="all")
            cursor.execute(LIFECYCLE_WRITE_SQL.format(rows=rows, returning=""), params)
            written = cursor.rowcount
            cursor.execute(COUNTS_WRITE_SQL, params)
        else:
            cursor.execute(DIRTY_ANY_SQL.format(dirty=dirty_table()))
            if not row_as_dict(cursor)["any"]:
                return 0
            cursor.execute(LIFECYCLE_DELETE_DIRTY_SQL.format(dirty=dirty_table()), params)
            rows = tenant_rows_sql(PERIOD_TABLE, LIFECYCLE_ROWS_WHERE, scope=dirty_scope())
            write = LIFECYCLE_WRITE_SQL.format(rows=rows, returning="RETURNING week, stage, counted")
            cursor.execute(COUNTS_ADD_SQL.format(write=write), params)
            written = cursor.rowcount  # the counts moved up
            cursor.execute(COUNTS_EMPTY_DROP_SQL)
    state.lifecycle_week = this_week
    return written


@dataclass(frozen=True)
class LifecycleWeek:
    week: date
    new: int
    returning: int
    resurrecting: int
    dormant: int

    @property
    def active(self) -> int:
        return self.new + self.returning + self.resurrecting


def lifecycle_weeks(*, weeks: int, now: datetime) -> list[LifecycleWeek]:
    """Customer accounts per stage for each of the last ``weeks`` weeks (the current one last),
    every week present (zeros where nothing happened). Read from the counts the last run wrote."""
    this_week = week_start(now)
    with connection.cursor() as cursor:
        cursor.execute(COUNTS_READ_SQL, {"this_week": this_week, "weeks": weeks})
        found = {(row["week"], row["stage"]): int(row["accounts"]) for row in rows_as_dicts(cursor)}
    out = []
    for back in range(weeks - 1, -1, -1):
        week = this_week - timedelta(weeks=back)
        out.append(LifecycleWeek(week, *(found.get((week, s.stage.value), 0) for s in STAGES)))
    return out
