"""Playbook pages (``/playbooks/``, ``/playbooks/<id>/``) and the POST targets of the
Customer page's playbook panel (log an intervention, record its outcome, record a churn after a
confirmation step, snooze) and their undo (each founder action can be taken back).

Staff only (``staff_required``), CSRF on every form (Django's middleware). The
forms post here and come back to the customer page with a message; bad input
is a 400 page that names the problem, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from rest_framework.serializers import CharField, ChoiceField, DateField, Serializer

from core.pages import staff_required
from customers.metrics.texts import talk_track_render
from playbooks.churns import churn_delete, churn_problems, churn_record
from playbooks.effectiveness import HORIZONS, OBSERVATIONAL_NOTE, playbook_effectiveness
from playbooks.selectors import (
    churns_list,
    interventions_list,
    playbook_detail_payload,
    playbook_match_freshness,
    playbooks_payload,
)
from playbooks.serializers import (
    ChurnInputSerializer,
    InterventionInputSerializer,
    OutcomeInputSerializer,
    SnoozeInputSerializer,
)
from playbooks.services import (
    PlaybookInputError,
    intervention_create,
    intervention_delete,
    intervention_outcome_clear,
    intervention_outcome_record,
    snooze_create,
    snooze_delete,
    snooze_end,
)
from playbooks.signal_validation import signal_validation


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
    evaluated_at, edited_at = playbook_match_freshness()
    return render(
        request,
        "playbooks/list.html",
        {
            "rows": rows,
            "validation": signal_validation(),
            "observational_note": OBSERVATIONAL_NOTE,
            "recent_interventions": list(interventions_list()[:20]),
            "evaluated_at": evaluated_at,
            "edited_since": evaluated_at is not None and edited_at is not None and edited_at > evaluated_at,
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


def _form_fields(request: HttpRequest, names: tuple[str, ...]) -> dict[str, str]:
    """The posted fields a form has, empty ones left out (so a serializer applies its default)."""
    return {name: request.POST[name] for name in names if request.POST.get(name, "").strip()}


def _validated(serializer_class: type[Serializer], data: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    """The API's own input serializer checks the page form (lengths, choices, dates), so a
    bad form is the same 400 the API gives, never a 500 from the database."""
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return dict(serializer.validated_data)
    for field, messages_ in serializer.errors.items():
        errors[field] = " ".join(str(m) for m in messages_) if isinstance(messages_, list) else str(messages_)
    return {}


# Fields a form carries but the founder never types: posted again unseen.
_CARRIED_FIELDS = frozenset({"tenant_id", "playbook_id"})


def _refill(request: HttpRequest, serializer_class: type[Serializer], names: tuple[str, ...]) -> list[dict[str, Any]]:
    """The form's fields as the founder typed them, each with the input its serializer field calls
    for (a choice list, a date, a long text), so the error page shows the form again filled in."""
    fields = serializer_class().fields
    refill = []
    for name in names:
        field = fields.get(name)
        kind = "text"
        if name in _CARRIED_FIELDS or field is None:
            kind = "hidden"
        elif isinstance(field, ChoiceField):
            kind = "select"
        elif isinstance(field, DateField):
            kind = "date"
        elif isinstance(field, CharField) and (field.max_length or 0) > 300:
            kind = "textarea"
        refill.append(
            {
                "name": name,
                "kind": kind,
                "value": request.POST.get(name, ""),
                "required": field is not None and field.required,
                "choices": list(field.choices.items()) if isinstance(field, ChoiceField) else [],
            }
        )
    return refill


def _form_error(
    request: HttpRequest,
    *,
    what: str,
    errors: dict[str, str],
    back: str,
    serializer_class: type[Serializer] | None = None,
    fields: tuple[str, ...] = (),
) -> HttpResponse:
    """The 400 page naming each problem; with the form's serializer and fields, the form again with
    what was typed, posting to the same place, so nothing typed is lost to an error."""
    refill = _refill(request, serializer_class, fields) if serializer_class is not None else []
    return render(
        request,
        "playbooks/form_error.html",
        {"what": what, "errors": sorted(errors.items()), "back": back, "refill": refill, "action": request.path},
        status=400,
    )


def _form_post(
    request: HttpRequest,
    *,
    what: str,
    serializer_class: type[Serializer],
    fields: tuple[str, ...],
    act: Callable[[dict[str, Any]], Any],
    said: Callable[[Any], str],
    refill: tuple[str, ...] = (),
) -> HttpResponse:
    """A founder form's one flow: validate the fields as the API does, ``act`` through the service, then
    back to the page with ``said(result)``; a refusal shows the form again as typed, with the reasons."""
    back = _next_url(request, request.POST.get("tenant_id", "").strip())
    errors: dict[str, str] = {}
    data = _validated(serializer_class, _form_fields(request, fields), errors)
    if not errors:
        try:
            result = act(data)
        except PlaybookInputError as exc:
            errors = exc.errors
    if errors:
        return _form_error(
            request,
            what=what,
            errors=errors,
            back=back,
            serializer_class=serializer_class,
            fields=(*fields, *refill),
        )
    messages.success(request, said(result))
    return HttpResponseRedirect(back)


@require_POST
@staff_required
def intervention_new(request: HttpRequest) -> HttpResponse:
    return _form_post(
        request,
        what="log the intervention",
        serializer_class=InterventionInputSerializer,
        fields=("tenant_id", "playbook_id", "action", "channel", "date", "note", "outcome"),
        act=lambda data: intervention_create(
            tenant_id=data["tenant_id"],
            playbook_id=data.get("playbook_id") or None,
            action=data["action"],
            channel=data["channel"],
            day=data.get("date"),
            note=data.get("note", ""),
            outcome=data.get("outcome") or None,
            created_by=request.user.get_username(),
        ),
        said=lambda record: f"Intervention logged for {record.tenant_id}: {record.action}.",
    )


@require_POST
@staff_required
def intervention_outcome(request: HttpRequest, intervention_id: int) -> HttpResponse:
    return _form_post(
        request,
        what="record the outcome",
        serializer_class=OutcomeInputSerializer,
        fields=("outcome", "outcome_at", "note"),
        refill=("tenant_id",),
        act=lambda data: intervention_outcome_record(
            intervention_id=intervention_id,
            outcome=data["outcome"],
            outcome_at=data.get("outcome_at"),
            note=data.get("note", ""),
        ),
        said=lambda record: f"Outcome recorded: {record.get_outcome_display()} ({record.action}).",
    )


@require_POST
@staff_required
def churn_new(request: HttpRequest) -> HttpResponse:
    """Record a churn in two steps: the form's values are checked, then shown on a confirmation
    page whose button posts them again with ``confirm=yes``; only that records the churn (a churn
    takes the customer off every list, so it is never one click)."""
    tenant_id = request.POST.get("tenant_id", "").strip()
    back = _next_url(request, tenant_id)
    errors: dict[str, str] = {}
    fields = ("tenant_id", "date", "reason")
    # A refused churn shows its form again as typed (the date, the reason), like every founder form.
    refused: dict[str, Any] = {
        "what": "record the churn",
        "back": back,
        "serializer_class": ChurnInputSerializer,
        "fields": fields,
    }
    data = _validated(ChurnInputSerializer, _form_fields(request, fields), errors)
    day, reason = data.get("date") or timezone.localdate(), data.get("reason", "").strip()
    if not errors:
        # The service's own checks (unknown customer, already recorded) before the confirmation.
        errors = churn_problems(tenant_id=data["tenant_id"], day=day, reason=reason)
    if errors:
        return _form_error(request, errors=errors, **refused)
    if request.POST.get("confirm") != "yes":
        return render(
            request,
            "playbooks/churn_confirm.html",
            {"tenant_id": data["tenant_id"], "day": day, "reason": reason, "back": back},
        )
    try:
        record = churn_record(
            tenant_id=data["tenant_id"], day=day, reason=reason, created_by=request.user.get_username()
        )
    except PlaybookInputError as exc:
        return _form_error(request, errors=exc.errors, **refused)
    messages.success(request, f"Churn recorded for {record.tenant_id} on {record.date.isoformat()}.")
    return HttpResponseRedirect(back)


@require_POST
@staff_required
def snooze_new(request: HttpRequest) -> HttpResponse:
    """Take a customer off the call list until a day, with a reason (Today and the Customer page)."""
    return _form_post(
        request,
        what="snooze the customer",
        serializer_class=SnoozeInputSerializer,
        fields=("tenant_id", "until", "reason"),
        act=lambda data: snooze_create(
            tenant_id=data["tenant_id"],
            until=data.get("until"),
            reason=data.get("reason", ""),
            created_by=request.user.get_username(),
        ),
        said=lambda snooze: f"{snooze.tenant_id} is snoozed until {snooze.until.isoformat()}: {snooze.reason}.",
    )


@require_POST
@staff_required
def snooze_end_view(request: HttpRequest) -> HttpResponse:
    """Put a snoozed customer back on the call list today."""
    tenant_id = request.POST.get("tenant_id", "").strip()[:128]
    back = _next_url(request, tenant_id)
    snooze_end(tenant_id=tenant_id)
    messages.success(request, f"{tenant_id} is back on the call list.")
    return HttpResponseRedirect(back)


# --- Undo -------------------------------------------------------------------------------------
def _undo_done(request: HttpRequest, *, tenant_id: str, said: str) -> HttpResponse:
    messages.success(request, said)
    return HttpResponseRedirect(_next_url(request, tenant_id))


def _undo_gone(request: HttpRequest, *, what: str) -> HttpResponse:
    """Already taken back (a second click, another tab): nothing to do, said plainly."""
    messages.warning(request, f"Nothing to undo: {what} was already taken back.")
    return HttpResponseRedirect(_next_url(request, request.POST.get("tenant_id", "").strip()[:128]))


@require_POST
@staff_required
def churn_undo(request: HttpRequest, churn_id: int) -> HttpResponse:
    """Take back a recorded churn, through the one churn service: with no churn left the
    customer is un-churned and back on the lists at the next recompute."""
    try:
        churn = churn_delete(churn_id=churn_id)
    except PlaybookInputError:
        return _undo_gone(request, what="this churn")
    left = churns_list(tenant_id=churn.tenant_id).first()
    said = f"Churn of {churn.tenant_id} on {churn.date.isoformat()} undone: " + (
        f"the churn of {left.date.isoformat()} still holds."
        if left is not None
        else "it is back on the at-risk lists at the next recompute if still at risk."
    )
    return _undo_done(request, tenant_id=churn.tenant_id, said=said)


@require_POST
@staff_required
def intervention_undo(request: HttpRequest, intervention_id: int) -> HttpResponse:
    """Take back a logged step, as if it was never logged."""
    try:
        record = intervention_delete(intervention_id=intervention_id)
    except PlaybookInputError:
        return _undo_gone(request, what="this step")
    said = f"Step undone for {record.tenant_id}: {record.action} ({record.date.isoformat()})."
    return _undo_done(request, tenant_id=record.tenant_id, said=said)


@require_POST
@staff_required
def intervention_outcome_undo(request: HttpRequest, intervention_id: int) -> HttpResponse:
    """Take back an intervention's outcome: the step is open again."""
    try:
        record = intervention_outcome_clear(intervention_id=intervention_id)
    except PlaybookInputError:
        return _undo_gone(request, what="this outcome")
    return _undo_done(request, tenant_id=record.tenant_id, said=f"Outcome undone: {record.action} is open again.")


@require_POST
@staff_required
def snooze_undo(request: HttpRequest, snooze_id: int) -> HttpResponse:
    """Take back a snooze, as if it was never made."""
    try:
        snooze = snooze_delete(snooze_id=snooze_id)
    except PlaybookInputError:
        return _undo_gone(request, what="this snooze")
    return _undo_done(
        request, tenant_id=snooze.tenant_id, said=f"Snooze undone: {snooze.tenant_id} is back on the call list."
    )
