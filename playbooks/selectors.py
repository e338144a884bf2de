"""Reads of the playbooks app. The pages, the API and the customers app's at-risk/detail
answers call these, so a figure on a page and in the API can never differ.

Query counts are constant in the number of tenants (prefetches and one
aggregate per playbook at most).

Effectiveness (``playbook_effectiveness``), per playbook P, with T = today:

* treated tenants: tenants with at least one InterventionRecord for P; their
  anchor is the date of the FIRST such intervention, their outcome the latest
  recorded one. ``times_applied`` counts the intervention records.
* period: first to last anchor of the treated tenants (with none yet: the
  whole recorded risk history up to T).
* comparison group: customers flagged for P in the period (P matched, or
  ``risk_level`` equal to P's level, on some day of ``ops_tenant_risk_day``),
  anchored at their first such day, with NO intervention of any kind recorded
  on or after that anchor, and not treated with P.
* retained at H days (30, 60): only tenants with anchor + H <= T count
  (``evaluable``); a tenant is retained when no ChurnRecord falls in
  [anchor, anchor + H] and, for treated tenants, the recorded outcome (if any)
  is retained or expanded.

Observational, not an experiment: the founder chose whom to help, so the
groups can differ in ways the numbers do not show.

Signal validation (``signal_validation``): for every recorded churn, the
highest risk level the tenant had on the churn's day or in the LOOKBACK_DAYS
days before it and how many days before the churn it first reached that level;
and, for every tenant ever flagged, its level and whether it churned: a churned
tenant's level is the one that warned of its churn (as above), any other's its
highest level ever. One definition (``flagged_before_churn``) behind both tables,
so a level's churned count in one is its churns in the other.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection
from django.db.models import Max, Min, QuerySet
from django.utils import timezone

from core.rows import rows_as_dicts
from customers.metrics.texts import product_words, product_words_render, talk_track_facts, talk_track_render
from customers.models import RiskLevel, Tenant, TenantMetrics
from events.registry import Registry, event_type_registry
from playbooks.conditions import condition_text
from playbooks.evaluation import LEVEL_RANK, playbook_matches_measure
from playbooks.followup import at_risk_follow_ups, follow_ups_get
from playbooks.models import (
    NOTE_MAX_CHARS,
    Channel,
    ChurnRecord,
    EvaluationState,
    InterventionRecord,
    Outcome,
    Playbook,
    PlaybookAction,
    PlaybookMatch,
    PlaybookPurpose,
    Snooze,
    TenantRiskDay,
)
from playbooks.services import ACTION_MAX_CHARS, SNOOZE_MAX_DAYS

HORIZONS = (30, 60)
LOOKBACK_DAYS = 90
LEVELS = [RiskLevel.CRITICAL, RiskLevel.HIGH, RiskLevel.MEDIUM]
# The snooze form's suggested day: a week, the founder changes it.
SNOOZE_DEFAULT_DAYS = 7
OBSERVATIONAL_NOTE = (
    "Observational, not an experiment: the founder chose whom to help, so treated and comparison tenants may "
    "differ in ways these numbers do not show. Read it as a hint of what works, never as proof."
)


# --- Playbooks ---------------------------------------------------------------------------------
def playbooks_all(*, enabled_only: bool = False, purpose: str | None = None) -> list[Playbook]:
    """Every playbook (of one ``purpose`` if given). The playbooks API, page and effectiveness list the
    call list's (risk) playbooks; expansion playbooks show with their candidates on the Customers page."""
    qs = Playbook.objects.prefetch_related("conditions", "actions").order_by("id")
    if enabled_only:
        qs = qs.filter(enabled=True)
    if purpose is not None:
        qs = qs.filter(purpose=purpose)
    return list(qs)


def playbook_get(*, playbook_id: str) -> Playbook | None:
    return Playbook.objects.prefetch_related("conditions", "actions").filter(pk=playbook_id).first()


def _matches_by_playbook(playbook_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for match in (
        PlaybookMatch.objects.filter(playbook_id__in=playbook_ids).select_related("tenant").order_by("tenant_id")
    ):
        out[match.playbook_id].append(
            {
                "tenant_id": match.tenant_id,
                "name": match.tenant.name,
                "matched_since": match.first_matched_at,
                "matched_at": match.matched_at,
                "measured": match.measured,
            }
        )
    return out


def playbook_payload(
    playbook: Playbook, *, matched_tenants: list[dict[str, Any]], registry: Registry
) -> dict[str, Any]:
    """The documented PlaybookDetail (plus ``enabled`` and the tenants matched at the last recompute).

    The prose says the product's own types: {core_action}, {blocked_action}... are filled from
    the registry's labels (customers.metrics.texts.PRODUCT_WORDS); placeholders about a tenant
    ({first name}, {link}) stay for the page that knows whom it speaks to."""
    words = product_words(registry)
    return {
        "id": playbook.pk,
        "name": playbook.name,
        "enabled": playbook.enabled,
        "trigger_conditions": [condition_text(c, registry=registry) for c in playbook.conditions.all()],
        "risk_level": playbook.risk_level,
        "actions": [
            {
                "order": a.order,
                "step": product_words_render(a.step, words),
                "timing": a.timing,
                "channel": a.channel,
                "talk_track": product_words_render(a.talk_track, words),
            }
            for a in playbook.actions.all()
        ],
        "success_metric": product_words_render(playbook.success_metric, words),
        "notes": product_words_render(playbook.notes, words),
        "matched_tenants": matched_tenants,
    }


def playbook_match_freshness() -> tuple[datetime | None, datetime | None]:
    """(when the matches were last evaluated, when a playbook was last edited). Two queries.

    The match counts on /playbooks/ are the last recompute's: the page says so, and says when
    an edit since then has not been evaluated yet.
    """
    evaluated_at = EvaluationState.objects.filter(id=1).values_list("evaluated_at", flat=True).first()
    edited_at = Playbook.objects.aggregate(last=Max("updated_at"))["last"]
    return evaluated_at, edited_at


def playbooks_payload() -> list[dict[str, Any]]:
    playbooks = playbooks_all(purpose=PlaybookPurpose.RISK)
    matches = _matches_by_playbook([p.pk for p in playbooks])
    registry = event_type_registry()
    return [playbook_payload(p, matched_tenants=matches.get(p.pk, []), registry=registry) for p in playbooks]


def playbook_detail_payload(*, playbook_id: str) -> dict[str, Any] | None:
    playbook = playbook_get(playbook_id=playbook_id)
    if playbook is None:
        return None
    return playbook_payload(
        playbook,
        matched_tenants=_matches_by_playbook([playbook.pk]).get(playbook.pk, []),
        registry=event_type_registry(),
    )


def tenant_matched_playbooks(*, tenant_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """tenant_id -> playbooks it matched at the last recompute, strongest level first (two queries,
    and a third for the registry the conditions read in when anything matched)."""
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in tenant_ids}
    # Risk playbooks only: an expansion match is no reason to call (expansion_candidates lists those).
    matches = (
        PlaybookMatch.objects.filter(tenant_id__in=tenant_ids, playbook__purpose=PlaybookPurpose.RISK)
        .select_related("playbook")
        .prefetch_related("playbook__conditions")
    )
    registry: Registry | None = None
    for match in matches:
        playbook = match.playbook
        registry = registry or event_type_registry()
        out[match.tenant_id].append(
            {
                "id": playbook.pk,
                "name": playbook.name,
                "risk_level": playbook.risk_level,
                "trigger_conditions": [condition_text(c, registry=registry) for c in playbook.conditions.all()],
                "measured": match.measured,
                "matched_since": match.first_matched_at,
            }
        )
    for entries in out.values():
        entries.sort(key=lambda e: (-LEVEL_RANK[e["risk_level"]], e["id"]))
    return out


def expansion_candidates(*, limit: int) -> list[dict[str, Any]]:
    """Customers matched by an expansion playbook at the last recompute, newest match first: each with
    the playbooks it matched (their conditions and the measured values, as the founder reads them) and
    the first playbook's first step. Three queries whatever the number of customers."""
    matches = list(
        PlaybookMatch.objects.filter(playbook__purpose=PlaybookPurpose.EXPANSION, tenant__kind="customer")
        .select_related("playbook", "tenant")
        .order_by("-first_matched_at", "tenant_id", "playbook_id")
    )
    out: dict[str, dict[str, Any]] = {}
    for match in matches:
        entry = out.get(match.tenant_id)
        if entry is None:
            if len(out) == limit:
                continue
            entry = out[match.tenant_id] = {
                "tenant_id": match.tenant_id,
                "name": match.tenant.name,
                "since": match.first_matched_at,
                "playbooks": [],
            }
        # measured: per condition, its text and the value that satisfied it (playbook_matches_measure).
        entry["playbooks"].append({"id": match.playbook_id, "name": match.playbook.name, "why": match.measured})
    first = playbook_first_actions(playbook_ids={p["id"] for e in out.values() for p in e["playbooks"]})
    for entry in out.values():
        entry["first_step"] = first.get(entry["playbooks"][0]["id"])
    return list(out.values())


def playbook_first_actions(*, playbook_ids: Iterable[str]) -> dict[str, PlaybookAction]:
    """playbook id -> its first step (by order), its step and talk track in the product's words
    ({core_action}...: customers.metrics.texts.PRODUCT_WORDS). Two queries (the registry's too)."""
    first: dict[str, PlaybookAction] = {}
    for action in PlaybookAction.objects.filter(playbook_id__in=list(playbook_ids)).order_by(
        "playbook_id", "order", "id"
    ):
        first.setdefault(action.playbook_id, action)
    words = product_words(event_type_registry()) if first else {}
    for action in first.values():
        action.step = product_words_render(action.step, words)
        action.talk_track = product_words_render(action.talk_track, words)
    return first


def playbook_preview(*, playbook: Playbook) -> list[tuple[str, list[dict[str, Any]]]]:
    """Tenants the playbook's SAVED conditions match right now against the latest metrics
    (evaluated live, before the next recompute stores anything). (tenant_id, measured) pairs."""
    latest = TenantMetrics.objects.aggregate(as_of=Max("as_of"))["as_of"]
    conditions = list(playbook.conditions.all())
    if latest is None or not conditions:
        return []
    return [
        (tenant_id, measured)
        for _, tenant_id, measured in playbook_matches_measure(
            as_of=latest, playbooks=[(playbook, conditions)], registry=event_type_registry()
        )
    ]


# --- Founder actions -------------------------------------------------------------------------
def interventions_list(*, tenant_id: str | None = None, playbook_id: str | None = None) -> QuerySet[InterventionRecord]:
    qs = InterventionRecord.objects.select_related("tenant", "playbook").order_by("-date", "-id")
    if tenant_id:
        qs = qs.filter(tenant_id=tenant_id)
    if playbook_id:
        qs = qs.filter(playbook_id=playbook_id)
    return qs


def churns_list(*, tenant_id: str | None = None) -> QuerySet[ChurnRecord]:
    qs = ChurnRecord.objects.select_related("tenant").order_by("-date", "-id")
    if tenant_id:
        qs = qs.filter(tenant_id=tenant_id)
    return qs


# --- Effectiveness ---------------------------------------------------------------------------
def _churn_dates() -> dict[str, list[date]]:
    out: dict[str, list[date]] = defaultdict(list)
    for tenant_id, day in ChurnRecord.objects.values_list("tenant_id", "date"):
        out[tenant_id].append(day)
    return out


def _retention(
    anchors: dict[str, tuple[date, str | None]], *, churns: dict[str, list[date]], today: date, horizon: int
) -> dict[str, Any]:
    evaluable = retained = 0
    for tenant_id, (anchor, outcome) in anchors.items():
        end = anchor + timedelta(days=horizon)
        if end > today:
            continue  # not followed for long enough yet
        evaluable += 1
        churned = any(anchor <= d <= end for d in churns.get(tenant_id, []))
        if not churned and outcome not in (Outcome.CHURNED, Outcome.NO_RESPONSE):
            retained += 1
    return {
        "evaluable": evaluable,
        "retained": retained,
        "share": round(retained / evaluable, 3) if evaluable else None,
    }


def _flagged_first_days(*, playbook: Playbook, start: date, end: date) -> dict[str, date]:
    """First day in [start, end] each customer was flagged for the playbook (matched it, or at its level)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT d.tenant_id, min(d.day) FROM ops_tenant_risk_day d
            JOIN customers_tenant t ON t.tenant_id = d.tenant_id AND t.kind = 'customer'
            WHERE d.day BETWEEN %s AND %s AND (d.risk_level = %s OR d.playbooks @> jsonb_build_array(%s::text))
            GROUP BY d.tenant_id
            """,
            [start, end, playbook.risk_level, playbook.pk],
        )
        return dict(cursor.fetchall())


def playbook_effectiveness(*, today: date | None = None) -> list[dict[str, Any]]:
    """Per playbook: times applied and retention at 30/60 days against an observational
    comparison group. Definitions in the module docstring."""
    today = today or timezone.localdate()
    playbooks = playbooks_all(purpose=PlaybookPurpose.RISK)
    churns = _churn_dates()
    latest_intervention = dict(
        InterventionRecord.objects.values("tenant_id").annotate(last=Max("date")).values_list("tenant_id", "last")
    )
    history_start = TenantRiskDay.objects.aggregate(first=Min("day"))["first"]
    by_playbook: dict[str, list[InterventionRecord]] = defaultdict(list)
    for record in InterventionRecord.objects.filter(playbook__isnull=False).order_by("date", "id"):
        by_playbook[record.playbook_id].append(record)

    out = []
    for playbook in playbooks:
        records = by_playbook.get(playbook.pk, [])
        treated: dict[str, tuple[date, str | None]] = {}
        latest_outcome: dict[str, tuple[date, int, str]] = {}
        outcomes = dict.fromkeys([*Outcome.values, "not_recorded"], 0)
        for record in records:
            if record.tenant_id not in treated:
                treated[record.tenant_id] = (record.date, None)
            outcomes[record.outcome or "not_recorded"] += 1
            if record.outcome:
                key = (record.outcome_at or record.date, record.pk, record.outcome)
                if record.tenant_id not in latest_outcome or key > latest_outcome[record.tenant_id]:
                    latest_outcome[record.tenant_id] = key
        treated = {
            t: (anchor, latest_outcome[t][2] if t in latest_outcome else None) for t, (anchor, _) in treated.items()
        }

        if treated:
            period_start = min(a for a, _ in treated.values())
            period_end = max(a for a, _ in treated.values())
        else:
            period_start, period_end = history_start, today
        comparison: dict[str, tuple[date, str | None]] = {}
        if period_start is not None:
            for tenant_id, anchor in _flagged_first_days(playbook=playbook, start=period_start, end=period_end).items():
                if tenant_id in treated:
                    continue
                last = latest_intervention.get(tenant_id)
                if last is not None and last >= anchor:
                    continue  # helped after being flagged: not an untreated comparison
                comparison[tenant_id] = (anchor, None)

        out.append(
            {
                "playbook_id": playbook.pk,
                "name": playbook.name,
                "risk_level": playbook.risk_level,
                "times_applied": len(records),
                "outcomes": outcomes,
                "period_start": period_start,
                "period_end": period_end,
                "treated": {
                    "tenants": len(treated),
                    **{f"retained_{h}d": _retention(treated, churns=churns, today=today, horizon=h) for h in HORIZONS},
                },
                "comparison": {
                    "tenants": len(comparison),
                    **{
                        f"retained_{h}d": _retention(comparison, churns=churns, today=today, horizon=h)
                        for h in HORIZONS
                    },
                },
                "observational_note": OBSERVATIONAL_NOTE,
            }
        )
    return out


# --- Signal validation -----------------------------------------------------------------------
def _days_summary(values: list[int]) -> dict[str, float | None]:
    if not values:
        return {"min": None, "median": None, "max": None}
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def flagged_before_churn(flag_day: date, churn_day: date) -> bool:
    """Whether a day the tenant was flagged counts as a warning of a churn: on the churn's day or
    in the LOOKBACK_DAYS before it. The one definition both validation tables use: before, one
    counted the churn day and the other did not, so a churn recorded on the day of its first flag
    read "not flagged 1 (100%)" beside "critical, churned afterwards 1".
    """
    return churn_day - timedelta(days=LOOKBACK_DAYS) <= flag_day <= churn_day


# Every customer ever flagged: its highest level and the first day at that level. A scan of
# ops_tenant_risk_day (one row per at-risk customer and day), joined to customers_tenant by primary key.
FLAGGED_TENANTS_SQL = """
WITH ranked AS (
    SELECT d.tenant_id, d.day,
           array_position(ARRAY['medium','high','critical']::text[], d.risk_level::text) AS r
    FROM ops_tenant_risk_day d
    JOIN customers_tenant t ON t.tenant_id = d.tenant_id AND t.kind = 'customer'
), top AS (SELECT tenant_id, max(r) AS r FROM ranked GROUP BY tenant_id)
SELECT top.tenant_id, top.r AS rank, min(ranked.day) AS first_day
FROM top JOIN ranked ON ranked.tenant_id = top.tenant_id AND ranked.r = top.r
GROUP BY top.tenant_id, top.r
"""


def _churns_judged(churns: list[ChurnRecord]) -> tuple[list[dict[str, Any]], dict[str | None, list[int]]]:
    """Each churn with the highest level its customer reached in the lookback before it and how many days
    before; and those days by level."""
    history: dict[str, list[tuple[date, int]]] = defaultdict(list)
    if churns:
        earliest = min(c.date for c in churns) - timedelta(days=LOOKBACK_DAYS)
        for tenant_id, day, level in TenantRiskDay.objects.filter(
            tenant_id__in={c.tenant_id for c in churns}, day__gte=earliest
        ).values_list("tenant_id", "day", "risk_level"):
            history[tenant_id].append((day, LEVEL_RANK[level]))
    rank_level = {rank: level for level, rank in LEVEL_RANK.items()}
    per_churn = []
    lead_days: dict[str | None, list[int]] = defaultdict(list)
    for churn in churns:
        window = [(d, r) for d, r in history.get(churn.tenant_id, []) if flagged_before_churn(d, churn.date)]
        top = max((r for _, r in window), default=0)
        level = rank_level[top]
        days_before = (churn.date - min(d for d, r in window if r == top)).days if top else None
        if days_before is not None:
            lead_days[level].append(days_before)
        per_churn.append(
            {
                "tenant_id": churn.tenant_id,
                "name": churn.tenant.name,
                "date": churn.date,
                "reason": churn.reason,
                "highest_level": level,
                "days_flagged_before": days_before,
            }
        )
    return per_churn, lead_days


def _flagged_by_level(per_churn: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per level, the customers ever flagged at it and how many of them churned.

    A churned customer sits in the row of the level that warned of its churn (its latest churn's); any
    other customer in the row of its highest level ever. So the churned column of each level equals the
    churns table's count at that level."""
    rank_level = {rank: level for level, rank in LEVEL_RANK.items()}
    with connection.cursor() as cursor:
        cursor.execute(FLAGGED_TENANTS_SQL)
        flagged_rows = rows_as_dicts(cursor)
    warned_level = {c["tenant_id"]: c["highest_level"] for c in per_churn if c["highest_level"] is not None}
    by_level: dict[str | None, list[str]] = defaultdict(list)
    for row in flagged_rows:
        by_level[warned_level.get(row["tenant_id"], rank_level[row["rank"]])].append(row["tenant_id"])
    flagged = []
    for level in LEVELS:
        tenants = by_level.get(level, [])
        churned = sum(1 for t in tenants if t in warned_level)
        flagged.append(
            {
                "risk_level": level,
                "tenants": len(tenants),
                "churned": churned,
                "share_churned": round(churned / len(tenants), 3) if tenants else None,
            }
        )
    return flagged


def _trust_warning(n: int, minimum: int) -> str | None:
    if n >= minimum:
        return None
    return (
        "No churn recorded yet: nothing to judge the risk signal against."
        if n == 0
        else f"Only {n} churn{'s' if n != 1 else ''} recorded: too few to judge the risk signal."
    ) + f" Until at least {minimum} are recorded, treat the risk levels as an attention ranking, not a prediction."


def signal_validation(*, today: date | None = None) -> dict[str, Any]:
    """Was the risk signal right? Definitions in the module docstring. Three queries."""
    today = today or timezone.localdate()
    churns = list(ChurnRecord.objects.select_related("tenant").order_by("date", "id"))
    per_churn, lead_days = _churns_judged(churns)
    n = len(churns)
    churns_by_level = []
    for level in [*LEVELS, None]:
        count = sum(1 for c in per_churn if c["highest_level"] == level)
        churns_by_level.append(
            {
                "risk_level": level or "not_flagged",
                "churns": count,
                "share": round(count / n, 3) if n else None,
                "days_before": _days_summary(lead_days.get(level, [])) if level else None,
            }
        )
    minimum = settings.MIN_CHURNS_FOR_TRUST  # one setting, shared with the backtest (validation/)
    return {
        "as_of": today,
        "lookback_days": LOOKBACK_DAYS,
        "churns_recorded": n,
        "minimum_churns_for_trust": minimum,
        "warning": _trust_warning(n, minimum),
        "churns_by_level": churns_by_level,
        "flagged": _flagged_by_level(per_churn),
        "churns": per_churn,
        "risk_history_starts": TenantRiskDay.objects.aggregate(first=Min("day"))["first"],
    }


# --- The Customer page's panel ---------------------------------------------------------------
def customer_playbook_panel(tenant_id: str) -> dict[str, Any]:
    """Context for templates/playbooks/partials/customer_actions.html and customer_panel.html (both as ``panel``):
    matched playbooks with their steps and talk tracks, the intervention and churn
    history, the snooze that holds, and what the forms (and their undo) need. Constant number
    of queries."""
    today = timezone.localdate()
    matched = tenant_matched_playbooks(tenant_ids=[tenant_id])[tenant_id]
    playbooks = {p.pk: p for p in playbooks_all()}
    # Talk tracks as said to this customer: {first_name}, {account}, {core_action} filled in.
    facts = talk_track_facts(tenant_id=tenant_id) if matched else None
    words = product_words(event_type_registry()) if matched else {}
    for entry in matched:
        playbook = playbooks.get(entry["id"])
        entry["actions"] = list(playbook.actions.all()) if playbook else []
        for action in entry["actions"]:
            action.step = product_words_render(action.step, words)
            action.spoken = talk_track_render(product_words_render(action.talk_track, words), facts)
        entry["success_metric"] = product_words_render(playbook.success_metric, words) if playbook else ""
    return {
        "tenant_id": tenant_id,
        "tenant_exists": Tenant.objects.filter(tenant_id=tenant_id).exists(),
        "matched": matched,
        "interventions": list(interventions_list(tenant_id=tenant_id)[:50]),
        "churns": list(churns_list(tenant_id=tenant_id)),
        "snooze": _snooze_holding(tenant_id, today=today),
        "playbooks": [(p.pk, p.name) for p in playbooks.values()],
        "channels": Channel.choices,
        "outcomes": Outcome.choices,
        "today": today,
        "tomorrow": today + timedelta(days=1),
        "snooze_default": today + timedelta(days=SNOOZE_DEFAULT_DAYS),
        "snooze_max": today + timedelta(days=SNOOZE_MAX_DAYS),
        "action_max": ACTION_MAX_CHARS,
        "note_max": NOTE_MAX_CHARS,
        "follow_up": _customer_follow_up(tenant_id, matched=matched, today=today),
        "next": f"/customers/{quote(tenant_id, safe='')}/",
    }


def _snooze_holding(tenant_id: str, *, today: date) -> Snooze | None:
    """The snooze that parks the customer now, as the follow-up reads it (its latest, running past
    today), for its undo. Uses index: ops_snooze_tenant_latest."""
    latest = Snooze.objects.filter(tenant_id=tenant_id).order_by("-created_at", "-id").first()
    return latest if latest is not None and latest.until > today else None


def _customer_follow_up(tenant_id: str, *, matched: list[dict[str, Any]], today: date) -> dict[str, Any] | None:
    """The customer's follow-up as the at-risk API gives it (the same selector); None for no tenant."""
    metrics = TenantMetrics.objects.filter(tenant_id=tenant_id).first()
    if metrics is not None:
        return at_risk_follow_ups(rows=[metrics], matched={tenant_id: matched}, today=today)[tenant_id]
    follow_up = follow_ups_get(tenant_ids=[tenant_id], today=today).get(tenant_id)
    return follow_up.as_dict() if follow_up else None
