"""The one churn fact: every way a churn arrives or leaves goes through here.

A churn arrives from the console form and ``POST /ops/churns`` (``churn_record``), a churned
outcome of an intervention (services.py), the Stripe webhook and the mapping of a waiting
Stripe customer (billing.py), ``manage.py import_churns`` (churn_import.py, ``churns_record``)
and admin (``churn_record`` / ``churn_update``); it leaves by admin's delete (one or many)
and the Customer page's undo (``churn_delete`` / ``churns_delete``).

Each of them, in one transaction:

1. locks the rows of the customers concerned (``customers_tenant``), so two churns of one
   customer arriving together cannot leave it with the earlier day;
2. writes the ``ChurnRecord`` rows (the ground truth the risk signal is validated against);
3. sets each customer's churn state, ``Tenant.churned_at``, to its latest remaining churn day,
   or NULL when none is left (``customers.founder_actions.tenants_churned_set``, the only writer
   of that column), which settles the churned customers' metrics rows to "not at risk" and
   marks an un-churned customer's row stale for the next recompute to reassess;
4. drops the playbook matches of the customers that are now gone, and moves the answers
   version, so the at-risk API and CSV, Today, the Customers list, alerts and the gauge all
   show it at the next read.

Before this one path, a churn from Stripe or a file set no churn state: the customer stayed on
the at-risk list, and recording it again was refused as already recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from customers.churn import churned_gone_ids
from customers.founder_actions import tenants_churned_set
from customers.models import Tenant
from playbooks.errors import PlaybookInputError, text_problems
from playbooks.models import NOTE_MAX_CHARS, ChurnRecord, PlaybookMatch


@dataclass(frozen=True)
class ChurnArrival:
    """One churn to record in bulk (``churns_record``)."""

    tenant_id: str
    day: date
    reason: str = ""
    created_by: str = ""


def churn_problems(
    *, tenant_id: str, day: date, reason: str, churn_id: int | None = None, today: date | None = None
) -> dict[str, str]:
    """What is wrong with a churn of ``tenant_id`` on ``day`` (field -> message; empty if nothing).

    The same words for the form, the API and admin: an unknown customer, a day in the future,
    a reason too long, or a churn of that customer on that day already recorded (other than
    ``churn_id``, the record being edited).
    """
    errors: dict[str, str] = {}
    today = today or timezone.localdate()
    if not Tenant.objects.filter(tenant_id=tenant_id).exists():
        errors["tenant_id"] = f"Unknown tenant '{tenant_id[:128]}'."
        return errors
    if day > today:
        errors["date"] = "A churn cannot be dated in the future."
    elif ChurnRecord.objects.filter(tenant_id=tenant_id, date=day).exclude(pk=churn_id).exists():
        errors["date"] = f"A churn of '{tenant_id}' on {day.isoformat()} is already recorded."
    text_problems(errors, reason=(reason, NOTE_MAX_CHARS))
    return errors


# The namespace of the churn service's per-customer advisory locks (two-key form: this, hashtext(tenant_id)).
CHURN_LOCK_NAMESPACE = 7_104_202_619


# A transaction-scoped advisory lock per customer (no table or index is read).
CHURN_LOCK_SQL = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"


def _tenants_lock(tenant_ids: Iterable[str]) -> None:
    """Serialise the churn writes of these customers for the transaction, in one order (no deadlock
    between two callers). Advisory locks rather than FOR UPDATE: a Citus coordinator cannot lock rows
    of a distributed table across shards, and the lock only has to exclude another churn write."""
    with connection.cursor() as cursor:
        for tenant_id in sorted(set(tenant_ids)):
            cursor.execute(CHURN_LOCK_SQL, [CHURN_LOCK_NAMESPACE % 2**31, tenant_id])


def _churn_state_settle(tenant_ids: Iterable[str]) -> None:
    """Set each customer's churn state to its latest remaining churn and take the gone ones off
    every list (see the module docstring). Runs inside the caller's transaction, rows locked."""
    tenant_ids = set(tenant_ids)
    if not tenant_ids:
        return
    latest = dict(
        ChurnRecord.objects.filter(tenant_id__in=tenant_ids)
        .values("tenant_id")
        .annotate(latest=Max("date"))
        .values_list("tenant_id", "latest")
    )
    tenants_churned_set(churned_on={tenant_id: latest.get(tenant_id) for tenant_id in tenant_ids})
    gone = tenant_ids & churned_gone_ids()
    if gone:
        # The recompute's playbooks hook does the same; here it holds at once.
        PlaybookMatch.objects.filter(tenant_id__in=gone).delete()


def churn_record(
    *,
    tenant_id: str,
    day: date | None = None,
    reason: str = "",
    created_by: str = "",
    keep_recorded: bool = False,
) -> ChurnRecord:
    """Record that a customer was lost on ``day`` (default today) and take it off every list.

    Raises PlaybookInputError (nothing written) on bad input. A churn of that customer on that
    day already recorded is refused, or with ``keep_recorded`` (billing: a churn typed in by
    hand and then sent by Stripe is one churn) returned as it is, the churn state settled anyway.
    """
    day = day or timezone.localdate()
    reason = reason.strip()
    with transaction.atomic():
        _tenants_lock([tenant_id])
        existing = ChurnRecord.objects.filter(tenant_id=tenant_id, date=day).first() if keep_recorded else None
        if existing is not None:
            _churn_state_settle([tenant_id])
            return existing
        errors = churn_problems(tenant_id=tenant_id, day=day, reason=reason)
        if errors:
            raise PlaybookInputError(errors)
        record = ChurnRecord.objects.create(tenant_id=tenant_id, date=day, reason=reason, created_by=created_by)
        _churn_state_settle([tenant_id])
    return record


def churns_record(*, churns: Iterable[ChurnArrival]) -> tuple[int, int]:
    """Record many churns at once (a file); returns (recorded, already recorded).

    The caller has checked every row (known customers, no future day). Idempotent: a churn of a
    customer on a day already recorded is counted, not recorded twice; every customer named
    has its churn state settled, so rerunning a file heals one recorded without it.
    """
    wanted: dict[tuple[str, date], ChurnArrival] = {}
    for churn in churns:
        wanted.setdefault((churn.tenant_id, churn.day), churn)
    tenant_ids = {tenant_id for tenant_id, _ in wanted}
    with transaction.atomic():
        _tenants_lock(tenant_ids)
        existing = set(ChurnRecord.objects.filter(tenant_id__in=tenant_ids).values_list("tenant_id", "date"))
        new = [
            ChurnRecord(tenant_id=c.tenant_id, date=c.day, reason=c.reason, created_by=c.created_by)
            for key, c in sorted(wanted.items())
            if key not in existing
        ]
        ChurnRecord.objects.bulk_create(new)
        _churn_state_settle(tenant_ids)
    return len(new), len(wanted) - len(new)


def churn_update(*, churn_id: int, tenant_id: str, day: date, reason: str) -> ChurnRecord:
    """Correct a recorded churn (admin's edit): its customer, day or reason. Both the customer
    it was and the one it is now have their churn state settled. Raises PlaybookInputError."""
    reason = reason.strip()
    with transaction.atomic():
        record = ChurnRecord.objects.filter(pk=churn_id).first()
        if record is None:
            raise PlaybookInputError({"id": f"No churn {churn_id}."})
        _tenants_lock([record.tenant_id, tenant_id])
        errors = churn_problems(tenant_id=tenant_id, day=day, reason=reason, churn_id=churn_id)
        if errors:
            raise PlaybookInputError(errors)
        was = record.tenant_id
        if tenant_id == was:
            record.date, record.reason = day, reason
            record.save(update_fields=["date", "reason"])
        else:
            # Another customer: a new row (the customer is a Citus cluster's distribution column, which an
            # UPDATE may not change), the old one gone, in the same transaction.
            ChurnRecord.objects.filter(pk=churn_id).delete()
            record = ChurnRecord.objects.create(
                tenant_id=tenant_id, date=day, reason=reason, created_by=record.created_by, created_at=record.created_at
            )
        _churn_state_settle([was, tenant_id])
    return record


def churns_delete(*, churn_ids: Iterable[int]) -> list[str]:
    """Take back recorded churns (admin's delete, the Customer page's undo); returns the customers
    concerned. A customer left with no churn is un-churned: its churn state is cleared and the
    next recompute puts it back on the lists; one left with an earlier churn keeps that one."""
    churn_ids = list(churn_ids)
    with transaction.atomic():
        tenant_ids = set(ChurnRecord.objects.filter(pk__in=churn_ids).values_list("tenant_id", flat=True))
        _tenants_lock(tenant_ids)
        ChurnRecord.objects.filter(pk__in=churn_ids).delete()
        _churn_state_settle(tenant_ids)
    return sorted(tenant_ids)


def churn_delete(*, churn_id: int) -> ChurnRecord:
    """Take back one recorded churn (see ``churns_delete``); returns it as it was. Raises
    PlaybookInputError when there is no such churn."""
    record = ChurnRecord.objects.filter(pk=churn_id).first()
    if record is None:
        raise PlaybookInputError({"id": f"No churn {churn_id}."})
    churns_delete(churn_ids=[churn_id])
    return record
