"""Writes of the playbooks app for founder actions: interventions taken and their outcomes, snoozes,
and taking them back. Matching playbooks after each recompute is playbooks/evaluation.py.
"""

from __future__ import annotations

from datetime import date
from typing import TypeVar

from django.db import connection, transaction
from django.utils import timezone

from core.rows import row_as_dict
from customers.founder_actions import answers_changed
from customers.models import Tenant
from playbooks.churns import churn_record
from playbooks.errors import PlaybookInputError, text_problems
from playbooks.evaluation import playbooks_evaluate  # noqa: F401 (its first home: a hook setting may name it)
from playbooks.models import (
    NOTE_MAX_CHARS,
    Channel,
    ChurnRecord,
    InterventionRecord,
    Outcome,
    Playbook,
    Snooze,
)

# The founder actions an undo deletes outright (a churn is taken back through playbooks/churns.py).
Undone = TypeVar("Undone", InterventionRecord, Snooze)

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
        first_event = row_as_dict(cursor)["first_at"]
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
def _taken_back(model: type[Undone], pk: int, *, what: str) -> Undone:
    """Delete one founder action as if it was never made; returns it as it was. Raises
    PlaybookInputError naming ``what`` when there is no such row (or a racing undo took it)."""
    # No row lock (a Citus coordinator cannot take one across shards): the delete's own count says
    # whether this call took it back, so two racing undos cannot both succeed.
    with transaction.atomic():
        row = model._default_manager.filter(pk=pk).first()
        deleted, _ = model._default_manager.filter(pk=pk).delete() if row else (0, {})
        if row is None or not deleted:
            raise PlaybookInputError({"id": f"No {what} {pk}."})
        answers_changed()
    return row


# A churn is taken back through the one churn service (playbooks/churns.py::churn_delete).
def intervention_delete(*, intervention_id: int) -> InterventionRecord:
    """Take back a logged step (an intervention) as if it was never logged; returns it as it was.
    A churn its "churned" outcome recorded is a churn of its own and stays (undo it there).
    Raises PlaybookInputError when there is no such intervention."""
    return _taken_back(InterventionRecord, intervention_id, what="intervention")


def intervention_outcome_clear(*, intervention_id: int) -> InterventionRecord:
    """Take back an intervention's outcome: the step is open again (in progress). A churn a
    "churned" outcome recorded stays (undo it there). Raises PlaybookInputError when there is
    no such intervention or it has no outcome."""
    with transaction.atomic():
        intervention = InterventionRecord.objects.filter(pk=intervention_id).first()
        if intervention is None:
            raise PlaybookInputError({"id": f"No intervention {intervention_id}."})
        # Compare-and-set instead of a row lock (see _taken_back): only a row with an outcome clears.
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
    return _taken_back(Snooze, snooze_id, what="snooze")
