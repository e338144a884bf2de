"""The intervention table as data: each rule's trigger, type, priority and text templates.

``INTERVENTION_RULES`` holds the source documents' table; ``interventions_build`` applies it to one
tenant's facts (risk.py builds them) and quotes the measured values that triggered each
intervention. Every text is a founder's sentence in the tenant's name and the types' labels;
a trigger leads with the plain fact and keeps the measured number and the threshold
("Risk signal 70 of 100: critical (60 or more)"), so it stays precise without naming a field.

call (immediate): risk_level critical. email (today): stickiness_delta < 0.5.
feature_help (this_week): no core-value event for more than 7 days (or never, while active).
technical (today): 3+ blocked events or 3+ system-issue events in 7 days.
pricing (this_week): events in 30 days at >= 90% of the tenant's monthly_event_limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from customers.metrics.signals import TenantSignals
from customers.metrics.texts import fmt, text_render
from customers.metrics.thresholds import CORE_VALUE_GAP_DAYS, PRICING_USAGE_PCT, RISK_CRITICAL
from customers.models import RiskLevel

PRIORITY_ORDER = {"immediate": 0, "today": 1, "this_week": 2}
EMAIL_DELTA_THRESHOLD = 0.5  # "stickiness drop > 50%"
BLOCKED_THRESHOLD = 3  # "3+ blocked events in 7 days"
SYSTEM_ISSUE_THRESHOLD = 3  # "3+ system-issue events in 7 days"

Facts = dict[str, Any]


@dataclass(frozen=True)
class InterventionRule:
    """One row of the intervention table. ``when`` decides from the facts; ``triggers`` are
    (condition, template) pairs, each quoted when its condition holds."""

    intervention_type: str
    priority: str
    when: Callable[[Facts], bool]
    action: str
    context: str
    expected_outcome: str
    triggers: tuple[tuple[Callable[[Facts], bool], str], ...]


def _always(_: Facts) -> bool:
    return True


def _blocked(f: Facts) -> bool:
    return bool(f["policy_blocks_7d"] >= BLOCKED_THRESHOLD)


def _failing(f: Facts) -> bool:
    return bool(f["failures_7d"] >= SYSTEM_ISSUE_THRESHOLD)


CALL_RULE = InterventionRule(
    "call",
    "immediate",
    lambda f: f["risk_level"] == RiskLevel.CRITICAL,
    "Schedule 15-min call with customer",
    "{primary}",
    "You learn what changed for {account} and agree on one concrete next step",
    ((_always, "Risk signal {strength:.0f} of 100: critical ({critical:.0f} or more)"),),
)
INTERVENTION_RULES: tuple[InterventionRule, ...] = (
    CALL_RULE,
    InterventionRule(
        "email",
        "today",
        lambda f: f["delta"] is not None and f["delta"] < EMAIL_DELTA_THRESHOLD,
        "Send personalized check-in email",
        "Usage at {account} this week is {delta_pct} of its usual weekly use",
        "{account} replies to explain the drop, or its usage picks up within a week",
        (
            (_always, "This week's use is {delta_pct} of normal (below {email_threshold:.0%}; ratio {delta_text})"),
            (_always, "Weighted use {s7_text} this week vs {s30_text} in a usual week (30-day average)"),
        ),
    ),
    InterventionRule(
        "feature_help",
        "this_week",
        lambda f: f["days"] is not None and f["days"] > CORE_VALUE_GAP_DAYS,
        "Send feature guide or walkthrough",
        "The last {last_core_label} at {account} was {days} days ago",
        "Someone at {account} uses {core_labels} again within 7 days",
        ((_always, "No {core_labels} for {days} days (more than {gap})"),),
    ),
    InterventionRule(
        "feature_help",
        "this_week",
        lambda f: f["days"] is None and f["never"],
        "Send feature guide or walkthrough",
        "{account} uses the product but has never used {core_labels}",
        "A first {core_labels} within 7 days",
        ((_always, "No {core_labels} ever, though {events_30d} events came in the last 30 days"),),
    ),
    InterventionRule(
        "technical",
        "today",
        lambda f: _blocked(f) or _failing(f),
        "{technical_action}",
        "Repeated blocks or failures are getting in the way of {account_possessive} work",
        "{account} works through the next 7 days without repeated blocks or failures",
        (
            (
                _blocked,
                "{policy_blocks_7d} blocked attempts in the last 7 days ({blocked_labels}; "
                "{blocked_threshold} or more)",
            ),
            (
                _failing,
                "{failures_7d} failures in the last 7 days ({failure_labels}; {failure_threshold} or more)",
            ),
        ),
    ),
    InterventionRule(
        "pricing",
        "this_week",
        lambda f: f["plan_usage_pct"] is not None and f["plan_usage_pct"] >= PRICING_USAGE_PCT,
        "Offer a plan that fits their usage before they hit the limit",
        "{account} sent {events_30d} events in the last 30 days on a plan of {limit} a month",
        "{account} upgrades (an expansion) instead of being blocked at the limit",
        (
            (
                _always,
                "{plan_usage_pct:.0f}% of the monthly plan used: {events_30d} of {limit} events in 30 days "
                "({pricing_pct:.0f}% or more)",
            ),
        ),
    ),
)


def intervention_render(rule: InterventionRule, facts: Facts) -> dict[str, Any]:
    return {
        "intervention_type": rule.intervention_type,
        "priority": rule.priority,
        "suggested_action": text_render(rule.action, facts),
        "context": text_render(rule.context, facts),
        "expected_outcome": text_render(rule.expected_outcome, facts),
        "triggering_signals": [text_render(t, facts) for holds, t in rule.triggers if holds(facts)],
    }


def call_intervention(*, reason: str, account: str = "the customer") -> dict[str, Any]:
    """The call a critical tenant gets when something else (a matched playbook) made it critical."""
    return {
        **intervention_render(CALL_RULE, {"primary": reason, "strength": 0, "critical": 0, "account": account}),
        "triggering_signals": [reason],
    }


def interventions_build(
    signals: TenantSignals,
    *,
    facts: Facts,
    strength: float,
    risk_level: str | None,
    primary: str,
    stickiness_7d: float,
    stickiness_30d: float,
    stickiness_delta: float | None,
    days_since_core_value: int | None,
    never_used_core_value: bool,
    plan_usage_pct: float | None,
) -> list[dict[str, Any]]:
    """The rules that hold for one tenant, most urgent first, each with the values that triggered it."""
    facts = {
        **facts,
        "strength": strength,
        "critical": RISK_CRITICAL,
        "risk_level": risk_level,
        "primary": primary,
        "delta": stickiness_delta,
        "delta_text": fmt(stickiness_delta) if stickiness_delta is not None else "",
        "s7_text": fmt(stickiness_7d),
        "s30_text": fmt(stickiness_30d),
        "email_threshold": EMAIL_DELTA_THRESHOLD,
        "days": days_since_core_value,
        "never": never_used_core_value,
        "policy_blocks_7d": signals.policy_blocks_7d,
        "failures_7d": signals.failures_7d,
        "blocked_threshold": BLOCKED_THRESHOLD,
        "failure_threshold": SYSTEM_ISSUE_THRESHOLD,
        "technical_action": facts["blocked_action"]
        if signals.policy_blocks_7d >= BLOCKED_THRESHOLD
        else facts["failure_action"],
        "plan_usage_pct": plan_usage_pct,
        "pricing_pct": PRICING_USAGE_PCT,
        "limit": signals.monthly_event_limit,
        "events_30d": signals.events_30d,
    }
    out = [intervention_render(rule, facts) for rule in INTERVENTION_RULES if rule.when(facts)]
    out.sort(key=lambda i: PRIORITY_ORDER[i["priority"]])
    return out
