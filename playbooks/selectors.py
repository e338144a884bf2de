"""Reads of the playbooks app. The pages, the API and the customers app's at-risk/detail
answers call these, so a figure on a page and in the API can never differ.

Query counts are constant in the number of tenants (prefetches and one
aggregate per playbook at most).

Playbook effectiveness is playbooks/effectiveness.py; the signal's validation playbooks/signal_validation.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from django.db.models import Max, QuerySet
from django.utils import timezone

from customers.metrics.texts import product_words, product_words_render, talk_track_facts, talk_track_render
from customers.models import Tenant, TenantMetrics
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
)
from playbooks.services import ACTION_MAX_CHARS, SNOOZE_MAX_DAYS

# The snooze form's suggested day: a week, the founder changes it.
SNOOZE_DEFAULT_DAYS = 7


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
