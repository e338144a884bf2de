"""The components that see quiet churn: a low level of use, a fall from the account's own first
weeks, a young account that never reached the core value, and an account in its first weeks.

The source documents' components see decline and friction; an account whose use was always
thin never declines, so they cannot see it. These compare the account with the founder's
other customers (peers.py) and with itself, and give graded points, so they also order the
quiet accounts among themselves. Each scores like every component (component.py); their texts
are filled from the facts ``quiet_facts`` adds to the shared ones.
"""

from __future__ import annotations

from typing import Any

from customers.metrics.component import Assessing, RiskComponent, Scored
from customers.metrics.signals import TenantSignals
from customers.metrics.texts import count_text, pct_text, text_render


def _clamp(x: float) -> float:
    return max(0.0, min(1.0, x))


def _own_level(signals: TenantSignals) -> tuple[float, float | None]:
    """Events per 28 days over the account's earliest weeks on record (0 without them), and the last
    28 days' events as a share of it (None without them)."""
    early_rate = 28.0 * signals.early_events / signals.early_days if signals.early_days else 0.0
    return early_rate, (signals.events_28d / early_rate if early_rate else None)


def quiet_facts(signals: TenantSignals) -> dict[str, Any]:
    """What the quiet components' texts say besides the shared facts."""
    pct = signals.peer_level_pct
    early_rate, own_ratio = _own_level(signals)
    return {
        "active_days_text": count_text(signals.active_days_28d, "day"),
        "events_28d_text": count_text(signals.events_28d, "event"),
        "above_pct": pct_text(1 - pct) if pct is not None else "",
        "early_rate": early_rate,
        "own_pct": pct_text(own_ratio) if own_ratio is not None else "",
    }


def low_usage_score(component: RiskComponent, a: Assessing) -> Scored:
    pct = a.signals.peer_level_pct
    median = component.thresholds["median_pct"] / 100
    if pct is None:
        return Scored(0.0, None, lambda: "not triggered: too few customers to compare with")
    if a.age_days < component.thresholds["min_age_days"]:
        return Scored(0.0, pct, lambda: f"not triggered: younger than {component.thresholds['min_age_days']:g} days")
    points = component.max_points * _clamp((median - pct) / median)
    if points <= 0:
        return Scored(
            points, pct, lambda: f"not triggered: level {pct:.2f} among the customers, at or above the middle"
        )
    return Scored(
        points,
        pct,
        lambda: (
            f"level {pct:.2f} among the customers (active days and events over 28 days, mid-rank): "
            f"{component.max_points:g} x ({median:g} - {pct:.2f}) / {median:g}"
        ),
    )


def below_own_level_score(component: RiskComponent, a: Assessing) -> Scored:
    s, rule = a.signals, component.thresholds
    early_rate, own_ratio = _own_level(s)
    if (
        own_ratio is None
        or a.age_days < rule["min_age_days"]
        or s.early_days < rule["min_early_days"]
        or s.early_events < rule["min_early_events"]
    ):
        return Scored(0.0, None, lambda: "not triggered: too little early history to compare with")
    cut = rule["ratio_pct"] / 100
    points = component.max_points * _clamp((cut - own_ratio) / cut)
    if points <= 0:
        return Scored(
            points,
            round(own_ratio, 4),
            lambda: f"not triggered: ratio {own_ratio:.2f} to its earliest weeks, at or above {cut:g}",
        )
    return Scored(
        points,
        round(own_ratio, 4),
        lambda: (
            f"{s.events_28d} events in 28 days vs {early_rate:.1f} per 28 days in the earliest "
            f"{s.early_days} days on record (ratio {own_ratio:.2f}): "
            f"{component.max_points:g} x ({cut:g} - {own_ratio:.2f}) / {cut:g}"
        ),
    )


def not_onboarded_score(component: RiskComponent, a: Assessing) -> Scored:
    rule = component.thresholds
    young = rule["min_age_days"] < a.age_days <= rule["max_age_days"]
    never = bool(a.vocabulary.core_value) and a.signals.last_investigation_at is None and a.signals.events_90d > 0
    if young and never:
        return Scored(
            component.max_points, a.age_days, lambda: text_render("{age_days} days old, never a {core_names}", a.facts)
        )
    return Scored(0.0, None, lambda: "not triggered: older, newer, or has used the core value")


def early_days_score(component: RiskComponent, a: Assessing) -> Scored:
    rule = component.thresholds
    youngest, oldest = rule["min_age_days"], rule["max_age_days"]
    first, start = a.signals.first_seen_at, a.signals.record_start
    if first is None or start is None or (first.date() - start).days < rule["record_days"]:
        # On the day a founder installs the console every account looks new: only one that arrived
        # after the record's first weeks is known to be young.
        return Scored(0.0, None, lambda: "not triggered: on record since the console's first weeks, age unknown")
    if not youngest <= a.age_days < oldest:
        return Scored(
            0.0, None, lambda: f"not triggered: younger than {youngest:g} days or {oldest:g} days old or older"
        )
    share = (oldest - a.age_days) / (oldest - youngest)
    return Scored(
        component.max_points * share,
        a.age_days,
        lambda: (
            f"{a.age_days} days old: {component.max_points:g} x ({oldest:g} - {a.age_days}) / ({oldest:g} - {youngest:g})"
        ),
    )


QUIET_COMPONENTS: tuple[RiskComponent, ...] = (
    RiskComponent(
        "low_usage",
        30,
        "Low use",
        "Active days and events over 4 weeks against your other customers: {max_points:g} points at the bottom, "
        "none from the middle ({median_pct:g}th percentile) up, in proportion between.",
        "{account} used the product on {active_days_text} in the last 4 weeks ({events_28d_text}), "
        "less than {above_pct} of your customers",
        {"median_pct": 50, "min_age_days": 14},
        low_usage_score,
    ),
    RiskComponent(
        "below_own_level",
        20,
        "Below its own first weeks",
        "Events over the last 4 weeks against a 4-week stretch of the account's earliest weeks on record: "
        "points from {ratio_pct:g}% down, in full at none.",
        "{account} sent {events_28d_text} in the last 4 weeks, {own_pct} of the {early_rate:.0f} of a "
        "4-week stretch in its earliest weeks on record",
        {"ratio_pct": 60, "min_early_events": 10, "min_early_days": 14, "min_age_days": 56},
        below_own_level_score,
    ),
    RiskComponent(
        "not_onboarded",
        25,
        "New and never {core_done}",
        "A customer younger than {max_age_days:g} days (and older than {min_age_days:g}) that has never {core_done}.",
        "{account} started {age_days} days ago and has never {core_done}",
        {"max_age_days": 60, "min_age_days": 7},
        not_onboarded_score,
    ),
    # Customers leave most often in their first weeks whatever their use (an excess hazard that fades with
    # age): a few points order a new account above an older one at the same use, never enough to flag it alone.
    RiskComponent(
        "early_days",
        10,
        "In its first weeks",
        "A customer in its first {max_age_days:g} days, when customers leave most often: {max_points:g} points at "
        "{min_age_days:g} days, fewer each day after, none from {max_age_days:g} days. An account already on record "
        "in the console's first {record_days:g} days is left out: it may be older than its first event says.",
        "{account} started {age_days} days ago: customers leave most often in their first weeks",
        {"min_age_days": 7, "max_age_days": 90, "record_days": 14},
        early_days_score,
    ),
)
