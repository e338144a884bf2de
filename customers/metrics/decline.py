"""The components that see an account falling away from what it did: silent churn, engagement decay,
never reaching the core value, the main user going quiet, and a cliff in use. Each is defined once,
with its scoring, its explanation and its texts (component.py has the shape)."""

from __future__ import annotations

from customers.metrics.component import Assessing, RiskComponent, Scored
from customers.metrics.texts import fmt, text_render
from customers.metrics.thresholds import CORE_VALUE_GAP_DAYS


def silent_churn_score(component: RiskComponent, a: Assessing) -> Scored:
    rule = component.thresholds
    days = a.days_since_core_value
    if not a.silent or days is None:
        return Scored(
            0.0,
            days,
            lambda: text_render(
                "not triggered: needs activity in the last 7 days and the last {core_labels} more than {gap} days ago",
                a.facts,
            ),
        )
    points = rule["base"] + min(rule["base"], rule["per_day"] * (days - CORE_VALUE_GAP_DAYS))
    return Scored(
        points,
        days,
        lambda: text_render(
            "active ({events_7d} events in 7 days) but no {core_labels} for {days} days: "
            "{base:g} + min({base:g}, {per_day:g} x ({days} - {gap}))",
            {**a.facts, **rule},
        ),
    )


def engagement_decay_score(component: RiskComponent, a: Assessing) -> Scored:
    delta = a.stickiness_delta
    if delta is None:
        return Scored(0.0, delta, lambda: "not triggered: no 30-day baseline (stickiness_30d is 0)")
    if delta >= 1:
        return Scored(0.0, delta, lambda: f"not triggered: stickiness_delta {fmt(delta)} >= 1 (steady or accelerating)")
    if a.silent and a.stickiness_7d == 0:
        # The same fact as silent churn (nothing at all this week): counted once, there.
        return Scored(
            0.0,
            delta,
            lambda: f"stickiness_delta {fmt(delta)}: engagement stopped entirely, counted once as silent_churn",
        )
    return Scored(
        component.max_points * (1 - delta),
        delta,
        lambda: (
            f"stickiness_delta {fmt(delta)} ({fmt(a.stickiness_7d)} this week vs {fmt(a.stickiness_30d)} weekly over "
            f"30 days): {component.max_points:g} x (1 - {fmt(delta)})"
        ),
    )


def never_investigated_score(component: RiskComponent, a: Assessing) -> Scored:
    if a.never_used_core_value:
        return Scored(
            component.max_points,
            a.signals.events_30d,
            lambda: text_render(
                "{events_30d} events in 30 days, first seen {age_days} days ago, never a {core_names}", a.facts
            ),
        )
    if not a.vocabulary.core_value:
        return Scored(0.0, None, lambda: "not triggered: no event type is marked as the product's core value")
    return Scored(
        0.0,
        None,
        lambda: text_render(
            "not triggered: used {core_labels} at least once, inactive, or first seen {gap} days ago or less", a.facts
        ),
    )


def champion_silent_score(component: RiskComponent, a: Assessing) -> Scored:
    s = a.signals
    if not a.champion_risk:
        return Scored(
            0.0, None, lambda: "not triggered: no single user made more than half of the events and then went silent"
        )
    return Scored(
        component.max_points,
        s.champion_user_id,
        lambda: (
            f"user {s.champion_user_id} made {s.champion_prior_events} of {s.champion_prior_total} "
            "user events in the 30 days before the last 7, and none in the last 7"
        ),
    )


def usage_cliff_score(component: RiskComponent, a: Assessing) -> Scored:
    s = a.signals
    if a.cliff:
        return Scored(
            component.max_points,
            s.events_7d,
            lambda: f"{s.events_7d} events this week < half of {s.events_prev_7d} last week",
        )
    return Scored(
        0.0,
        s.events_7d,
        lambda: (
            f"not triggered: {s.events_7d} events this week vs {s.events_prev_7d} last week "
            f"(needs < half, with at least {component.thresholds['min_previous']:g} last week)"
        ),
    )


SILENT_CHURN = RiskComponent(
    "silent_churn",
    50,
    "Silent churn",
    "Active in the last 7 days, but nobody has {core_done} for more than {gap} days.",
    "Nobody at {account} has {core_done} for {days} days, though other activity keeps arriving "
    "({events_7d} events this week)",
    {"base": 25, "per_day": 3, "gap_days": CORE_VALUE_GAP_DAYS},
    silent_churn_score,
)
ENGAGEMENT_DECAY = RiskComponent(
    "engagement_decay",
    45,
    "Engagement decay",
    "This week's stickiness against the customer's own 30-day weekly baseline: {max_points:g} x (1 - delta) "
    "when it falls.",
    "Usage this week is {delta_pct} of {account_possessive} normal (weighted use {s7:.2f} this week vs "
    "{s30:.2f} in a usual week){decay_cause}",
    score=engagement_decay_score,
)
NEVER_INVESTIGATED = RiskComponent(
    "never_investigated",
    20,
    "Never {core_done}",
    "Active for more than a week, and no {core_labels} ever.",
    "{account} uses the product ({events_30d} events in 30 days) but has never {core_done}",
    {"gap_days": CORE_VALUE_GAP_DAYS},
    never_investigated_score,
)
CHAMPION_SILENT = RiskComponent(
    "champion_silent",
    20,
    "Champion silent",
    "One user made most of the activity before this week and has gone quiet this week.",
    "{champion}, the main user at {account}, has gone quiet: nothing in the last 7 days after "
    "{champion_prior_events} of {champion_prior_total} events in the month before",
    {"min_events": 10},
    champion_silent_score,
)
USAGE_CLIFF = RiskComponent(
    "usage_cliff",
    15,
    "Usage cliff",
    "Real events this week fell below half of last week's (with at least {min_previous} last week).",
    "Activity at {account} fell to {events_7d} events this week from {events_prev_7d} last week (less than half)",
    {"ratio": 0.5, "min_previous": 10},
    usage_cliff_score,
)
