"""The components that see quiet churn: a low level of use, a fall from the account's own first
weeks, and a young account that never reached the core value.

The source documents' components see decline and friction; an account whose use was always
thin never declines, so they cannot see it. These compare the account with the founder's
other customers (peers.py) and with itself, and give graded points, so they also order the
quiet accounts among themselves. Each returns (name, spec points, value, explanation) for
``tenant_assess`` to scale by the active weights; their texts are filled from the same facts.
"""

from __future__ import annotations

from typing import Any

from customers.metrics.component import RiskComponent
from customers.metrics.signals import TenantSignals
from customers.metrics.texts import count_text, pct_text, text_render
from customers.metrics.vocabulary import Vocabulary

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
    ),
    RiskComponent(
        "not_onboarded",
        25,
        "New and never {core_done}",
        "A customer younger than {max_age_days:g} days (and older than {min_age_days:g}) that has never {core_done}.",
        "{account} started {age_days} days ago and has never {core_done}",
        {"max_age_days": 60, "min_age_days": 7},
    ),
)
QUIET_BY_NAME = {c.name: c for c in QUIET_COMPONENTS}


def friction_rate_factor(signals: TenantSignals, *, full_rate: float) -> tuple[float, str]:
    """The share of the friction points that counts: friction events per 100 events over 7 days against
    ``full_rate`` (1 at or above it), and its words for the explanation."""
    if signals.friction_events_7d == 0 or signals.events_7d == 0:
        return 1.0, ""
    rate = 100.0 * signals.friction_events_7d / signals.events_7d
    if rate >= full_rate:
        return 1.0, f", in full at {rate:.0f} friction events per 100 events"
    factor = rate / full_rate
    return factor, f" x {factor:.2f} ({rate:.1f} friction events per 100 events, in full from {full_rate:g})"


def _clamp(x: float) -> float:
    return max(0.0, min(1.0, x))


def quiet_components_score(
    signals: TenantSignals, *, facts: dict[str, Any], age_days: int, vocabulary: Vocabulary
) -> list[tuple[str, float, Any, str]]:
    """The three components' spec points, values and explanations; adds their facts to ``facts``."""
    low, own, new = (QUIET_BY_NAME[n] for n in ("low_usage", "below_own_level", "not_onboarded"))
    pct = signals.peer_level_pct
    early_rate = 28.0 * signals.early_events / signals.early_days if signals.early_days else 0.0
    own_ratio = signals.events_28d / early_rate if early_rate else None
    facts.update(
        {
            "active_days_text": count_text(signals.active_days_28d, "day"),
            "events_28d_text": count_text(signals.events_28d, "event"),
            "above_pct": pct_text(1 - pct) if pct is not None else "",
            "early_rate": early_rate,
            "own_pct": pct_text(own_ratio) if own_ratio is not None else "",
        }
    )
    out: list[tuple[str, float, Any, str]] = []

    median = low.thresholds["median_pct"] / 100
    if pct is None:
        out.append(("low_usage", 0.0, None, "not triggered: too few customers to compare with"))
    elif age_days < low.thresholds["min_age_days"]:
        out.append(("low_usage", 0.0, pct, f"not triggered: younger than {low.thresholds['min_age_days']:g} days"))
    else:
        points = low.max_points * _clamp((median - pct) / median)
        out.append(
            (
                "low_usage",
                points,
                pct,
                f"level {pct:.2f} among the customers (active days and events over 28 days, mid-rank): "
                f"{low.max_points:g} x ({median:g} - {pct:.2f}) / {median:g}"
                if points > 0
                else f"not triggered: level {pct:.2f} among the customers, at or above the middle",
            )
        )

    rule = own.thresholds
    if (
        own_ratio is not None
        and age_days >= rule["min_age_days"]
        and signals.early_days >= rule["min_early_days"]
        and signals.early_events >= rule["min_early_events"]
    ):
        cut = rule["ratio_pct"] / 100
        points = own.max_points * _clamp((cut - own_ratio) / cut)
        out.append(
            (
                "below_own_level",
                points,
                round(own_ratio, 4),
                f"{signals.events_28d} events in 28 days vs {early_rate:.1f} per 28 days in the earliest "
                f"{signals.early_days} days on record (ratio {own_ratio:.2f}): "
                f"{own.max_points:g} x ({cut:g} - {own_ratio:.2f}) / {cut:g}"
                if points > 0
                else f"not triggered: ratio {own_ratio:.2f} to its earliest weeks, at or above {cut:g}",
            )
        )
    else:
        out.append(("below_own_level", 0.0, None, "not triggered: too little early history to compare with"))

    young = new.thresholds["min_age_days"] < age_days <= new.thresholds["max_age_days"]
    never = bool(vocabulary.core_value) and signals.last_investigation_at is None and signals.events_90d > 0
    out.append(
        (
            "not_onboarded",
            new.max_points if young and never else 0.0,
            age_days if young and never else None,
            text_render("{age_days} days old, never a {core_names}", facts)
            if young and never
            else "not triggered: older, newer, or has used the core value",
        )
    )
    return out
