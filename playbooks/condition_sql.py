"""Playbook conditions as SQL: ``match_query``, one statement that measures every condition of every
playbook for all tenants from the metrics engine's caches (the catalogue it reads is playbooks/conditions.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from customers.metrics.daily import SUMMARY_TABLE
from customers.metrics.scope import dirty_tenants_sql, tenant_rows_sql
from events.registry import Registry
from playbooks.conditions import METRICS, SQL_OPERATORS, ConditionLike, condition_event_types


def match_query(
    playbooks: Sequence[tuple[str, Sequence[ConditionLike]]],
    *,
    registry: Registry,
    as_of: date,
    tenant_id: str | None = None,
    scope: str = "all",
) -> tuple[str, dict[str, Any]]:
    """One statement that returns (playbook_id, tenant_id, [measured value per condition]) for every match.

    (Long on purpose: it assembles one statement whose parts only mean something together.)

    All conditions of a playbook must hold; a NULL value fails its condition.
    Only customer tenants (not internal/test/demo) with a metrics row are
    considered. Windowed conditions are FILTERed aggregates over the engine's
    rollups: event counts of the listed types over ``ops_rollup_tenant_day`` (only
    those types' rows), real events and active days over the day summaries (one
    row per tenant and day); scalar ones read ``ops_tenant_metrics``. The cost does
    not grow with the number of tenants beyond those scans. Playbooks without
    conditions never match. Identifiers in the SQL come from the catalogue; every
    value is a parameter; roles are resolved to the registry's types here. ``scope`` (inside a
    recompute): "all" tenants, or only those whose metrics the run rewrote ("dirty"/"lateral",
    customers.metrics.scope.tenant_rows_sql).
    """
    params: dict[str, Any] = {"d": as_of, "tenant": tenant_id}
    type_cols: list[str] = []
    day_cols: list[str] = []
    user_cols: list[str] = []
    value_cols: list[str] = []
    selects: list[str] = []
    types_used: set[str] = set()
    max_type_window = max_day_window = max_user_window = 1
    i = 0
    for p_index, (playbook_id, conditions) in enumerate(playbooks):
        if not conditions:
            continue
        preds: list[str] = []
        values: list[str] = []
        for condition in conditions:
            metric = METRICS[condition.metric]
            if metric.windowed:
                assert condition.window_days is not None
                params[f"w{i}"] = condition.window_days
                in_window = f"r.day > %(d)s::date - %(w{i})s::int"
                # A growth's earlier window: the N days before the last N.
                before = f"r.day <= %(d)s::date - %(w{i})s::int AND r.day > %(d)s::date - 2 * %(w{i})s::int"
                reach = condition.window_days * (2 if metric.growth else 1)
                if metric.key == "event_count_growth":
                    names = condition_event_types(condition, registry=registry)
                    params[f"t{i}"] = names
                    types_used.update(names)
                    max_type_window = max(max_type_window, reach)
                    of_types = f"r.event_type = ANY(%(t{i})s::text[])"
                    type_cols.append(f"sum(r.value) FILTER (WHERE {in_window} AND {of_types}) AS c{i}")
                    type_cols.append(f"sum(r.value) FILTER (WHERE {before} AND {of_types}) AS p{i}")
                    expr = f"COALESCE(by_type.c{i}, 0)::double precision / NULLIF(by_type.p{i}, 0)"
                elif metric.key in ("active_users", "active_users_growth"):
                    max_user_window = max(max_user_window, reach)
                    user_cols.append(f"count(DISTINCT r.user_id) FILTER (WHERE {in_window}) AS c{i}")
                    expr = f"COALESCE(by_user.c{i}, 0)"
                    if metric.growth:
                        user_cols.append(f"count(DISTINCT r.user_id) FILTER (WHERE {before}) AS p{i}")
                        expr = f"COALESCE(by_user.c{i}, 0)::double precision / NULLIF(by_user.p{i}, 0)"
                elif metric.key == "event_count":
                    names = condition_event_types(condition, registry=registry)
                    params[f"t{i}"] = names
                    types_used.update(names)
                    max_type_window = max(max_type_window, condition.window_days)
                    type_cols.append(
                        f"sum(r.value) FILTER (WHERE {in_window} AND r.event_type = ANY(%(t{i})s::text[])) AS c{i}"
                    )
                    expr = f"COALESCE(by_type.c{i}, 0)"
                else:
                    max_day_window = max(max_day_window, condition.window_days)
                    # real_events: the days' events; active_days: one summary row per day with real events.
                    agg = "sum(r.events)" if metric.key == "real_events" else "count(*)"
                    day_cols.append(f"{agg} FILTER (WHERE {in_window}) AS c{i}")
                    expr = f"COALESCE(by_day.c{i}, 0)"
            else:
                expr = metric.column
            value_cols.append(f"{expr} AS v{i}")
            params[f"th{i}"] = float(condition.threshold)
            preds.append(f"b.v{i} {SQL_OPERATORS[condition.operator]} %(th{i})s::double precision")
            values.append(f"b.v{i}")
            i += 1
        params[f"pb{p_index}"] = playbook_id
        selects.append(
            f"SELECT %(pb{p_index})s::text AS playbook_id, b.tenant_id, jsonb_build_array({', '.join(values)}) AS measured "
            f"FROM base b WHERE {' AND '.join(preds)}"
        )
    if not selects:
        return "", params

    def window(days_param: str) -> str:
        return (
            f"x.day > %(d)s::date - %({days_param})s::int AND x.day <= %(d)s::date"
            " AND (%(tenant)s::text IS NULL OR x.tenant_id = %(tenant)s::text)"
        )

    ctes: list[str] = []
    joins: list[str] = []
    if type_cols:
        params["max_tw"], params["types_used"] = max_type_window, sorted(types_used)
        rows = tenant_rows_sql(
            "ops_rollup_tenant_day", "x.event_type = ANY(%(types_used)s::text[]) AND " + window("max_tw"), scope=scope
        )
        ctes.append(f"by_type AS (SELECT r.tenant_id, {', '.join(type_cols)} FROM {rows} r GROUP BY r.tenant_id)")
        joins.append("LEFT JOIN by_type ON by_type.tenant_id = tm.tenant_id")
    if user_cols:
        # Distinct users per tenant over the user/day rollup (its primary key starts with tenant_id).
        params["max_uw"] = max_user_window
        rows = tenant_rows_sql("ops_rollup_tenant_user_day", window("max_uw"), scope=scope)
        ctes.append(f"by_user AS (SELECT r.tenant_id, {', '.join(user_cols)} FROM {rows} r GROUP BY r.tenant_id)")
        joins.append("LEFT JOIN by_user ON by_user.tenant_id = tm.tenant_id")
    if day_cols:
        params["max_dw"] = max_day_window
        rows = tenant_rows_sql(SUMMARY_TABLE, window("max_dw"), scope=scope)
        ctes.append(f"by_day AS (SELECT r.tenant_id, {', '.join(day_cols)} FROM {rows} r GROUP BY r.tenant_id)")
        joins.append("LEFT JOIN by_day ON by_day.tenant_id = tm.tenant_id")
    scope_tm = "" if scope == "all" else f" AND {dirty_tenants_sql('tm.tenant_id')}"
    ctes.append(
        f"""base AS (
    SELECT tm.tenant_id, {", ".join(value_cols)}
    FROM ops_tenant_metrics tm
    JOIN customers_tenant t ON t.tenant_id = tm.tenant_id
    {" ".join(joins)}
    WHERE t.kind = 'customer' AND (%(tenant)s::text IS NULL OR tm.tenant_id = %(tenant)s::text){scope_tm}
)"""
    )
    return f"WITH {', '.join(ctes)}\n{' UNION ALL '.join(selects)}\n", params
