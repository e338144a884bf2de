"""The call list, assembled in one place: the at-risk answer and Today's list made from it.

``at_risk_answer`` is what ``GET /ops/customers/at-risk`` answers, and what Today, the morning
digest and the Customers pages read: the at-risk customers (customers/selectors.py), the playbooks
each matched at the last recompute (playbooks/selectors.py), each one's follow-up
(playbooks/followup.py) and whom to call (customers/metrics/contacts.py), shaped by
playbooks/customer_serializers.py and kept once per recompute (customers/read_cache.py).
``call_list_build`` orders that answer into Today's call list. The playbooks app owns the
follow-ups and the matches, so the answer is built here, one layer above the customers it reads.
"""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from django.utils import timezone

from customers.metrics.contacts import tenant_contacts_get
from customers.models import Tenant, TenantMetrics
from customers.read_cache import cached_per_recompute
from customers.selectors import tenants_at_risk
from playbooks.customer_serializers import CustomerAtRiskSerializer
from playbooks.followup import (
    CHURNED,
    IN_PROGRESS,
    SNOOZED,
    TO_CALL,
    WON_BACK,
    at_risk_follow_ups,
    follow_up_open_tenant_ids,
    follow_ups_get,
)
from playbooks.selectors import tenant_matched_playbooks


def call_list_context(*, rows: list[TenantMetrics], today: date) -> dict[str, Any]:
    """What the at-risk serializers read for these rows besides the metrics: the playbooks each
    matched, each one's follow-up (the at-risk API's ``follow_up``) and whom to call. A constant
    number of queries whatever the number of rows."""
    tenant_ids = [row.tenant_id for row in rows]
    matched = tenant_matched_playbooks(tenant_ids=tenant_ids)
    return {
        "matched_playbooks": matched,
        "follow_ups": at_risk_follow_ups(rows=rows, matched=matched, today=today),
        "contacts": tenant_contacts_get(tenant_ids=tenant_ids),
    }


def call_list_follow_ups(*, rows: list[TenantMetrics], today: date) -> dict[str, dict[str, Any]]:
    """tenant id -> its follow-up object (the at-risk API's ``follow_up``), for the Customers list and
    the at-risk CSV, so a churned customer reads "churned" there as in the API. A constant number of queries."""
    matched = tenant_matched_playbooks(tenant_ids=[row.tenant_id for row in rows])
    return at_risk_follow_ups(rows=rows, matched=matched, today=today)


def at_risk_answer(*, limit: int) -> list[dict[str, Any]]:
    """The at-risk customers as ``GET /ops/customers/at-risk`` answers them, with their matched
    playbooks; built once per recompute (the Today page shows the same list)."""

    today = timezone.localdate()

    def build() -> list[dict[str, Any]]:
        rows = tenants_at_risk(limit=limit)
        context = call_list_context(rows=rows, today=today)
        # A list of dicts (DRF's ReturnList), kept as it is: the JSON bytes are rendered from it.
        return cast(list[dict[str, Any]], CustomerAtRiskSerializer(rows, many=True, context=context).data)

    # Keyed by the day too: a next step comes due, and a snooze runs out, with the date.
    return cached_per_recompute(f"at_risk_answer:{limit}:{today.isoformat()}", build)


# Where each state sits on the call list: overdue steps first, then whom to call, then steps
# not due yet, then the parked ones.
_LIST_GROUP = {IN_PROGRESS: 2, TO_CALL: 1, SNOOZED: 3, WON_BACK: 4, CHURNED: 5}


def call_list_sort_key(follow_up: dict[str, Any], risk_position: int) -> tuple[int, str, int]:
    """Where a row of the call list goes (``follow_up`` as in the at-risk API): overdue next steps
    first (the longest overdue first), then whom to call, then steps not due yet, then the parked
    ones; within a group the at-risk order holds."""
    state, due = follow_up["state"], follow_up["due"]
    due_key = str(due) if state == IN_PROGRESS and due else ""  # a date or its ISO text: both sort
    if state == IN_PROGRESS and follow_up["overdue"]:
        return (0, due_key, risk_position)
    return (_LIST_GROUP[state], due_key, risk_position)


def _as_date(value: date | str | None) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _follow_up_dates(follow_up: dict[str, Any]) -> dict[str, Any]:
    """A ``follow_up`` with its days as dates (the cached API answer holds them as ISO text)."""
    out = {**follow_up, **{k: _as_date(follow_up[k]) for k in ("due", "snoozed_until", "churned_on")}}
    if follow_up["last_action"]:
        out["last_action"] = {**follow_up["last_action"], "date": _as_date(follow_up["last_action"]["date"])}
    return out


def call_list_build(
    *, at_risk: list[dict[str, Any]], today: date, active_limit: int
) -> dict[str, list[dict[str, Any]]]:
    """Today's call list from the at-risk answer (with its ``follow_up``) plus the customers with
    an open follow-up or a recent win who are no longer at risk. Returns ``active`` (overdue, to
    call, in progress; at most ``active_limit`` to call, every open follow-up) and ``parked``
    (snoozed, won back). Two queries."""
    listed = {entry["tenant_id"] for entry in at_risk}
    extra_ids = [t for t in follow_up_open_tenant_ids(today=today) if t not in listed]
    extra = follow_ups_get(tenant_ids=extra_ids, today=today)
    # Name and level (an open follow-up can be at risk below the rows read): one query.
    known = {
        tenant_id: (name, level)
        for tenant_id, name, level in Tenant.objects.filter(tenant_id__in=extra_ids).values_list(
            "tenant_id", "name", "metrics__risk_level"
        )
    }
    rows = list(at_risk) + [
        {
            "tenant_id": tenant_id,
            "name": known.get(tenant_id, ("", None))[0],
            "risk_level": known.get(tenant_id, ("", None))[1],
            "follow_up": follow_up.as_dict(),
        }
        for tenant_id, follow_up in extra.items()
        if follow_up.state in (IN_PROGRESS, WON_BACK)
    ]
    rows = [{**row, "follow_up": _follow_up_dates(row["follow_up"])} for row in rows]
    ordered = sorted(enumerate(rows), key=lambda pair: call_list_sort_key(pair[1]["follow_up"], pair[0]))
    # Open follow-ups are the founder's own work in progress: always listed. Only the customers
    # nobody has called yet are capped, so a busy list never hides a started cycle.
    to_call = [row for _, row in ordered if row["follow_up"]["state"] == TO_CALL][:active_limit]
    kept = {row["tenant_id"] for row in to_call}
    active = [row for _, row in ordered if row["follow_up"]["state"] == IN_PROGRESS or row["tenant_id"] in kept]
    parked = [row for _, row in ordered if row["follow_up"]["state"] in (SNOOZED, WON_BACK)]
    return {"active": active, "parked": parked}
