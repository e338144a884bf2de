"""The additive risk heuristic: its components as data, and ``tenant_assess`` (pure, one tenant).

risk_signal_strength is an ATTENTION RANKING, NOT A PREDICTION: the sum of the
component points, capped at 100. Every component is returned with its points,
the measured value, an explanation and a founder-facing reason.

Each component is defined once, with its scoring and its texts (name, default maximum points,
thresholds, templates), in decline.py, friction.py or quiet.py; RISK_COMPONENTS orders them and
``tenant_assess`` loops over them. Its points are the source documents' formula scaled to the
active maximum (customers.RiskWeights, read once per run by weights.py): with the default risk
weights the numbers are exactly the documents'.

==================  ====  ==============================================================
component           max   points (default weights)
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
early_days          10    10 * (90 - age) / 83 for 7 <= age < 90 days, first seen 14 days or
                          more after the console's earliest event (else its age is unknown)
==================  ====  ==============================================================

Friction's points are scaled by its rate: in full from 20 friction events per 100 events.

Levels: critical >= 60, high >= 40, medium >= 20, else not at risk (null).
Internal, test and demo tenants are never at risk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, timedelta
from functools import partial
from typing import Any

from customers.metrics.component import Assessing, RiskComponent, Scored
from customers.metrics.decline import (
    CHAMPION_SILENT,
    ENGAGEMENT_DECAY,
    NEVER_INVESTIGATED,
    SILENT_CHURN,
    USAGE_CLIFF,
)
from customers.metrics.friction import FRICTION
from customers.metrics.interventions import interventions_build
from customers.metrics.quiet import QUIET_COMPONENTS, quiet_facts
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


# The order is the order of ties for the primary reason and of the components on every page.
RISK_COMPONENTS: tuple[RiskComponent, ...] = (
    SILENT_CHURN,
    ENGAGEMENT_DECAY,
    NEVER_INVESTIGATED,
    FRICTION,
    CHAMPION_SILENT,
    USAGE_CLIFF,
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
    """The source documents' points for a component, scaled to its active maximum (exact when it is the default)."""
    default = COMPONENTS_BY_NAME[name].max_points
    active = weights.get(name, default)
    return points if active == default else points * active / default


def _scale_note(name: str, weights: dict[str, float]) -> str:
    default = COMPONENTS_BY_NAME[name].max_points
    active = weights.get(name, default)
    return "" if active == default else f", scaled to a maximum of {active:g} (x {active:g}/{default:g})"


def tenant_assessing(signals: TenantSignals, *, as_of: date, vocabulary: Vocabulary) -> Assessing:
    """What every component reads of one tenant, derived once: stickiness, ages, the conditions some
    components share, and (when a text first asks) the facts every text is filled from."""
    stickiness_7d = round(signals.engagement_7d, 4)
    stickiness_30d = round(signals.engagement_30d / STICKINESS_30D_WEEKLY_DIVISOR, 4)
    stickiness_delta = round(stickiness_7d / stickiness_30d, 4) if stickiness_30d > 0 else None
    days_since = (
        (as_of - signals.last_investigation_at.astimezone(UTC).date()).days
        if signals.last_investigation_at is not None
        else None
    )
    age_days = (as_of - signals.first_seen_at.astimezone(UTC).date()).days if signals.first_seen_at is not None else 0
    champion = CHAMPION_SILENT.thresholds
    cliff_rule = USAGE_CLIFF.thresholds
    decay_change = _decay_change(signals, stickiness_delta=stickiness_delta)
    return Assessing(
        signals=signals,
        as_of=as_of,
        vocabulary=vocabulary,
        facts_derive=partial(
            _facts,
            signals,
            vocabulary=vocabulary,
            days_since=days_since,
            age_days=age_days,
            stickiness=(stickiness_7d, stickiness_30d, stickiness_delta),
            decay_change=decay_change,
        ),
        stickiness_7d=stickiness_7d,
        stickiness_30d=stickiness_30d,
        stickiness_delta=stickiness_delta,
        days_since_core_value=days_since,
        age_days=age_days,
        silent=signals.events_7d > 0 and days_since is not None and days_since > CORE_VALUE_GAP_DAYS,
        # Without a core value in the registry there is nothing to have never used.
        never_used_core_value=bool(vocabulary.core_value)
        and signals.events_30d > 0
        and signals.last_investigation_at is None
        and age_days > CORE_VALUE_GAP_DAYS,
        champion_risk=bool(
            signals.champion_user_id
            and signals.champion_prior_total >= champion["min_events"]
            and signals.champion_prior_events * 2 > signals.champion_prior_total
            and signals.champion_recent_events == 0
        ),
        cliff=signals.events_prev_7d >= cliff_rule["min_previous"]
        and signals.events_7d < cliff_rule["ratio"] * signals.events_prev_7d,
        decay_change=decay_change,
    )


def _facts(
    signals: TenantSignals,
    *,
    vocabulary: Vocabulary,
    days_since: int | None,
    age_days: int,
    stickiness: tuple[float, float, float | None],
    decay_change: tuple[str, date, date] | None,
) -> dict[str, Any]:
    """What every text of one tenant is filled from: the vocabulary's words, the tenant's counts and names."""
    stickiness_7d, stickiness_30d, stickiness_delta = stickiness
    account = signals.name or signals.tenant_id
    words = vocabulary_facts(vocabulary)
    return {
        **words,
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
        else words["core_labels"],
        **quiet_facts(signals),
    }


def _component_score(component: RiskComponent, a: Assessing, *, weights: dict[str, float]) -> tuple[float, Scored]:
    """A component's points scaled to the active weight (rounded as shown), and what it scored."""
    assert component.score is not None, component.name
    scored = component.score(component, a)
    return round(_scaled(scored.points, name=component.name, weights=weights), 1), scored


def _strength(points: list[float], *, is_customer: bool) -> float:
    return round(min(100.0, sum(points)), 1) if is_customer else 0.0


def component_assess(component: RiskComponent, a: Assessing, *, weights: dict[str, float]) -> dict[str, Any]:
    """One component's entry in ``risk_components``: its points scaled to the active weight, the value it
    read, how the points came about, and the founder-facing sentence when it scored."""
    scored, (points, value, explain) = _component_score(component, a, weights=weights)
    return {
        "signal": component.name,
        "title": text_render(component.title, a.facts),
        "points": scored,
        "max_points": weights[component.name],
        "value": value,
        "explanation": explain() + (_scale_note(component.name, weights) if points > 0 else ""),
        "reason": text_render(component.reason, a.facts) if scored > 0 else "",
    }


def tenant_assess(
    signals: TenantSignals,
    *,
    as_of: date,
    vocabulary: Vocabulary | None = None,
    weights: dict[str, float] | None = None,
) -> TenantAssessment:
    """Stickiness, the additive risk heuristic and the interventions for one tenant (see the module docstring).

    ``vocabulary``: the registry's roles and labels (the seeded default when not given);
    ``weights``: each component's maximum points (the default risk weights when not given).
    """
    vocabulary = vocabulary or SPEC_VOCABULARY
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    a = tenant_assessing(signals, as_of=as_of, vocabulary=vocabulary)
    components = [component_assess(component, a, weights=weights) for component in RISK_COMPONENTS]

    is_customer = signals.kind == TenantKind.CUSTOMER
    strength = _strength([c["points"] for c in components], is_customer=is_customer)
    risk_level = risk_level_for(strength)
    plan_usage_pct = (
        round(100.0 * signals.events_30d / signals.monthly_event_limit, 1) if signals.monthly_event_limit else None
    )
    recent = [(t, d) for t, d in signals.changes if 0 <= (as_of - d).days < RECENT_CHANGE_DAYS]
    recent.sort(key=lambda td: (td[1], td[0]), reverse=True)
    recent_changes = [f"{vocabulary.label(t)} {days_ago_text((as_of - d).days)}" for t, d in recent]

    # Primary reason: the component with the most points (ties: the order of RISK_COMPONENTS).
    scoring = sorted((c for c in components if c["points"] > 0), key=lambda c: -c["points"])
    primary = scoring[0]["reason"] if scoring and is_customer else ""
    secondary = [c["reason"] for c in scoring[1:]] if is_customer else []
    if is_customer and plan_usage_pct is not None and plan_usage_pct >= PRICING_USAGE_PCT:
        secondary.append(
            text_render(
                PLAN_USAGE_REASON, {**a.facts, "plan_usage_pct": plan_usage_pct, "limit": signals.monthly_event_limit}
            )
        )
    if is_customer and recent_changes:
        secondary.append(text_render(RECENT_CHANGES_REASON, {**a.facts, "changes": ", ".join(recent_changes)}))

    interventions = (
        interventions_build(
            signals,
            facts=a.facts,
            strength=strength,
            risk_level=risk_level,
            primary=primary,
            stickiness_7d=a.stickiness_7d,
            stickiness_30d=a.stickiness_30d,
            stickiness_delta=a.stickiness_delta,
            days_since_core_value=a.days_since_core_value,
            never_used_core_value=a.never_used_core_value,
            plan_usage_pct=plan_usage_pct,
        )
        if is_customer
        else []
    )
    return TenantAssessment(
        stickiness_7d=a.stickiness_7d,
        stickiness_30d=a.stickiness_30d,
        stickiness_delta=a.stickiness_delta,
        has_baseline=a.stickiness_30d > 0,
        days_since_investigation=a.days_since_core_value,
        champion_risk=a.champion_risk,
        cliff=a.cliff,
        plan_usage_pct=plan_usage_pct,
        recent_changes=recent_changes,
        decay_correlation=_decay_correlation_text(a.decay_change, vocabulary=vocabulary),
        risk_signal_strength=strength,
        risk_level=risk_level,
        primary_risk_reason=primary,
        secondary_signals=secondary,
        risk_components=components,
        interventions=interventions,
    )


def tenant_points(
    signals: TenantSignals,
    *,
    as_of: date,
    vocabulary: Vocabulary | None = None,
    weights: dict[str, float] | None = None,
) -> tuple[float, dict[str, float]]:
    """``tenant_assess``'s risk_signal_strength and each component's points, without its texts and interventions:
    the same scoring (``_component_score``, ``_strength``) for a reader that needs only the numbers (the backtest
    scores every customer on every date)."""
    vocabulary = vocabulary or SPEC_VOCABULARY
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    a = tenant_assessing(signals, as_of=as_of, vocabulary=vocabulary)
    points = {c.name: _component_score(c, a, weights=weights)[0] for c in RISK_COMPONENTS}
    return _strength(list(points.values()), is_customer=signals.kind == TenantKind.CUSTOMER), points


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
