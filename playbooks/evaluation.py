"""Matching playbooks after each recompute.

``playbooks_evaluate`` is the metrics engine's post-recompute hook
(settings.METRICS_POST_RECOMPUTE_HOOKS). It runs inside the recompute's
transaction, after ``ops_tenant_metrics`` is written, and:

1. evaluates every enabled playbook for all tenants in one statement
   (playbooks.conditions.match_query);
2. replaces ``ops_playbook_match`` with the matches (keeping ``first_matched_at``
   for matches that still hold);
3. raises a tenant's risk level to at least the highest matched playbook's
   (customers.metrics.write.tenant_levels_raise, the engine's own service), so
   the at-risk list and the playbooks never disagree;
4. upserts today's ``ops_tenant_risk_day`` row for every at-risk customer
   (the history effectiveness and signal validation read).

Everything commits with the metrics, so a reader never sees metrics from one
run and matches from another.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import connection, transaction

from core.rows import row_as_dict, rows_as_dicts
from customers.churn import churned_gone_ids
from customers.metrics.scope import dirty_scope, dirty_tenants_count, dirty_tenants_sql
from customers.metrics.write import LevelRaise, tenant_levels_raise
from customers.models import RISK_LEVEL_RANK
from events.registry import Registry, event_type_registry
from playbooks.condition_sql import match_query
from playbooks.conditions import condition_event_types, condition_problems, condition_text
from playbooks.models import (
    EvaluationState,
    Playbook,
    PlaybookPurpose,
    TriggerCondition,
)

logger = logging.getLogger(__name__)

LEVEL_RANK: dict[str | None, int] = {None: 0, **{level.value: rank for level, rank in RISK_LEVEL_RANK.items()}}
# SQL twin of LEVEL_RANK (NULL -> 0).
_RANK_SQL = (
    "CASE {col}::text "
    + " ".join(f"WHEN '{level.value}' THEN {rank}" for level, rank in RISK_LEVEL_RANK.items())
    + " ELSE 0 END"
)


# Every tenant with a metrics row was evaluated (ops_tenant_metrics' primary key, an index-only count).
TENANTS_EVALUATED_SQL = "SELECT count(*) AS n FROM ops_tenant_metrics"


# The day rows of the matched tenants (ops_tenant_risk_day's primary key: tenant_id, day).
RISK_DAY_PLAYBOOKS_SQL = (
    "SELECT tenant_id, playbooks FROM ops_tenant_risk_day WHERE day = %(d)s AND tenant_id = ANY(%(tenants)s::text[])"
)
RISK_DAY_PLAYBOOKS_WRITE_SQL = """
UPDATE ops_tenant_risk_day d SET playbooks = x.ids
FROM unnest(%(tenants)s::text[], %(ids)s::jsonb[]) AS x(tenant_id, ids)
WHERE d.tenant_id = x.tenant_id AND d.day = %(d)s
"""

# The matches no longer found, of the scope's tenants. Keys as one text array (tenant, unit separator,
# playbook): a comparison Citus pushes to each shard. Uses index: ops_playbook_match_unique.
MATCHES_DELETE_STALE_SQL = """
DELETE FROM ops_playbook_match m
WHERE (m.tenant_id || chr(31) || m.playbook_id) <> ALL(%s::text[]){scope}
"""
# Uses index: ops_playbook_match_unique (tenant_id first).
MATCHES_DELETE_TENANTS_SQL = "DELETE FROM ops_playbook_match WHERE tenant_id = ANY(%s)"
# RETURNING tells a new match (xmax = 0: inserted) from one that still holds (updated).
# Uses index: ops_playbook_match_unique (the conflict target).
MATCHES_UPSERT_SQL = """
INSERT INTO ops_playbook_match (tenant_id, playbook_id, matched_at, first_matched_at, as_of, measured)
SELECT x.tenant_id, x.playbook_id, %(now)s, %(now)s, %(d)s, x.measured
FROM jsonb_to_recordset(%(rows)s::jsonb) AS x(tenant_id text, playbook_id text, measured jsonb)
ON CONFLICT (tenant_id, playbook_id) DO UPDATE
SET matched_at = EXCLUDED.matched_at, as_of = EXCLUDED.as_of, measured = EXCLUDED.measured
RETURNING (xmax = 0) AS inserted
"""
# Every stored match, confirmed by this run (a sequential pass over a table of matches, not of tenants).
MATCHES_CONFIRM_SQL = "UPDATE ops_playbook_match SET matched_at = %s WHERE matched_at IS DISTINCT FROM %s"
# Today's risk-day rows, from ops_tenant_metrics alone (the playbook ids are added by primary key after):
# its statistics are stale in this transaction (it was just rewritten), and a join of it with the
# matches was planned as a nested loop (minutes at 20k tenants). Uses index: ops_tenant_risk_day's
# primary key (tenant_id, day), the conflict target.
RISK_DAY_UPSERT_SQL = (
    """
INSERT INTO ops_tenant_risk_day (tenant_id, day, risk_level, risk_signal_strength, playbooks)
SELECT tm.tenant_id, %(d)s, tm.risk_level, tm.risk_signal_strength, '[]'::jsonb
FROM ops_tenant_metrics tm
JOIN customers_tenant t ON t.tenant_id = tm.tenant_id AND t.kind = 'customer'
WHERE tm.risk_level IS NOT NULL{scope}
ON CONFLICT (tenant_id, day) DO UPDATE SET
    risk_level = CASE WHEN """
    + _RANK_SQL.format(col="EXCLUDED.risk_level")
    + " > "
    + _RANK_SQL.format(col="ops_tenant_risk_day.risk_level")
    + """ THEN EXCLUDED.risk_level
                      ELSE ops_tenant_risk_day.risk_level END,
    risk_signal_strength = GREATEST(ops_tenant_risk_day.risk_signal_strength, EXCLUDED.risk_signal_strength)
"""
)


@dataclass
class EvaluationResult:
    matches: int
    tenants_raised: int
    risk_days_written: int
    # Matches that appeared or went away in this evaluation (a playbook edit shows here).
    matches_changed: int = 0

    def summary(self) -> str:
        """For ``recompute_metrics``' line: what the playbooks changed."""
        return (
            f"{self.matches} playbook match{'es' if self.matches != 1 else ''} "
            f"({self.matches_changed} changed), {self.tenants_raised} level{'s' if self.tenants_raised != 1 else ''} "
            "raised by a playbook"
        )


def _playbooks_to_evaluate(*, registry: Registry) -> list[tuple[Playbook, list[TriggerCondition]]]:
    """Enabled playbooks with valid conditions. A playbook with an invalid condition (only
    possible by editing outside admin: a threshold of 1e308 or -5, a window of 30,000 days)
    is skipped and logged, never half-evaluated, so no admin value stops a recompute."""
    known = [t.name for t in registry.types]
    out = []
    for playbook in Playbook.objects.filter(enabled=True).prefetch_related("conditions"):
        conditions = list(playbook.conditions.all())
        bad = {
            c.pk: problems
            for c in conditions
            if (
                problems := condition_problems(
                    metric=c.metric,
                    operator=c.operator,
                    threshold=c.threshold,
                    window_days=c.window_days,
                    event_types=c.event_type_list(),
                    known_event_types=known,
                )
            )
        }
        if bad:
            logger.warning("playbook %s skipped: invalid conditions %s", playbook.pk, bad)
            continue
        if conditions:
            out.append((playbook, conditions))
    return out


def playbook_matches_measure(
    *,
    as_of: date,
    playbooks: list[tuple[Playbook, list[TriggerCondition]]],
    registry: Registry,
    tenant_id: str | None = None,
    scope: str = "all",
) -> list[tuple[Playbook, str, list[dict[str, Any]]]]:
    """(playbook, tenant_id, measured) for every tenant each playbook matches now (one query).

    ``measured`` lists, per condition, its text, metric and the value that satisfied it.
    ``scope``: every tenant, or only those the running recompute rewrote (see match_query).
    """
    sql, params = match_query(
        [(p.pk, conds) for p, conds in playbooks], registry=registry, as_of=as_of, tenant_id=tenant_id, scope=scope
    )
    if not sql:
        return []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = rows_as_dicts(cursor)
    by_id = {p.pk: (p, conds) for p, conds in playbooks}
    out = []
    for row in rows:
        playbook_id, tid, values = row["playbook_id"], row["tenant_id"], row["measured"]
        playbook, conditions = by_id[playbook_id]
        values = values if isinstance(values, list) else json.loads(values)
        measured = [
            {"condition": condition_text(c, registry=registry), "metric": c.metric, "value": v}
            for c, v in zip(conditions, values, strict=True)
        ]
        out.append((playbook, tid, measured))
    out.sort(key=lambda m: (m[0].pk, m[1]))
    return out


def _playbooks_key(playbooks: list[tuple[Playbook, list[TriggerCondition]]], *, registry: Registry) -> str:
    """A fingerprint of everything about the evaluated playbooks that a match or a raise depends on,
    roles resolved: a registry edit that changes a role's types changes it too."""
    described = [
        [
            playbook.pk,
            playbook.name,  # quoted in the raise's reason
            playbook.risk_level,
            playbook.purpose,  # whether a match raises a level
            [
                [
                    c.pk,
                    c.metric,
                    c.operator,
                    float(c.threshold),
                    c.window_days,
                    condition_event_types(c, registry=registry),
                    condition_text(c, registry=registry),  # quoted in the matches and the raise's reason
                ]
                for c in conditions
            ],
        ]
        for playbook, conditions in playbooks
    ]
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def playbooks_evaluate(*, as_of: date, computed_at: datetime, dirty_only: bool = False) -> EvaluationResult:
    """The post-recompute hook: match, store, raise risk levels, record the day. See the module docstring.

    Idempotent: running it twice for the same state changes nothing the second
    time (matches are replaced, the day row keeps the highest level).

    Scope: with ``dirty_only`` (the recompute rewrote only the tenants in its
    dirty set, customers.metrics.scope) and the same playbooks and day as the last
    evaluation (``EvaluationState``), only those tenants are evaluated; any other
    tenant's inputs are unchanged, so its matches, raise and day row still hold.
    Otherwise every tenant is. Without the scope the evaluation read every
    tenant's rollups on every run, which made an incremental run grow with history.
    """
    registry = event_type_registry()
    playbooks = _playbooks_to_evaluate(registry=registry)
    key = _playbooks_key(playbooks, registry=registry)
    state, _ = EvaluationState.objects.select_for_update().get_or_create(id=1)
    scoped = dirty_only and state.playbooks_key == key and state.as_of == as_of
    matches = playbook_matches_measure(
        as_of=as_of, playbooks=playbooks, registry=registry, scope=dirty_scope() if scoped else "all"
    )
    # A churned customer with no real activity since is matched by no playbook.
    gone = churned_gone_ids()
    matches = [m for m in matches if m[1] not in gone]
    rows = [{"tenant_id": tid, "playbook_id": p.pk, "measured": measured} for p, tid, measured in matches]

    with transaction.atomic(), connection.cursor() as cursor:
        changed = _matches_store(cursor, rows=rows, gone=gone, scoped=scoped, as_of=as_of, computed_at=computed_at)
        # The engine raises (never lowers) the levels and undoes a raise that no longer holds (a
        # threshold edited, a playbook disabled or no longer matching); a raise that still holds
        # costs nothing, so a run with no new events recomputes no raised tenant.
        # An expansion playbook's matches are kept (expansion candidates) but raise nothing and are no
        # risk history.
        risk_matches = [m for m in matches if m[0].purpose == PlaybookPurpose.RISK]
        raised = tenant_levels_raise(raises=_level_raises(risk_matches), dirty_only=scoped)
        days = _risk_days_record(cursor, as_of=as_of, scoped=scoped, matches=risk_matches)
        state.playbooks_key, state.as_of, state.evaluated_at = key, as_of, computed_at
        if scoped:
            state.tenants_evaluated = dirty_tenants_count()
        else:
            cursor.execute(TENANTS_EVALUATED_SQL)
            state.tenants_evaluated = int(row_as_dict(cursor)["n"])
        state.save()
    logger.info(
        "playbooks: %d tenants evaluated, %d matches, %d tenants raised, %d risk days",
        state.tenants_evaluated,
        len(rows),
        raised,
        days,
    )
    return EvaluationResult(matches=len(rows), tenants_raised=raised, risk_days_written=days, matches_changed=changed)


Match = tuple[Playbook, str, list[dict[str, Any]]]  # (playbook, tenant id, the measured conditions)


def _level_raises(matches: list[Match]) -> list[LevelRaise]:
    """The strongest matched risk playbook per tenant: the level it raises the tenant to, and why."""
    strongest: dict[str, tuple[Playbook, list[dict[str, Any]]]] = {}
    for playbook, tid, measured in matches:
        held = strongest.get(tid)
        if held is None or LEVEL_RANK[playbook.risk_level] > LEVEL_RANK[held[0].risk_level]:
            strongest[tid] = (playbook, measured)
    return [
        LevelRaise(
            tenant_id=tid,
            level=playbook.risk_level,
            reason=f"Playbook '{playbook.name}' matched ({playbook.risk_level}): "
            + "; ".join(m["condition"] for m in measured),
        )
        for tid, (playbook, measured) in sorted(strongest.items())
    ]


def _scope(column: str, *, scoped: bool) -> str:
    return f" AND {dirty_tenants_sql(column)}" if scoped else ""


def _matches_store(
    cursor: Any, *, rows: list[dict[str, Any]], gone: set[str], scoped: bool, as_of: date, computed_at: datetime
) -> int:
    """Replace the stored matches (of the scope's tenants) with ``rows``; how many appeared or went away."""
    cursor.execute(
        MATCHES_DELETE_STALE_SQL.format(scope=_scope("m.tenant_id", scoped=scoped)),
        [[f"{r['tenant_id']}\x1f{r['playbook_id']}" for r in rows]],
    )
    changed = int(cursor.rowcount)
    # Whatever the scope: a customer churned since its last evaluation loses its matches now.
    cursor.execute(MATCHES_DELETE_TENANTS_SQL, [sorted(gone)])
    changed += cursor.rowcount
    cursor.execute(MATCHES_UPSERT_SQL, {"now": computed_at, "d": as_of, "rows": json.dumps(rows)})
    changed += sum(1 for row in rows_as_dicts(cursor) if row["inserted"])
    if scoped:
        # The other tenants' matches were confirmed by this run too ("last recompute that matched").
        cursor.execute(MATCHES_CONFIRM_SQL, [computed_at, computed_at])
    return changed


def _risk_days_record(cursor: Any, *, as_of: date, scoped: bool, matches: list[Match]) -> int:
    """Today's risk-day row for every at-risk customer (the highest level of the day kept), with the ids
    of the playbooks that matched it; how many rows were written."""
    cursor.execute(RISK_DAY_UPSERT_SQL.format(scope=_scope("tm.tenant_id", scoped=scoped)), {"d": as_of})
    days = int(cursor.rowcount)
    matched_ids: dict[str, list[str]] = {}
    for playbook, tid, _ in matches:  # sorted by playbook id: each list comes out sorted
        matched_ids.setdefault(tid, []).append(playbook.pk)
    # A matched tenant is always at risk (raised above), so its day row exists. The day's ids are
    # merged here and written back by key (Citus runs no subquery in an UPDATE's SET).
    if matched_ids:
        cursor.execute(RISK_DAY_PLAYBOOKS_SQL, {"d": as_of, "tenants": sorted(matched_ids)})
        merged = {
            row["tenant_id"]: sorted(
                set(json.loads(row["playbooks"]) if isinstance(row["playbooks"], str) else row["playbooks"])
                | set(matched_ids[row["tenant_id"]])
            )
            for row in rows_as_dicts(cursor)
        }
        cursor.execute(
            RISK_DAY_PLAYBOOKS_WRITE_SQL,
            {"d": as_of, "tenants": list(merged), "ids": [json.dumps(ids) for ids in merged.values()]},
        )
    return days
