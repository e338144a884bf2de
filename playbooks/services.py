"""Writes of the playbooks app: matching playbooks after each recompute, and recording founder actions.

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
from django.utils import timezone

from customers.churn import churned_gone_ids
from customers.founder_actions import answers_changed
from customers.metrics.rows import row_as_dict
from customers.metrics.scope import dirty_scope, dirty_tenants_count, dirty_tenants_sql
from customers.metrics.write import LevelRaise, tenant_levels_raise
from customers.models import RISK_LEVEL_RANK, Tenant
from events.registry import Registry, event_type_registry
from playbooks.churns import churn_record
from playbooks.conditions import condition_event_types, condition_problems, condition_text, match_query
from playbooks.errors import PlaybookInputError, text_problems
from playbooks.models import (
    NOTE_MAX_CHARS,
    Channel,
    ChurnRecord,
    EvaluationState,
    InterventionRecord,
    Outcome,
    Playbook,
    PlaybookPurpose,
    Snooze,
    TriggerCondition,
)

logger = logging.getLogger(__name__)

LEVEL_RANK: dict[str | None, int] = {None: 0, **RISK_LEVEL_RANK}
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
        rows = cursor.fetchall()
    by_id = {p.pk: (p, conds) for p, conds in playbooks}
    out = []
    for playbook_id, tid, values in rows:
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
    ``metrics_dirty`` table) and the same playbooks and day as the last
    evaluation (``EvaluationState``), only those tenants are evaluated; any other
    tenant's inputs are unchanged, so its matches, raise and day row still hold.
    Otherwise every tenant is. Without the scope the evaluation read every
    tenant's rollups on every run, which made an incremental run grow with history
    (measured at 10,000 tenants: 1.3 s of a 2.0 s idle run at 10M events).
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

    # Strongest risk playbook per tenant: the level it raises the tenant to, and why. An expansion
    # playbook's matches are kept (expansion candidates) but raise nothing and are no risk history.
    risk_matches = [m for m in matches if m[0].purpose == PlaybookPurpose.RISK]
    strongest: dict[str, tuple[Playbook, list[dict[str, Any]]]] = {}
    for playbook, tid, measured in risk_matches:
        held = strongest.get(tid)
        if held is None or LEVEL_RANK[playbook.risk_level] > LEVEL_RANK[held[0].risk_level]:
            strongest[tid] = (playbook, measured)
    raises = [
        {
            "tenant_id": tid,
            "level": playbook.risk_level,
            "rank": LEVEL_RANK[playbook.risk_level],
            "reason": f"Playbook '{playbook.name}' matched ({playbook.risk_level}): "
            + "; ".join(m["condition"] for m in measured),
        }
        for tid, (playbook, measured) in sorted(strongest.items())
    ]
    matched_ids: dict[str, list[str]] = {}
    for playbook, tid, _ in risk_matches:  # sorted by playbook id: each list comes out sorted
        matched_ids.setdefault(tid, []).append(playbook.pk)

    def scope(column: str) -> str:
        return f" AND {dirty_tenants_sql(column)}" if scoped else ""

    with transaction.atomic(), connection.cursor() as cursor:
        # Keys as one text array (tenant, unit separator, playbook): a comparison Citus pushes to each shard.
        cursor.execute(
            f"""
            DELETE FROM ops_playbook_match m
            WHERE (m.tenant_id || chr(31) || m.playbook_id) <> ALL(%s::text[]){scope("m.tenant_id")}
            """,
            [[f"{r['tenant_id']}\x1f{r['playbook_id']}" for r in rows]],
        )
        changed = cursor.rowcount
        # Whatever the scope: a customer churned since its last evaluation loses its matches now.
        # Uses index: ops_playbook_match_unique (tenant_id first).
        cursor.execute("DELETE FROM ops_playbook_match WHERE tenant_id = ANY(%s)", [sorted(gone)])
        changed += cursor.rowcount
        # RETURNING tells a new match (xmax = 0: inserted) from one that still holds (updated).
        cursor.execute(
            """
            INSERT INTO ops_playbook_match (tenant_id, playbook_id, matched_at, first_matched_at, as_of, measured)
            SELECT x.tenant_id, x.playbook_id, %(now)s, %(now)s, %(d)s, x.measured
            FROM jsonb_to_recordset(%(rows)s::jsonb) AS x(tenant_id text, playbook_id text, measured jsonb)
            ON CONFLICT (tenant_id, playbook_id) DO UPDATE
            SET matched_at = EXCLUDED.matched_at, as_of = EXCLUDED.as_of, measured = EXCLUDED.measured
            RETURNING (xmax = 0) AS inserted
            """,
            {"now": computed_at, "d": as_of, "rows": json.dumps(rows)},
        )
        changed += sum(1 for (inserted,) in cursor.fetchall() if inserted)
        if scoped:
            # The other tenants' matches were confirmed by this run too ("last recompute that matched").
            cursor.execute(
                "UPDATE ops_playbook_match SET matched_at = %s WHERE matched_at IS DISTINCT FROM %s",
                [computed_at, computed_at],
            )
        # The engine raises (never lowers) the levels and undoes a raise that no longer holds (a
        # threshold edited, a playbook disabled or no longer matching); a raise that still holds
        # costs nothing, so a run with no new events recomputes no raised tenant.
        raised = tenant_levels_raise(
            raises=[LevelRaise(tenant_id=r["tenant_id"], level=r["level"], reason=r["reason"]) for r in raises],
            dirty_only=scoped,
        )
        existing_rank = _RANK_SQL.format(col="ops_tenant_risk_day.risk_level")
        new_rank = _RANK_SQL.format(col="EXCLUDED.risk_level")
        # Two statements whose plans do not depend on row estimates: ops_tenant_metrics was
        # rewritten in this transaction and its statistics are stale, and a join of it with the
        # matches was planned as a nested loop (minutes at 20k tenants). The day rows come from
        # ops_tenant_metrics alone; the playbook ids are then added by primary key.
        cursor.execute(
            f"""
            INSERT INTO ops_tenant_risk_day (tenant_id, day, risk_level, risk_signal_strength, playbooks)
            SELECT tm.tenant_id, %(d)s, tm.risk_level, tm.risk_signal_strength, '[]'::jsonb
            FROM ops_tenant_metrics tm
            JOIN customers_tenant t ON t.tenant_id = tm.tenant_id AND t.kind = 'customer'
            WHERE tm.risk_level IS NOT NULL{scope("tm.tenant_id")}
            ON CONFLICT (tenant_id, day) DO UPDATE SET
                risk_level = CASE WHEN {new_rank} > {existing_rank} THEN EXCLUDED.risk_level
                                  ELSE ops_tenant_risk_day.risk_level END,
                risk_signal_strength = GREATEST(ops_tenant_risk_day.risk_signal_strength,
                                                EXCLUDED.risk_signal_strength)
            """,
            {"d": as_of},
        )
        days = cursor.rowcount
        # A matched tenant is always at risk (raised above), so its day row exists. The day's ids are
        # merged here and written back by key (Citus runs no subquery in an UPDATE's SET).
        if matched_ids:
            cursor.execute(RISK_DAY_PLAYBOOKS_SQL, {"d": as_of, "tenants": sorted(matched_ids)})
            merged = {
                row[0]: sorted(
                    set(json.loads(row[1]) if isinstance(row[1], str) else row[1]) | set(matched_ids[row[0]])
                )
                for row in cursor.fetchall()
            }
            cursor.execute(
                RISK_DAY_PLAYBOOKS_WRITE_SQL,
                {"d": as_of, "tenants": list(merged), "ids": [json.dumps(ids) for ids in merged.values()]},
            )
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


# =========================================================================================
# Founder actions
# =========================================================================================
# The longest texts a founder action keeps: the model's own column width (a longer action was a
# DataError, a 500, from the page form) and the notes' limit the API states. One definition:
# the API's serializers, the page forms and these services all check them.
ACTION_MAX_CHARS = InterventionRecord._meta.get_field("action").max_length or 300
SNOOZE_REASON_MAX_CHARS = Snooze._meta.get_field("reason").max_length or 300
# The longest a snooze may run: a customer is never parked for good by one click.
SNOOZE_MAX_DAYS = 90


# The tenant's earliest event: one probe of ops_events_tenant_time (tenant_id, occurred_at).
TENANT_FIRST_EVENT_SQL = "SELECT min(occurred_at) AS first_at FROM ops_events WHERE tenant_id = %(tenant)s"


def tenant_first_day(tenant: Tenant) -> date:
    """The first day of the customer's life: its first event or its first sighting, the earlier."""
    with connection.cursor() as cursor:
        cursor.execute(TENANT_FIRST_EVENT_SQL, {"tenant": tenant.tenant_id})
        first_event = cursor.fetchone()[0]
    first = min(filter(None, (first_event, tenant.first_seen_at)))
    return timezone.localdate(first)


def intervention_create(
    *,
    tenant_id: str,
    action: str,
    channel: str,
    playbook_id: str | None = None,
    day: date | None = None,
    note: str = "",
    outcome: str | None = None,
    outcome_at: date | None = None,
    created_by: str = "",
) -> InterventionRecord:
    """Record an intervention the founder took. Raises PlaybookInputError (nothing written) on bad input."""
    errors: dict[str, str] = {}
    tenant = Tenant.objects.filter(tenant_id=tenant_id).first()
    if tenant is None:
        errors["tenant_id"] = f"Unknown tenant '{tenant_id[:128]}'."
    playbook = None
    if playbook_id:
        playbook = Playbook.objects.filter(pk=playbook_id).first()
        if playbook is None:
            errors["playbook_id"] = f"Unknown playbook '{playbook_id[:64]}'."
    if not action.strip():
        errors["action"] = "Say what was done, e.g. 'Called the CTO'."
    if channel not in Channel.values:
        errors["channel"] = f"Unknown channel '{channel}'. Choose one of: {', '.join(Channel.values)}."
    if outcome is not None and outcome not in Outcome.values:
        errors["outcome"] = f"Unknown outcome '{outcome}'. Choose one of: {', '.join(Outcome.values)}."
    day = day or timezone.localdate()
    if day > timezone.localdate():
        errors["date"] = "An intervention cannot be dated in the future."
    elif tenant is not None:
        # Before the customer's life began (its first event, or when the console first saw it,
        # whichever is earlier: an import brings older events) there was nothing to act on.
        first_day = tenant_first_day(tenant)
        if day < first_day:
            errors["date"] = (
                f"{day.isoformat()} is before {tenant.name or tenant.tenant_id} was first seen "
                f"({first_day.isoformat()}): date the intervention between then and today."
            )
    text_problems(errors, action=(action.strip(), ACTION_MAX_CHARS), note=(note, NOTE_MAX_CHARS))
    if errors:
        raise PlaybookInputError(errors)
    with transaction.atomic():
        record = InterventionRecord.objects.create(
            tenant=tenant,
            playbook=playbook,
            action=action.strip(),
            channel=channel,
            date=day,
            note=note,
            outcome=outcome,
            outcome_at=(outcome_at or timezone.localdate()) if outcome else None,
            created_by=created_by,
        )
        answers_changed()  # the at-risk answers' follow-up state moved
    return record


def intervention_outcome_record(
    *, intervention_id: int, outcome: str, outcome_at: date | None = None, note: str = ""
) -> InterventionRecord:
    """Set (or correct) the outcome of an intervention. Raises PlaybookInputError on bad input."""
    intervention = InterventionRecord.objects.filter(pk=intervention_id).first()
    if intervention is None:
        raise PlaybookInputError({"id": f"No intervention {intervention_id}."})
    errors: dict[str, str] = {}
    if outcome not in Outcome.values:
        errors["outcome"] = f"Unknown outcome '{outcome}'. Choose one of: {', '.join(Outcome.values)}."
    outcome_at = outcome_at or timezone.localdate()
    if outcome_at < intervention.date:
        errors["outcome_at"] = f"The outcome cannot come before the intervention ({intervention.date.isoformat()})."
    if outcome_at > timezone.localdate():
        errors["outcome_at"] = "The outcome cannot be dated in the future."
    text_problems(errors, note=(note, NOTE_MAX_CHARS))
    if errors:
        raise PlaybookInputError(errors)
    with transaction.atomic():
        intervention.outcome = outcome
        intervention.outcome_at = outcome_at
        intervention.outcome_note = note
        intervention.save(update_fields=["outcome", "outcome_at", "outcome_note"])
        answers_changed()
        if (
            outcome == Outcome.CHURNED
            and not ChurnRecord.objects.filter(tenant_id=intervention.tenant_id, date__gte=intervention.date).exists()
        ):
            # "Churned" as an outcome is a churn: recorded once, so the customer leaves every list.
            churn_record(
                tenant_id=intervention.tenant_id,
                day=outcome_at,
                reason=f"Outcome of '{intervention.action}': {note}".strip().rstrip(":")[:NOTE_MAX_CHARS],
                created_by=intervention.created_by,
            )
    return intervention


def snooze_create(
    *, tenant_id: str, until: date | None, reason: str, created_by: str = "", today: date | None = None
) -> Snooze:
    """Take a customer off the call list until ``until`` (the founder's choice, with a reason).

    Raises PlaybookInputError (nothing written) on bad input: an unknown tenant, a day
    not after today or more than SNOOZE_MAX_DAYS ahead, no reason or a reason too long.
    """
    today = today or timezone.localdate()
    errors: dict[str, str] = {}
    tenant = Tenant.objects.filter(tenant_id=tenant_id).first()
    if tenant is None:
        errors["tenant_id"] = f"Unknown tenant '{tenant_id[:128]}'."
    if until is None:
        errors["until"] = "Say until when, e.g. next Monday."
    elif until <= today:
        errors["until"] = "Snooze until a day after today."
    elif (until - today).days > SNOOZE_MAX_DAYS:
        errors["until"] = f"At most {SNOOZE_MAX_DAYS} days ahead; record a churn if the customer is lost."
    if not reason.strip():
        errors["reason"] = "Say why, e.g. 'On holiday until the 14th'."
    text_problems(errors, reason=(reason.strip(), SNOOZE_REASON_MAX_CHARS))
    if errors:
        raise PlaybookInputError(errors)
    with transaction.atomic():
        snooze = Snooze.objects.create(tenant=tenant, until=until, reason=reason.strip(), created_by=created_by)
        answers_changed()
    return snooze


def snooze_end(*, tenant_id: str) -> int:
    """Put a snoozed customer back on the call list today; returns how many snoozes ended."""
    today = timezone.localdate()
    with transaction.atomic():
        ended = Snooze.objects.filter(tenant_id=tenant_id, until__gt=today).update(until=today)
        answers_changed()
    return ended


# --- Undo: each founder action can be taken back from the Customer page (and the API where it
# has the create). Each moves the answers version, so the cached lists show it at the next read.
# A churn is taken back through the one churn service (playbooks/churns.py::churn_delete).
def intervention_delete(*, intervention_id: int) -> InterventionRecord:
    """Take back a logged step (an intervention) as if it was never logged; returns it as it was.
    A churn its "churned" outcome recorded is a churn of its own and stays (undo it there).
    Raises PlaybookInputError when there is no such intervention."""
    # No row lock (a Citus coordinator cannot take one across shards): the delete's own count says
    # whether this call took it back, so two racing undos cannot both succeed.
    with transaction.atomic():
        intervention = InterventionRecord.objects.filter(pk=intervention_id).first()
        deleted, _ = InterventionRecord.objects.filter(pk=intervention_id).delete() if intervention else (0, {})
        if not deleted:
            raise PlaybookInputError({"id": f"No intervention {intervention_id}."})
        answers_changed()
    return intervention


def intervention_outcome_clear(*, intervention_id: int) -> InterventionRecord:
    """Take back an intervention's outcome: the step is open again (in progress). A churn a
    "churned" outcome recorded stays (undo it there). Raises PlaybookInputError when there is
    no such intervention or it has no outcome."""
    with transaction.atomic():
        intervention = InterventionRecord.objects.filter(pk=intervention_id).first()
        if intervention is None:
            raise PlaybookInputError({"id": f"No intervention {intervention_id}."})
        # Compare-and-set instead of a row lock (see intervention_delete): only a row with an outcome clears.
        cleared = InterventionRecord.objects.filter(pk=intervention_id, outcome__isnull=False).update(
            outcome=None, outcome_at=None, outcome_note=""
        )
        if not cleared:
            raise PlaybookInputError({"outcome": "This intervention has no outcome to take back."})
        intervention.outcome, intervention.outcome_at, intervention.outcome_note = None, None, ""
        answers_changed()
    return intervention


def snooze_delete(*, snooze_id: int) -> Snooze:
    """Take back a snooze as if it was never made (an earlier snooze still running holds again);
    returns it as it was. Raises PlaybookInputError when there is no such snooze."""
    with transaction.atomic():
        snooze = Snooze.objects.filter(pk=snooze_id).first()
        deleted, _ = Snooze.objects.filter(pk=snooze_id).delete() if snooze else (0, {})
        if not deleted:
            raise PlaybookInputError({"id": f"No snooze {snooze_id}."})
        answers_changed()
    return snooze
