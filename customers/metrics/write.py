"""ops_tenant_metrics: measure (signals.py), assess (risk.py), write every row with one statement.

Also the one service other apps call to change a written row: ``tenant_levels_raise``
(the playbooks hook raises a matched tenant's level and undoes a raise that no longer
holds), so no other app writes ops_tenant_metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from django.db import connection

from core.flavour import flavour
from core.rows import row_as_dict, rows_as_dicts
from customers.metrics.churn_model import (
    RANKED_BY_HEURISTIC,
    ChurnScore,
    ModelInForce,
    churn_scores,
    learned_level,
    probability_text,
    ranking_in_force,
)
from customers.metrics.features import component_points, feature_types, features_matrix, type_counts_measure
from customers.metrics.interventions import call_intervention
from customers.metrics.peers import PEERS_MIN, PeerLevels, peer_levels_measure
from customers.metrics.risk import TenantAssessment, tenant_assess
from customers.metrics.scope import dirty_scope, dirty_tenants_analyze, dirty_tenants_sql, stale_tenants_add_sql
from customers.metrics.signals import TenantSignals, tenant_signals_measure
from customers.metrics.staged import metrics_rows_upsert_staged
from customers.metrics.vocabulary import vocabulary_current
from customers.metrics.weights import risk_weights_current
from customers.models import RISK_LEVEL_RANK, RiskLevel, TenantKind

# The unchanged rows of a dirty-only run were (re)confirmed by it: one HOT update each, no recompute.
COMPUTED_AT_STAMP_SQL = "UPDATE ops_tenant_metrics SET computed_at = %s WHERE computed_at IS DISTINCT FROM %s"

METRICS_COLUMNS: dict[str, str] = {
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
    "ranking_score": "double precision",
    "ranking_model": "text",
    "churn_probability_30d": "double precision",
    "churn_drivers": "jsonb",
    "primary_risk_reason": "text",
    "secondary_signals": "jsonb",
    "risk_components": "jsonb",
    "interventions": "jsonb",
    "inputs_kind": "text",
    "inputs_monthly_event_limit": "bigint",
    "stale": "boolean",
    "unraised": "jsonb",
}


def metrics_row(signals: TenantSignals, assessment: TenantAssessment, *, as_of: date, now: datetime) -> dict[str, Any]:
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
        "ranking_score": assessment.risk_signal_strength,
        "ranking_model": RANKED_BY_HEURISTIC,
        "churn_probability_30d": None,
        "churn_drivers": [],
        "primary_risk_reason": assessment.primary_risk_reason,
        "secondary_signals": assessment.secondary_signals,
        "risk_components": assessment.risk_components,
        "interventions": assessment.interventions,
        "inputs_kind": signals.kind,
        "inputs_monthly_event_limit": signals.monthly_event_limit,
        "stale": False,
        "unraised": None,
    }


# One statement writes every row: the rows as one jsonb array, typed by METRICS_COLUMNS, upserted
# on ops_tenant_metrics' primary key (tenant_id). Each row carries the customer's MRR in force
# (ops_tenant_revenue, by its primary key), so expected_loss follows the new ranking score.
METRICS_UPSERT_SQL = """
INSERT INTO ops_tenant_metrics ({columns}, mrr)
SELECT {x_columns}, r.mrr FROM jsonb_to_recordset(%s::jsonb) AS x({record})
LEFT JOIN ops_tenant_revenue r ON r.tenant_id = x.tenant_id
ON CONFLICT (tenant_id) DO UPDATE SET {updates}, mrr = EXCLUDED.mrr
""".format(
    columns=", ".join(METRICS_COLUMNS),
    x_columns=", ".join(f"x.{c}" for c in METRICS_COLUMNS),
    record=", ".join(f"{c} {t}" for c, t in METRICS_COLUMNS.items()),
    updates=", ".join(f"{c} = EXCLUDED.{c}" for c in METRICS_COLUMNS if c != "tenant_id"),
)


def tenant_metrics_write(*, as_of: date, now: datetime, dirty_only: bool = False) -> int:
    """Measure, assess and upsert tenants' rows with one statement; returns how many were recomputed.

    Every tenant by default. With ``dirty_only`` only the tenants in the run's
    dirty set (scope.py: folded events, a rebuild) and the stale ones (see
    STALE_TENANTS_SQL): any other row was computed from the same rollups, day,
    registry, weights and tenant settings, so recomputing it would write the same
    values. Either way every row's ``computed_at`` becomes ``now``. Call inside the
    run's transaction, after ``scope.dirty_tenants_begin()``.
    """
    if dirty_only:
        with connection.cursor() as cursor:
            cursor.execute(stale_tenants_add_sql(), {"d": as_of})
        dirty_tenants_analyze()  # the set is complete: what signals and the hooks plan with
    written = metrics_upsert(as_of=as_of, now=now, dirty_only=dirty_only)
    if dirty_only:
        with connection.cursor() as cursor:
            cursor.execute(COMPUTED_AT_STAMP_SQL, [now, now])
    return written


def metrics_upsert(*, as_of: date, now: datetime, dirty_only: bool) -> int:
    """Measure, assess and upsert the rows of every tenant (or of the run's dirty ones).

    The registry's vocabulary, the active risk weights, the customers' levels of the day and the
    model in force are read once, here, for the whole run.
    """
    vocabulary = vocabulary_current()
    weights = risk_weights_current()
    scope = dirty_scope() if dirty_only else "all"
    peers = peer_levels_day(as_of=as_of)
    model = ranking_in_force()
    measured = tenant_signals_measure(as_of=as_of, scope=scope, vocabulary=vocabulary, peers=peers)
    assessed = [(s, tenant_assess(s, as_of=as_of, vocabulary=vocabulary, weights=weights)) for s in measured]
    rows = [metrics_row(s, assessment, as_of=as_of, now=now) for s, assessment in assessed]
    if model is not None:
        # Every customer scored at once: the features column by column, the model's sums vectorised.
        customers = [(i, s, a) for i, (s, a) in enumerate(assessed) if s.kind == TenantKind.CUSTOMER]
        types = feature_types(vocabulary)
        names, matrix = features_matrix(
            [s for _, s, _ in customers],
            as_of=as_of,
            types=types,
            type_counts=type_counts_measure(as_of=as_of, scope=scope, types=types),
            points=component_points([{c["signal"]: c["points"] for c in a.risk_components} for _, _, a in customers]),
        )
        scores = churn_scores(model, names=names, matrix=matrix, signals=[s for _, s, _ in customers])
        for (i, _, assessment), score in zip(customers, scores, strict=True):
            rows[i].update(learned_row(model, score, assessment))
    if not rows:
        return 0
    if flavour().subplans_through_coordinator:
        # The jsonb parameter would be parsed on the coordinator and again on the shards (staged.py).
        metrics_rows_upsert_staged(rows, METRICS_COLUMNS)
        return len(rows)
    with connection.cursor() as cursor:
        cursor.execute(METRICS_UPSERT_SQL, [json.dumps(rows, allow_nan=False)])
    return len(rows)


def learned_row(model: ModelInForce, score: ChurnScore, assessment: TenantAssessment) -> dict[str, Any]:
    """The columns the model sets: its probability orders the row, and its level is the probability's."""
    level = learned_level(score.probability, base_rate=float(model.definition.get("base_rate", 0.0)))
    primary = assessment.primary_risk_reason
    if level is not None and not primary and score.drivers:
        primary = (
            f"{probability_text(score.probability, horizon=model.horizon).capitalize()}: {score.drivers[0]['words']}"
        )
    return {
        "ranking_score": round(100.0 * score.probability, 4),
        "ranking_model": model.name,
        "churn_probability_30d": score.probability,
        "churn_drivers": score.drivers,
        "risk_level": level,
        "primary_risk_reason": primary,
    }


# The first usable measurement of a day wins (a race of two runs keeps one); one with too few customers to
# compare with is replaced, so a history imported during the day is compared with at the next run.
PEER_LEVELS_STORE_SQL = f"""
INSERT INTO ops_peer_levels (as_of, levels, measured_at) VALUES (%(d)s, %(levels)s::jsonb, now())
ON CONFLICT (as_of) DO UPDATE SET levels = EXCLUDED.levels, measured_at = EXCLUDED.measured_at
WHERE jsonb_array_length(ops_peer_levels.levels -> 'active_days') < {PEERS_MIN}
"""
PEER_LEVELS_READ_SQL = "SELECT levels FROM ops_peer_levels WHERE as_of = %(d)s"  # its primary key


def _stored_peer_levels(cursor: Any, as_of: date) -> PeerLevels | None:
    cursor.execute(PEER_LEVELS_READ_SQL, {"d": as_of})
    rows = rows_as_dicts(cursor)
    if not rows:
        return None
    levels = rows[0]["levels"]
    return PeerLevels.from_json(levels if isinstance(levels, dict) else json.loads(levels))


def peer_levels_day(*, as_of: date) -> PeerLevels:
    """The customers' levels of ``as_of``: measured by the day's first run and read by every later one, a full
    rebuild included, so an incremental run and a rebuild on the same day compare with the same customers.
    While too few customers exist the levels are measured again each run, but the record's start stays the
    first measured one: a run that recomputes some tenants must date the others' records as they were dated
    (an import of older history moves it the next day, when every tenant is recomputed)."""
    with connection.cursor() as cursor:
        stored = _stored_peer_levels(cursor, as_of)
        if stored is not None and stored.size >= PEERS_MIN:
            return stored
        measured = peer_levels_measure(as_of=as_of)
        if stored is not None and stored.record_start is not None:
            measured = replace(measured, record_start=stored.record_start)
        cursor.execute(PEER_LEVELS_STORE_SQL, {"d": as_of, "levels": json.dumps(measured.as_json())})
        return _stored_peer_levels(cursor, as_of) or measured


# Marking rows to recompute (fan-out phase 1), by ops_tenant_metrics' primary key.
# {scope}: scope.dirty_tenants_sql, which names the table this database keeps the dirty set in.
DIRTY_MARK_STALE_SQL = "UPDATE ops_tenant_metrics SET stale = true WHERE {scope} AND NOT stale"
ALL_MARK_STALE_SQL = "UPDATE ops_tenant_metrics SET stale = true"
STALE_COUNT_SQL = """
SELECT count(*) AS n FROM customers_tenant t LEFT JOIN ops_tenant_metrics m ON m.tenant_id = t.tenant_id
WHERE m.tenant_id IS NULL OR m.stale
"""


def tenants_mark_stale(*, as_of: date, dirty_only: bool) -> int:
    """Mark the rows a fanned-out run must recompute (those of tenants without a row are stale anyway).

    Committed with the fold: a shard task that is lost leaves its rows stale,
    and the next run recomputes them, so nothing is skipped for good.
    """
    with connection.cursor() as cursor:
        if dirty_only:
            cursor.execute(stale_tenants_add_sql(), {"d": as_of})
            cursor.execute(DIRTY_MARK_STALE_SQL.format(scope=dirty_tenants_sql("tenant_id")))
        else:
            cursor.execute(ALL_MARK_STALE_SQL)
        cursor.execute(STALE_COUNT_SQL)
        return int(row_as_dict(cursor)["n"])


# --- Raising a level (the playbooks hook) ------------------------------------------------------------
# The rows a raise may touch: those carrying an earlier raise (in scope), and the raises' tenants.
# Uses ops_tenant_metrics' primary key for the raises' tenants. The new values are worked out in
# Python (raises are a few rows) and written back by key: one statement shape that plain PostgreSQL
# and Citus (no non-immutable functions over a distributed row in an UPDATE) both run.
_LEVELS_COLUMNS = (
    "tm.tenant_id, tm.risk_level, tm.primary_risk_reason, tm.secondary_signals, tm.interventions, tm.unraised"
)
LEVELS_RAISED_BEFORE_SQL = f"SELECT {_LEVELS_COLUMNS} FROM ops_tenant_metrics tm WHERE tm.unraised IS NOT NULL{{scope}}"
LEVELS_RAISE_TENANTS_SQL = f"SELECT {_LEVELS_COLUMNS} FROM ops_tenant_metrics tm WHERE tm.tenant_id = ANY(%s::text[])"
LEVELS_WRITE_SQL = """
UPDATE ops_tenant_metrics tm
SET risk_level = x.risk_level, primary_risk_reason = x.primary_risk_reason,
    secondary_signals = x.secondary_signals, interventions = x.interventions, unraised = x.unraised
FROM unnest(%(tenants)s::text[], %(levels)s::text[], %(primary)s::text[], %(secondary)s::jsonb[],
            %(interventions)s::jsonb[], %(unraised)s::jsonb[])
     AS x(tenant_id, risk_level, primary_risk_reason, secondary_signals, interventions, unraised)
WHERE tm.tenant_id = x.tenant_id
"""


@dataclass(frozen=True)
class LevelRaise:
    """Raise ``tenant_id`` to at least ``level``, saying why (``reason`` is quoted to the founder)."""

    tenant_id: str
    level: str
    reason: str


def tenant_levels_raise(*, raises: list[LevelRaise], dirty_only: bool = False) -> int:
    """Raise tenants' risk levels (never lower them) and undo earlier raises that no longer hold.

    Call inside the recompute's transaction (a post-recompute hook). With ``dirty_only``
    only the rows the run rewrote are considered for the undo (the others' raises still
    hold: their inputs are unchanged). Returns how many rows were raised.
    """
    scope = f" AND {dirty_tenants_sql('tm.tenant_id')}" if dirty_only else ""
    with connection.cursor() as cursor:
        cursor.execute(LEVELS_RAISED_BEFORE_SQL.format(scope=scope))
        rows = {row["tenant_id"]: _decoded(row, undo_candidate=True) for row in rows_as_dicts(cursor)}
        cursor.execute(LEVELS_RAISE_TENANTS_SQL, [sorted({r.tenant_id for r in raises} - set(rows))])
        rows.update({row["tenant_id"]: _decoded(row, undo_candidate=False) for row in rows_as_dicts(cursor)})
    written: dict[str, dict[str, Any]] = {}
    for tenant_id, row in rows.items():
        # A row raised earlier and not rewritten by the engine since still carries that raise:
        # where this run raises it differently or not at all, the engine's own values come back.
        if not row["undo_candidate"]:
            continue
        holds = any(
            r.tenant_id == tenant_id
            and r.level == row["risk_level"]
            and (row["primary_risk_reason"] == r.reason or r.reason in (row["secondary_signals"] or []))
            for r in raises
        )
        if not holds:
            u = row["unraised"]
            written[tenant_id] = row = {
                "tenant_id": tenant_id, "risk_level": u.get("risk_level"),
                "primary_risk_reason": u.get("primary_risk_reason"), "secondary_signals": u.get("secondary_signals"),
                "interventions": u.get("interventions"), "unraised": None,
            }  # fmt: skip
            rows[tenant_id] = row
    raised = 0
    for r in _strongest_per_tenant(raises):
        row = rows.get(r.tenant_id)
        if row is None or _rank(row["risk_level"]) >= _rank(r.level):
            continue
        written[r.tenant_id] = rows[r.tenant_id] = _raised(row, r)
        raised += 1
    if written:
        values = list(written.values())
        with connection.cursor() as cursor:
            cursor.execute(
                LEVELS_WRITE_SQL,
                {
                    "tenants": [v["tenant_id"] for v in values],
                    "levels": [v["risk_level"] for v in values],
                    "primary": [v["primary_risk_reason"] for v in values],
                    "secondary": [_json(v["secondary_signals"]) for v in values],
                    "interventions": [_json(v["interventions"]) for v in values],
                    "unraised": [_json(v["unraised"]) for v in values],
                },
            )
    return raised


def _decoded(row: dict[str, Any], *, undo_candidate: bool) -> dict[str, Any]:
    # Django's psycopg connection hands jsonb back as text.
    for column in ("secondary_signals", "interventions", "unraised"):
        if isinstance(row[column], str):
            row[column] = json.loads(row[column])
    return {**row, "undo_candidate": undo_candidate}


def _rank(level: str | None) -> int:
    try:
        return RISK_LEVEL_RANK.get(RiskLevel(level), 0) if level else 0
    except ValueError:
        return 0


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _strongest_per_tenant(raises: list[LevelRaise]) -> list[LevelRaise]:
    """One raise per tenant, the highest level (the first given among equals)."""
    best: dict[str, LevelRaise] = {}
    for r in raises:
        if r.tenant_id not in best or _rank(r.level) > _rank(best[r.tenant_id].level):
            best[r.tenant_id] = r
    return list(best.values())


def _raised(row: dict[str, Any], r: LevelRaise) -> dict[str, Any]:
    """The row after raising it to ``r.level``: what LEVELS_RAISE did, with the engine's values kept to undo it."""
    secondary = list(row["secondary_signals"] or [])
    interventions = list(row["interventions"] or [])
    if row["risk_level"] is not None:
        secondary = [*secondary, r.reason]
    elif row["primary_risk_reason"]:
        secondary = [row["primary_risk_reason"], *secondary]
    if r.level == RiskLevel.CRITICAL.value and not any(i.get("intervention_type") == "call" for i in interventions):
        interventions = [call_intervention(reason=r.reason), *interventions]
    unraised = row["unraised"]
    if unraised is None:
        unraised = {
            "risk_level": row["risk_level"], "primary_risk_reason": row["primary_risk_reason"],
            "secondary_signals": row["secondary_signals"], "interventions": row["interventions"],
        }  # fmt: skip
    return {
        "tenant_id": row["tenant_id"],
        "risk_level": r.level,
        "primary_risk_reason": r.reason if row["risk_level"] is None else row["primary_risk_reason"],
        "secondary_signals": secondary,
        "interventions": interventions,
        "unraised": unraised,
    }
