"""The additive risk heuristic: its components as data, and ``tenant_assess`` (pure, one tenant).

risk_signal_strength is an ATTENTION RANKING, NOT A PREDICTION: the sum of the
component points, capped at 100. Every component is returned with its points,
the measured value, an explanation and a founder-facing reason.

Each component is defined once in RISK_COMPONENTS (name, the spec's maximum points,
thresholds, text templates). Its points are the spec's formula scaled to the active
maximum (customers.RiskWeights, read once per run by weights.py): with the spec's
defaults the numbers are exactly the spec's.

==================  ====  ==============================================================
component           max   points (spec defaults)
==================  ====  ==============================================================
engagement_decay    45    45 * (1 - stickiness_delta) when there is a baseline and
                          delta < 1; 0 when silent_churn fires and stickiness_7d is 0
                          (the same fact, counted once)
silent_churn        50    active in the last 7 days, last core-value event more than 7
                          days ago: 25 + min(25, 3 * (days_since_investigation - 7))
never_investigated  20    active in 30 days, older than 7 days, no core-value event ever
                          (only while the registry marks some type as the core value)
friction            30    min(30, 3 * friction_weighted_score)
champion_silent     20    one user made > 50% of the user events in the 30 days before
                          the last 7 (at least 10 events) and none in the last 7
usage_cliff         15    events_7d < 0.5 * events_prev_7d, events_prev_7d >= 10
low_usage           30    graded below the middle of the customers' 28-day levels (quiet.py)
below_own_level     20    graded below 60% of the account's earliest 4 weeks on record
not_onboarded       25    7 < age <= 60 days and never a core-value event
==================  ====  ==============================================================

Friction's points are scaled by its rate: in full from 20 friction events per 100 events.

Levels: critical >= 60, high >= 40, medium >= 20, else not at risk (null).
Internal, test and demo tenants are never at risk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import Any

from customers.metrics.daily import FRICTION_CAPS_TEXT
from customers.metrics.interventions import interventions_build
from customers.metrics.quiet import QUIET_COMPONENTS, RiskComponent, friction_rate_factor, quiet_components_score
from customers.metrics.signals import TenantSignals
from customers.metrics.texts import (
    count_text,
    day_text,
    days_ago_text,
    fmt,
    pct_text,
    possessive,
    text_render,
    vocabulary_facts,
)
from customers.metrics.thresholds import CORE_VALUE_GAP_DAYS, PRICING_USAGE_PCT, RISK_LEVEL_THRESHOLDS
from customers.metrics.vocabulary import SPEC_VOCABULARY, Vocabulary
from customers.models import TenantKind

STICKINESS_30D_WEEKLY_DIVISOR = 4.3
RECENT_CHANGE_DAYS = 14
DECAY_CORRELATION_MAX_DAYS = 14


RISK_COMPONENTS: tuple[RiskComponent, ...] = (
    RiskComponent(
        "silent_churn",
        50,
        "Silent churn",
        "Active in the last 7 days, but nobody has {core_done} for more than {gap} days.",
        "Nobody at {account} has {core_done} for {days} days, though other activity keeps arriving "
        "({events_7d} events this week)",
        {"base": 25, "per_day": 3, "gap_days": CORE_VALUE_GAP_DAYS},
    ),
    RiskComponent(
        "engagement_decay",
        45,
        "Engagement decay",
        "This week's stickiness against the customer's own 30-day weekly baseline: {max_points:g} x (1 - delta) "
        "when it falls.",
        "Usage this week is {delta_pct} of {account_possessive} normal (weighted use {s7:.2f} this week vs "
        "{s30:.2f} in a usual week){decay_cause}",
    ),
    RiskComponent(
        "never_investigated",
        20,
        "Never {core_done}",
        "Active for more than a week, and no {core_labels} ever.",
        "{account} uses the product ({events_30d} events in 30 days) but has never {core_done}",
        {"gap_days": CORE_VALUE_GAP_DAYS},
    ),
    RiskComponent(
        "friction",
        30,
        "Friction",
        "Weighted friction over 7 days (" + FRICTION_CAPS_TEXT + "), {per_unit:g} points per unit, "
        "in full when friction is at least {full_rate_per_100:g} of every 100 events (less in proportion).",
        "{account} ran into {friction_events_text} in the last 7 days{top_text} (friction score {score:.2f})",
        {"per_unit": 3, "full_rate_per_100": 20},
    ),
    RiskComponent(
        "champion_silent",
        20,
        "Champion silent",
        "One user made most of the activity before this week and has gone quiet this week.",
        "{champion}, the main user at {account}, has gone quiet: nothing in the last 7 days after "
        "{champion_prior_events} of {champion_prior_total} events in the month before",
        {"min_events": 10},
    ),
    RiskComponent(
        "usage_cliff",
        15,
        "Usage cliff",
        "Real events this week fell below half of last week's (with at least {min_previous} last week).",
        "Activity at {account} fell to {events_7d} events this week from {events_prev_7d} last week (less than half)",
        {"ratio": 0.5, "min_previous": 10},
    ),
    *QUIET_COMPONENTS,
)
# The two secondary signals that are not components (they add no points), in the same words.
PLAN_USAGE_REASON = (
    "{account} has used {plan_usage_pct:.0f}% of its monthly event limit ({events_30d} of {limit} events in 30 days)"
)
RECENT_CHANGES_REASON = "Changed recently at {account}: {changes}"
COMPONENTS_BY_NAME = {c.name: c for c in RISK_COMPONENTS}
DEFAULT_WEIGHTS: dict[str, float] = {c.name: c.max_points for c in RISK_COMPONENTS}


@dataclass
class TenantAssessment:
    """Everything written to ops_tenant_metrics for one tenant besides the raw counts."""

    stickiness_7d: float
    stickiness_30d: float
    stickiness_delta: float | None
    has_baseline: bool
    days_since_investigation: int | None  # days since the last core-value event
    champion_risk: bool
    cliff: bool
    plan_usage_pct: float | None
    recent_changes: list[str]
    decay_correlation: str | None
    risk_signal_strength: float
    risk_level: str | None
    primary_risk_reason: str
    secondary_signals: list[str]
    risk_components: list[dict[str, Any]]
    interventions: list[dict[str, Any]]


def risk_level_for(strength: float) -> str | None:
    for level, threshold in RISK_LEVEL_THRESHOLDS:
        if strength >= threshold:
            return level
    return None


def component_help(name: str, *, max_points: float, vocabulary: Vocabulary) -> str:
    """What a component measures, for pages, in the vocabulary's words and with its active maximum."""
    component = COMPONENTS_BY_NAME.get(name)
    if component is None:
        return ""
    facts = {**vocabulary_facts(vocabulary), **component.thresholds, "max_points": max_points}
    return text_render(component.help, {**facts, "gap": CORE_VALUE_GAP_DAYS})


def component_title(name: str, *, vocabulary: Vocabulary) -> str:
    component = COMPONENTS_BY_NAME.get(name)
    return text_render(component.title, vocabulary_facts(vocabulary)) if component else name


def _scaled(points: float, *, name: str, weights: dict[str, float]) -> float:
    """The spec's points for a component, scaled to its active maximum (exact when it is the default)."""
    default = COMPONENTS_BY_NAME[name].max_points
    active = weights.get(name, default)
    return points if active == default else points * active / default


def _scale_note(name: str, weights: dict[str, float]) -> str:
    default = COMPONENTS_BY_NAME[name].max_points
    active = weights.get(name, default)
    return "" if active == default else f", scaled to a maximum of {active:g} (x {active:g}/{default:g})"


def tenant_assess(
    signals: TenantSignals,
    *,
    as_of: date,
    vocabulary: Vocabulary | None = None,
    weights: dict[str, float] | None = None,
) -> TenantAssessment:
    """Stickiness, the additive risk heuristic and the interventions for one tenant (see the module docstring).

    ``vocabulary``: the registry's roles and labels (the seeded default when not given);
    ``weights``: each component's maximum points (the spec's defaults when not given).
    """
    vocabulary = vocabulary or SPEC_VOCABULARY
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    stickiness_7d = round(signals.engagement_7d, 4)
    stickiness_30d = round(signals.engagement_30d / STICKINESS_30D_WEEKLY_DIVISOR, 4)
    has_baseline = stickiness_30d > 0
    stickiness_delta = round(stickiness_7d / stickiness_30d, 4) if has_baseline else None

    days_since = (
        (as_of - signals.last_investigation_at.astimezone(UTC).date()).days
        if signals.last_investigation_at is not None
        else None
    )
    age_days = (as_of - signals.first_seen_at.astimezone(UTC).date()).days if signals.first_seen_at is not None else 0
    champion = COMPONENTS_BY_NAME["champion_silent"].thresholds
    champion_risk = bool(
        signals.champion_user_id
        and signals.champion_prior_total >= champion["min_events"]
        and signals.champion_prior_events * 2 > signals.champion_prior_total
        and signals.champion_recent_events == 0
    )
    cliff_rule = COMPONENTS_BY_NAME["usage_cliff"].thresholds
    cliff = (
        signals.events_prev_7d >= cliff_rule["min_previous"]
        and signals.events_7d < cliff_rule["ratio"] * signals.events_prev_7d
    )
    plan_usage_pct = (
        round(100.0 * signals.events_30d / signals.monthly_event_limit, 1) if signals.monthly_event_limit else None
    )

    recent = [(t, d) for t, d in signals.changes if 0 <= (as_of - d).days < RECENT_CHANGE_DAYS]
    recent.sort(key=lambda td: (td[1], td[0]), reverse=True)
    recent_changes = [f"{vocabulary.label(t)} {days_ago_text((as_of - d).days)}" for t, d in recent]
    decay_change = _decay_change(signals, stickiness_delta=stickiness_delta)
    decay_correlation = _decay_correlation_text(decay_change, vocabulary=vocabulary)
    account = signals.name or signals.tenant_id

    facts: dict[str, Any] = {
        **vocabulary_facts(vocabulary),
        "account": account,
        "account_possessive": possessive(account),
        "days": days_since,
        "gap": CORE_VALUE_GAP_DAYS,
        "age_days": age_days,
        "events_7d": signals.events_7d,
        "events_prev_7d": signals.events_prev_7d,
        "events_30d": signals.events_30d,
        "s7": stickiness_7d,
        "s30": stickiness_30d,
        "delta_text": fmt(stickiness_delta or 0),
        "delta_pct": pct_text(stickiness_delta or 0),
        # "; it fell after the policy change on 3 Nov": what the engine saw change before the fall.
        "decay_cause": f"; it fell after the {vocabulary.label(decay_change[0])} on {day_text(decay_change[1])}"
        if decay_change
        else "",
        "score": signals.friction_weighted_score,
        "top": signals.top_friction_type or "-",
        "friction_events": signals.friction_events_7d,
        "friction_events_text": count_text(signals.friction_events_7d, "friction event"),
        "top_text": f", mostly {vocabulary.label(signals.top_friction_type)}" if signals.top_friction_type else "",
        "champion": signals.champion_user_id,
        "champion_prior_events": signals.champion_prior_events,
        "champion_prior_total": signals.champion_prior_total,
        "last_core_label": vocabulary.label(signals.last_investigation)
        if signals.last_investigation
        else vocabulary_facts(vocabulary)["core_labels"],
    }
    components: list[dict[str, Any]] = []

    def component(name: str, points: float, value: Any, explanation: str) -> None:
        spec = COMPONENTS_BY_NAME[name]
        scored = round(_scaled(points, name=name, weights=weights), 1)
        components.append(
            {
                "signal": name,
                "title": text_render(spec.title, facts),
                "points": scored,
                "max_points": weights[name],
                "value": value,
                "explanation": explanation + (_scale_note(name, weights) if points > 0 else ""),
                # The founder-facing sentence, only for a component that scored.
                "reason": text_render(spec.reason, facts) if scored > 0 else "",
            }
        )

    active_7d = signals.events_7d > 0
    silent_rule = COMPONENTS_BY_NAME["silent_churn"].thresholds
    silent = active_7d and days_since is not None and days_since > CORE_VALUE_GAP_DAYS
    silent_points = (
        silent_rule["base"] + min(silent_rule["base"], silent_rule["per_day"] * (days_since - CORE_VALUE_GAP_DAYS))
        if silent and days_since is not None
        else 0.0
    )
    component(
        "silent_churn",
        silent_points,
        days_since,
        text_render(
            "active ({events_7d} events in 7 days) but no {core_labels} for {days} days: "
            "{base:g} + min({base:g}, {per_day:g} x ({days} - {gap}))",
            {**facts, **silent_rule},
        )
        if silent
        else text_render(
            "not triggered: needs activity in the last 7 days and the last {core_labels} more than {gap} days ago",
            facts,
        ),
    )

    decay_points = 0.0
    if stickiness_delta is not None and stickiness_delta < 1:
        if silent and stickiness_7d == 0:
            decay_explanation = (
                f"stickiness_delta {fmt(stickiness_delta)}: engagement stopped entirely, counted once as silent_churn"
            )
        else:
            decay_points = COMPONENTS_BY_NAME["engagement_decay"].max_points * (1 - stickiness_delta)
            decay_explanation = (
                f"stickiness_delta {fmt(stickiness_delta)} ({fmt(stickiness_7d)} this week vs "
                f"{fmt(stickiness_30d)} weekly over 30 days): "
                f"{COMPONENTS_BY_NAME['engagement_decay'].max_points:g} x (1 - {fmt(stickiness_delta)})"
            )
    elif stickiness_delta is None:
        decay_explanation = "not triggered: no 30-day baseline (stickiness_30d is 0)"
    else:
        decay_explanation = f"not triggered: stickiness_delta {fmt(stickiness_delta)} >= 1 (steady or accelerating)"
    component("engagement_decay", decay_points, stickiness_delta, decay_explanation)

    # Without a core value in the registry there is nothing to have never used.
    never = (
        bool(vocabulary.core_value)
        and signals.events_30d > 0
        and signals.last_investigation_at is None
        and age_days > CORE_VALUE_GAP_DAYS
    )
    if never:
        never_explanation = text_render(
            "{events_30d} events in 30 days, first seen {age_days} days ago, never a {core_names}", facts
        )
    elif not vocabulary.core_value:
        never_explanation = "not triggered: no event type is marked as the product's core value"
    else:
        never_explanation = text_render(
            "not triggered: used {core_labels} at least once, inactive, or first seen {gap} days ago or less", facts
        )
    component(
        "never_investigated",
        COMPONENTS_BY_NAME["never_investigated"].max_points if never else 0.0,
        signals.events_30d if never else None,
        never_explanation,
    )

    friction_spec = COMPONENTS_BY_NAME["friction"]
    per_unit = friction_spec.thresholds["per_unit"]
    # Friction as a rate: busy accounts abort and fail more in absolute terms, so a count alone points
    # at the healthiest accounts; the score counts in full only where friction is a large share of use.
    rate_factor, rate_text = friction_rate_factor(signals, full_rate=friction_spec.thresholds["full_rate_per_100"])
    component(
        "friction",
        min(friction_spec.max_points, per_unit * signals.friction_weighted_score) * rate_factor,
        round(signals.friction_weighted_score, 4),
        f"friction_weighted_score {fmt(signals.friction_weighted_score)} over 7 days "
        f"({signals.friction_events_7d} friction events, top {signals.top_friction_type or '-'}): "
        f"min({friction_spec.max_points:g}, {per_unit:g} x {fmt(signals.friction_weighted_score)}){rate_text}",
    )

    component(
        "champion_silent",
        COMPONENTS_BY_NAME["champion_silent"].max_points if champion_risk else 0.0,
        signals.champion_user_id if champion_risk else None,
        f"user {signals.champion_user_id} made {signals.champion_prior_events} of {signals.champion_prior_total} "
        "user events in the 30 days before the last 7, and none in the last 7"
        if champion_risk
        else "not triggered: no single user made more than half of the events and then went silent",
    )

    component(
        "usage_cliff",
        COMPONENTS_BY_NAME["usage_cliff"].max_points if cliff else 0.0,
        signals.events_7d,
        f"{signals.events_7d} events this week < half of {signals.events_prev_7d} last week"
        if cliff
        else f"not triggered: {signals.events_7d} events this week vs {signals.events_prev_7d} last week "
        f"(needs < half, with at least {cliff_rule['min_previous']:g} last week)",
    )

    for name, points, value, explanation in quiet_components_score(
        signals, facts=facts, age_days=age_days, vocabulary=vocabulary
    ):
        component(name, points, value, explanation)

    is_customer = signals.kind == TenantKind.CUSTOMER
    strength = round(min(100.0, sum(c["points"] for c in components)), 1) if is_customer else 0.0
    risk_level = risk_level_for(strength)

    # Primary reason: the component with the most points (ties: the order above).
    scoring = sorted((c for c in components if c["points"] > 0), key=lambda c: -c["points"])
    primary = scoring[0]["reason"] if scoring and is_customer else ""
    secondary = [c["reason"] for c in scoring[1:]] if is_customer else []
    if is_customer and plan_usage_pct is not None and plan_usage_pct >= PRICING_USAGE_PCT:
        secondary.append(
            text_render(
                PLAN_USAGE_REASON, {**facts, "plan_usage_pct": plan_usage_pct, "limit": signals.monthly_event_limit}
            )
        )
    if is_customer and recent_changes:
        secondary.append(text_render(RECENT_CHANGES_REASON, {**facts, "changes": ", ".join(recent_changes)}))

    interventions = (
        interventions_build(
            signals,
            facts=facts,
            strength=strength,
            risk_level=risk_level,
            primary=primary,
            stickiness_7d=stickiness_7d,
            stickiness_30d=stickiness_30d,
            stickiness_delta=stickiness_delta,
            days_since_core_value=days_since,
            never_used_core_value=never,
            plan_usage_pct=plan_usage_pct,
        )
        if is_customer
        else []
    )
    return TenantAssessment(
        stickiness_7d=stickiness_7d,
        stickiness_30d=stickiness_30d,
        stickiness_delta=stickiness_delta,
        has_baseline=has_baseline,
        days_since_investigation=days_since,
        champion_risk=champion_risk,
        cliff=cliff,
        plan_usage_pct=plan_usage_pct,
        recent_changes=recent_changes,
        decay_correlation=decay_correlation,
        risk_signal_strength=strength,
        risk_level=risk_level,
        primary_risk_reason=primary,
        secondary_signals=secondary,
        risk_components=components,
        interventions=interventions,
    )


def _decay_change(signals: TenantSignals, *, stickiness_delta: float | None) -> tuple[str, date, date] | None:
    """The change closest before the 7-day stickiness began to fall (within 14 days):
    (its type, its day, the first day of the fall), or None."""
    if stickiness_delta is None or stickiness_delta >= 1 or signals.stickiness_peak_day is None:
        return None
    decline_start = signals.stickiness_peak_day + timedelta(days=1)
    candidates = [
        (d, t)
        for t, d in signals.changes
        if d <= decline_start and (decline_start - d).days <= DECAY_CORRELATION_MAX_DAYS
    ]
    if not candidates:
        return None
    d, t = max(candidates)
    return t, d, decline_start


def _decay_correlation_text(change: tuple[str, date, date] | None, *, vocabulary: Vocabulary) -> str | None:
    """The decay_correlation field: the change and the fall's first day, exact (ISO dates)."""
    if change is None:
        return None
    t, d, decline_start = change
    gap = (decline_start - d).days
    when = "on the day" if gap == 0 else f"{gap} day{'s' if gap != 1 else ''} before"
    return (
        f"{vocabulary.label(t)} on {d.isoformat()}, {when} the 7-day stickiness began to fall "
        f"({decline_start.isoformat()})"
    )
