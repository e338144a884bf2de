"""What the playbooks app gives the weekly check-in (opsconsole/checkin.py): the at-risk
customers with their follow-up state, so the digest remembers what was done."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from customers.selectors import tenants_at_risk
from playbooks.call_list import call_list_follow_ups

CHECKIN_AT_RISK = 5


def at_risk_follow_up_checkin_lines(now: datetime) -> list[str]:
    """One line per at-risk customer: level, reason, then its follow-up in a sentence."""
    rows = tenants_at_risk(limit=CHECKIN_AT_RISK)
    if not rows:
        return ["No customer is at risk right now."]
    follow_ups = call_list_follow_ups(rows=rows, today=timezone.localdate(now))
    lines = []
    for row in rows:
        follow_up = follow_ups[row.tenant_id]
        state = follow_up["label"] + (", overdue" if follow_up["overdue"] else "")
        step = follow_up["next_step"]
        what = follow_up["sentence"] or (step["step"] if step else "")
        if follow_up["state"] == "to_call" and step and not follow_up["last_action"]:
            what = f"first: {step['step']}"
        lines.append(
            f"{row.tenant_id}: {row.risk_level} ({row.risk_signal_strength:.0f}/100), {row.primary_risk_reason}"
            f" · {state}: {what}"
        )
    return lines
