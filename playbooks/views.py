"""Playbook pages (``/playbooks/``, ``/playbooks/<id>/``) and the POST targets of the
Customer page's playbook panel (log an intervention, record its outcome, record a churn).

Staff only (``staff_required``), CSRF on every form (Django's middleware). The
forms post here and come back to the customer page with a message; bad input
is a 400 page that names the problem, and nothing is written.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from customers.metrics.texts import talk_track_render
from opsconsole.pages import staff_required
from playbooks.selectors import (
    HORIZONS,
    OBSERVATIONAL_NOTE,
    interventions_list,
    playbook_detail_payload,
    playbook_effectiveness,
    playbooks_payload,
    signal_validation,
)
from playbooks.services import PlaybookInputError, churn_create, intervention_create, intervention_outcome_record


def _effectiveness_display(entry: dict[str, Any]) -> dict[str, Any]:
    """Adds ``groups`` (label, tenants, retention per horizon) so the template needs no dict lookups."""
    groups = []
    for label, key in (("With this playbook", "treated"), ("Comparison: flagged, no intervention", "comparison")):
        group = entry[key]
        retention = [{**group[f"retained_{h}d"], "horizon": h} for h in HORIZONS]
        groups.append((label, {"tenants": group["tenants"], "retention": retention}))
    return {**entry, "groups": groups}


@require_GET
@staff_required
def playbooks_page(request: HttpRequest) -> HttpResponse:
    effectiveness = {e["playbook_id"]: e for e in playbook_effectiveness()}
    rows = [(p, effectiveness.get(p["id"])) for p in playbooks_payload()]
    return render(
        request,
        "playbooks/list.html",
        {
            "rows": rows,
            "validation": signal_validation(),
            "observational_note": OBSERVATIONAL_NOTE,
            "recent_interventions": list(interventions_list()[:20]),
        },
    )


@require_GET
@staff_required
def playbook_page(request: HttpRequest, playbook_id: str) -> HttpResponse:
    payload = playbook_detail_payload(playbook_id=playbook_id)
    if payload is None:
        raise Http404(f"No playbook '{playbook_id}'.")
    # The playbook's own page speaks to no one in particular: placeholders show as gaps ("[first name]").
    payload["actions"] = [{**a, "spoken": talk_track_render(a["talk_track"], None)} for a in payload["actions"]]
    effectiveness = next(
        (_effectiveness_display(e) for e in playbook_effectiveness() if e["playbook_id"] == playbook_id), None
    )
    return render(
        request,
        "playbooks/detail.html",
        {
            "playbook": payload,
            "effectiveness": effectiveness,
            "observational_note": OBSERVATIONAL_NOTE,
            "interventions": list(interventions_list(playbook_id=playbook_id)[:50]),
        },
    )


def _next_url(request: HttpRequest, tenant_id: str) -> str:
    """Where the form goes back to: the posted ``next`` if it is a local path, else the customer page."""
    target = request.POST.get("next", "")
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return f"/customers/{tenant_id}/" if tenant_id else "/playbooks/"


def _date(value: str, field: str, errors: dict[str, str]) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        errors[field] = f"'{value[:40]}' is not a date (use YYYY-MM-DD)."
        return None


def _form_error(request: HttpRequest, *, what: str, errors: dict[str, str], back: str) -> HttpResponse:
    return render(
        request, "playbooks/form_error.html", {"what": what, "errors": sorted(errors.items()), "back": back}, status=400
    )


@require_POST
@staff_required
def intervention_new(request: HttpRequest) -> HttpResponse:
    post = request.POST
    tenant_id = post.get("tenant_id", "").strip()
    back = _next_url(request, tenant_id)
    errors: dict[str, str] = {}
    day = _date(post.get("date", ""), "date", errors)
    outcome = post.get("outcome", "").strip() or None
    if not errors:
        try:
            record = intervention_create(
                tenant_id=tenant_id,
                playbook_id=post.get("playbook_id", "").strip() or None,
                action=post.get("action", ""),
                channel=post.get("channel", ""),
                day=day,
                note=post.get("note", ""),
                outcome=outcome,
                created_by=request.user.get_username(),
            )
        except PlaybookInputError as exc:
            errors = exc.errors
    if errors:
        return _form_error(request, what="log the intervention", errors=errors, back=back)
    messages.success(request, f"Intervention logged for {record.tenant_id}: {record.action}.")
    return HttpResponseRedirect(back)


@require_POST
@staff_required
def intervention_outcome(request: HttpRequest, intervention_id: int) -> HttpResponse:
    post = request.POST
    tenant_id = post.get("tenant_id", "").strip()
    back = _next_url(request, tenant_id)
    errors: dict[str, str] = {}
    outcome_at = _date(post.get("outcome_at", ""), "outcome_at", errors)
    if not errors:
        try:
            record = intervention_outcome_record(
                intervention_id=intervention_id,
                outcome=post.get("outcome", ""),
                outcome_at=outcome_at,
                note=post.get("note", ""),
            )
        except PlaybookInputError as exc:
            errors = exc.errors
    if errors:
        return _form_error(request, what="record the outcome", errors=errors, back=back)
    messages.success(request, f"Outcome recorded: {record.get_outcome_display()} ({record.action}).")
    return HttpResponseRedirect(back)


@require_POST
@staff_required
def churn_new(request: HttpRequest) -> HttpResponse:
    post = request.POST
    tenant_id = post.get("tenant_id", "").strip()
    back = _next_url(request, tenant_id)
    errors: dict[str, str] = {}
    day = _date(post.get("date", ""), "date", errors)
    if not errors:
        try:
            record = churn_create(
                tenant_id=tenant_id, day=day, reason=post.get("reason", ""), created_by=request.user.get_username()
            )
        except PlaybookInputError as exc:
            errors = exc.errors
    if errors:
        return _form_error(request, what="record the churn", errors=errors, back=back)
    messages.success(request, f"Churn recorded for {record.tenant_id} on {record.date.isoformat()}.")
    return HttpResponseRedirect(back)
