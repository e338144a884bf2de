"""The call list's memory: each customer's follow-up state, derived in one place.

Today, the Customer page, the at-risk API (``follow_up``) and the weekly check-in all
read ``follow_ups_get``, so they can never disagree. Nothing here is stored: the state
is derived from what the founder recorded (interventions and their outcomes, snoozes,
churns) and today's date.

States, first that holds:

* ``churned``: a churn is recorded and no real activity came after its day. The
  customer is on no at-risk list (customers/churn.py); kept here for history.
* ``snoozed``: the founder's latest snooze runs past today (back on the list on its day).
* ``won_back``: the latest outcome is retained or expanded, no intervention since, and it
  was recorded in the last WON_BACK_SHOWN_DAYS days; afterwards the customer is off the
  list unless still at risk (then a new cycle starts: ``to_call``).
* ``in_progress``: interventions without an outcome since the last outcome. The next step
  is the playbook's next action (steps done = interventions logged for that playbook in the
  cycle), due on day 0 (the cycle's first intervention) plus the step's timing ("day 3",
  "within 48h"); after the last step, or without a playbook, recording the outcome is due.
* ``to_call``: nothing logged yet, or the last outcome was "no response".

A churned customer with real activity after the churn is ``came_back``: only what was
recorded after the churn counts, and it starts again as ``to_call``.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from customers.churn import churned_tenants
from customers.models import TenantKind, TenantMetrics
from playbooks.models import Channel, InterventionRecord, Outcome, PlaybookAction, Snooze

TO_CALL = "to_call"
IN_PROGRESS = "in_progress"
SNOOZED = "snoozed"
WON_BACK = "won_back"
CHURNED = "churned"
STATE_LABELS = {
    TO_CALL: "To call",
    IN_PROGRESS: "In progress",
    SNOOZED: "Snoozed",
    WON_BACK: "Won back",
    CHURNED: "Churned",
}
# How long a won-back customer stays on Today, marked, before it leaves the list.
WON_BACK_SHOWN_DAYS = 7
# Without a playbook step to follow, the outcome is due this many days after the last action.
OUTCOME_DUE_DAYS = 3
WON_OUTCOMES = (Outcome.RETAINED, Outcome.EXPANDED)

_DAY = re.compile(r"\bday\s+(\d+)", re.IGNORECASE)
_WITHIN = re.compile(r"\bwithin\s+(\d+)\s*(h|hours?|d|days?|w|weeks?)\b", re.IGNORECASE)
_SAME_DAY = re.compile(r"\b(same day|today|immediately|now)\b", re.IGNORECASE)


def step_offset_days(timing: str) -> int | None:
    """Days after day 0 a playbook step is due, from its timing text; None when it names no time.

    "day 3" -> 3, "within 48h" -> 2, "within 24h" -> 1, "within 1 week" -> 7, "same day" -> 0.
    """
    if match := _DAY.search(timing):
        return int(match.group(1))
    if match := _WITHIN.search(timing):
        amount, unit = int(match.group(1)), match.group(2).lower()
        if unit.startswith("h"):
            return math.ceil(amount / 24)
        return amount * 7 if unit.startswith("w") else amount
    if _SAME_DAY.search(timing):
        return 0
    return None


def _day_text(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


@dataclass
class FollowUp:
    """One customer's follow-up state (see the module docstring). ``due`` is None when nothing is due."""

    tenant_id: str
    state: str
    came_back: bool = False
    churned_on: date | None = None
    last_action: dict[str, Any] | None = None
    next_step: dict[str, Any] | None = None
    due: date | None = None
    overdue: bool = False
    snoozed_until: date | None = None
    snooze_reason: str = ""

    @property
    def label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def sentence(self) -> str:
        """The row's memory in the founder's words, e.g. "Called the CTO Tue 1 Dec → Day 3: send the walkthrough"."""
        if self.state == CHURNED:
            return f"Churned on {_day_text(self.churned_on)}" if self.churned_on else "Churned"
        if self.state == SNOOZED:
            return f"Snoozed until {_day_text(self.snoozed_until)}: {self.snooze_reason}" if self.snoozed_until else ""
        done = ""
        if self.last_action:
            done = f"{self.last_action['action']} ({self.last_action['channel_label'].lower()}) on " + _day_text(
                self.last_action["date"]
            )
            if self.last_action["outcome"]:
                done += f": {self.last_action['outcome_label'].lower()}"
        if self.state == WON_BACK:
            return f"Won back: {done}" if done else "Won back"
        step = ""
        if self.next_step:
            step = (
                f"{self.next_step['timing'].capitalize()}: {self.next_step['step']}"
                if self.next_step["timing"]
                else self.next_step["step"]
            )
            if self.due:
                step += f" (due {_day_text(self.due)}{', overdue' if self.overdue else ''})"
        prefix = "Came back after the churn. " if self.came_back else ""
        return prefix + " → ".join(part for part in (done, step) if part)

    def as_dict(self) -> dict[str, Any]:
        """The at-risk API's ``follow_up`` object."""
        last = None
        if self.last_action:
            last = {k: self.last_action[k] for k in ("action", "channel", "date", "playbook_id", "outcome")}
        return {
            "state": self.state,
            "label": self.label,
            "came_back": self.came_back,
            "churned_on": self.churned_on,
            "last_action": last,
            "next_step": self.next_step
            and {k: self.next_step.get(k) or "" for k in ("step", "timing", "channel", "because")}
            | {"channel_label": Channel(self.next_step["channel"]).label if self.next_step.get("channel") else ""}
            | {"playbook_id": self.next_step.get("playbook_id")},
            "due": self.due,
            "overdue": self.overdue,
            "snoozed_until": self.snoozed_until,
            "snooze_reason": self.snooze_reason,
            "sentence": self.sentence,
        }


def _action_dict(record: InterventionRecord) -> dict[str, Any]:
    return {
        "id": record.pk,
        "action": record.action,
        "channel": record.channel,
        "channel_label": Channel(record.channel).label if record.channel in Channel.values else record.channel,
        "date": record.date,
        "playbook_id": record.playbook_id,
        "outcome": record.outcome,
        "outcome_label": Outcome(record.outcome).label if record.outcome else "",
        "outcome_at": record.outcome_at,
    }


# What the follow-up carries of a playbook's step, as the step names it.
STEP_FIELDS = ("step", "timing", "channel", "playbook_id", "talk_track")


def _step_dict(action: PlaybookAction) -> dict[str, Any]:
    return {name: getattr(action, name) for name in STEP_FIELDS}


def _in_progress(
    tenant_id: str, open_records: list[InterventionRecord], *, actions: dict[str, list[PlaybookAction]], today: date
) -> FollowUp:
    """The next step of an open cycle (``open_records`` oldest first)."""
    last = open_records[-1]
    with_playbook = [r for r in open_records if r.playbook_id]
    next_step: dict[str, Any] | None = None
    due: date | None = None
    if with_playbook:
        playbook_id = with_playbook[-1].playbook_id
        done = [r for r in with_playbook if r.playbook_id == playbook_id]
        steps = actions.get(playbook_id, [])
        day_zero = done[0].date
        if len(done) < len(steps):
            step = steps[len(done)]
            next_step = _step_dict(step)
            offset = step_offset_days(step.timing)
            due = max(day_zero + timedelta(days=offset), last.date) if offset is not None else None
    if next_step is None:
        next_step = {
            "step": "Record the outcome: did they answer, and are they using the product again?",
            "timing": "",
            "channel": "",
            "playbook_id": last.playbook_id,
            "talk_track": "",
        }
        due = last.date + timedelta(days=OUTCOME_DUE_DAYS)
    if due is None:
        due = last.date + timedelta(days=OUTCOME_DUE_DAYS)
    return FollowUp(
        tenant_id=tenant_id,
        state=IN_PROGRESS,
        last_action=_action_dict(last),
        next_step=next_step,
        due=due,
        overdue=due < today,
    )


def follow_ups_get(*, tenant_ids: list[str], today: date) -> dict[str, FollowUp]:
    """tenant_id -> its FollowUp, for these tenants. Four queries whatever their number."""
    ids = list(dict.fromkeys(tenant_ids))
    if not ids:
        return {}
    churns = {t: v for t, v in churned_tenants().items() if t in set(ids)}
    records: dict[str, list[InterventionRecord]] = defaultdict(list)
    # Uses index: ops_intervention_tenant_day (tenant, date).
    for record in InterventionRecord.objects.filter(tenant_id__in=ids).order_by("date", "id"):
        records[record.tenant_id].append(record)
    snoozes: dict[str, Snooze] = {}
    # Uses index: ops_snooze_tenant_latest; the first row per tenant is its latest snooze.
    for snooze in Snooze.objects.filter(tenant_id__in=ids).order_by("tenant_id", "-created_at", "-id"):
        snoozes.setdefault(snooze.tenant_id, snooze)
    playbook_ids = {r.playbook_id for rs in records.values() for r in rs if r.playbook_id}
    actions: dict[str, list[PlaybookAction]] = defaultdict(list)
    for action in PlaybookAction.objects.filter(playbook_id__in=playbook_ids).order_by("playbook_id", "order", "id"):
        actions[action.playbook_id].append(action)

    out: dict[str, FollowUp] = {}
    for tenant_id in ids:
        churned_on, came_back = churns.get(tenant_id, (None, False))
        if churned_on is not None and not came_back:
            history = records.get(tenant_id, [])
            out[tenant_id] = FollowUp(
                tenant_id=tenant_id,
                state=CHURNED,
                churned_on=churned_on,
                last_action=_action_dict(history[-1]) if history else None,
            )
            continue
        history = [r for r in records.get(tenant_id, []) if churned_on is None or r.date > churned_on]
        snooze = snoozes.get(tenant_id)
        if snooze is not None and snooze.until > today:
            out[tenant_id] = FollowUp(
                tenant_id=tenant_id,
                state=SNOOZED,
                came_back=came_back,
                churned_on=churned_on,
                last_action=_action_dict(history[-1]) if history else None,
                snoozed_until=snooze.until,
                snooze_reason=snooze.reason,
            )
            continue
        closed_at = max((i for i, r in enumerate(history) if r.outcome), default=-1)
        open_records = history[closed_at + 1 :]
        if open_records:
            follow_up = _in_progress(tenant_id, open_records, actions=actions, today=today)
        elif closed_at >= 0 and history[closed_at].outcome in WON_OUTCOMES:
            closed = history[closed_at]
            shown = (today - (closed.outcome_at or closed.date)).days < WON_BACK_SHOWN_DAYS
            follow_up = FollowUp(
                tenant_id=tenant_id, state=WON_BACK if shown else TO_CALL, last_action=_action_dict(closed)
            )
        else:
            follow_up = FollowUp(
                tenant_id=tenant_id,
                state=TO_CALL,
                last_action=_action_dict(history[closed_at]) if closed_at >= 0 else None,
            )
        follow_up.came_back = came_back
        follow_up.churned_on = churned_on
        out[tenant_id] = follow_up
    return out


def follow_up_open_tenant_ids(*, today: date, limit: int = 50) -> list[str]:
    """Customers whose follow-up belongs on Today even when no longer at risk: an open cycle
    (an intervention without an outcome in the last 60 days) or a recent win. One query."""
    since = today - timedelta(days=60)
    recent_win = today - timedelta(days=WON_BACK_SHOWN_DAYS)
    # Uses index: ops_intervention_tenant_day (tenant, date) through the date range.
    rows = (
        InterventionRecord.objects.filter(date__gte=since, tenant__kind=TenantKind.CUSTOMER)
        .filter(outcome__isnull=True)
        .values_list("tenant_id", flat=True)
        .union(
            InterventionRecord.objects.filter(
                outcome__in=WON_OUTCOMES, outcome_at__gte=recent_win, tenant__kind=TenantKind.CUSTOMER
            ).values_list("tenant_id", flat=True)
        )
    )
    return sorted(rows)[:limit]


# The engine's intervention that speaks to each primary risk component (customers/services.py
# names them): the first step follows why the customer is at risk, not only how much.
PRIMARY_SIGNAL_INTERVENTION = {
    "silent_churn": "call",
    "engagement_decay": "email",
    "never_investigated": "feature_help",
    "friction": "technical",
    "champion_silent": "call",
    "usage_cliff": "call",
}


# The first step when nothing more specific applies.
FALLBACK_FIRST_STEP = "Read their page (what changed, where they struggle), then send a short personal check-in"


def primary_signal(metrics: TenantMetrics) -> str | None:
    """The risk component with the most points (the one the primary reason quotes)."""
    scoring = [c for c in metrics.risk_components or [] if c.get("points", 0) > 0]
    return max(scoring, key=lambda c: c["points"])["signal"] if scoring else None


def first_step_choose(
    *,
    matched_playbooks: list[dict[str, Any]],
    first_actions: dict[str, PlaybookAction],
    interventions: list[dict[str, Any]],
    signal: str | None,
) -> dict[str, Any] | None:
    """What to do first for a customer nobody has contacted yet.

    The strongest matched playbook's first action when there is one (each playbook says
    its own first move); else the engine's intervention for the primary risk component;
    else the engine's most urgent one.
    """
    for playbook in matched_playbooks:
        action = first_actions.get(playbook["id"])
        if action is not None:
            return {**_step_dict(action), "because": f"playbook '{playbook['name']}' matched"}
    wanted = PRIMARY_SIGNAL_INTERVENTION.get(signal or "")
    chosen = next((i for i in interventions if i.get("intervention_type") == wanted), None)
    chosen = chosen or (interventions[0] if interventions else None)
    if chosen is None:
        # At risk, yet no playbook matched and no intervention rule fired: still a first move.
        return {
            "step": FALLBACK_FIRST_STEP,
            "timing": "this week",
            "channel": "",
            "playbook_id": None,
            "talk_track": "",
            "because": "no playbook matches this customer yet",
        }
    return {
        "step": chosen.get("suggested_action") or "",
        "timing": {"immediate": "today", "today": "today", "this_week": "this week"}.get(chosen.get("priority"), ""),
        "channel": "",
        "playbook_id": None,
        "talk_track": "",
        "because": chosen.get("context") or "",
    }


def at_risk_follow_ups(
    *, rows: list[TenantMetrics], matched: dict[str, list[dict[str, Any]]], today: date
) -> dict[str, dict[str, Any]]:
    """tenant_id -> the at-risk API's ``follow_up`` object for these rows: the state, and for a
    customer to call its first step (see first_step_choose). A constant number of queries."""
    follow_ups = follow_ups_get(tenant_ids=[r.tenant_id for r in rows], today=today)
    first_actions = playbook_first_actions_get(
        playbook_ids={p["id"] for r in rows for p in matched.get(r.tenant_id, [])}
    )
    out = {}
    for row in rows:
        follow_up = follow_ups[row.tenant_id]
        if follow_up.state == TO_CALL:
            follow_up.next_step = first_step_choose(
                matched_playbooks=matched.get(row.tenant_id, []),
                first_actions=first_actions,
                interventions=row.interventions or [],
                signal=primary_signal(row),
            )
        out[row.tenant_id] = follow_up.as_dict()
    return out


def playbook_first_actions_get(*, playbook_ids: set[str]) -> dict[str, PlaybookAction]:
    """playbook id -> its first step (by order). One query (none without ids)."""
    first: dict[str, PlaybookAction] = {}
    if playbook_ids:
        for action in PlaybookAction.objects.filter(playbook_id__in=sorted(playbook_ids)).order_by(
            "playbook_id", "order", "id"
        ):
            first.setdefault(action.playbook_id, action)
    return first
