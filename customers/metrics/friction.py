"""The friction component: weighted friction over 7 days (the day summaries' capped scores), counted
in full only where friction is a large share of the account's use."""

from __future__ import annotations

from customers.metrics.component import Assessing, RiskComponent, Scored
from customers.metrics.daily import FRICTION_CAPS_TEXT
from customers.metrics.signals import TenantSignals
from customers.metrics.texts import fmt


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


def friction_score(component: RiskComponent, a: Assessing) -> Scored:
    s = a.signals
    per_unit = component.thresholds["per_unit"]
    # A rate, not a count: busy accounts abort and fail more in absolute terms, so a count alone points
    # at the healthiest accounts.
    rate_factor, rate_text = friction_rate_factor(s, full_rate=component.thresholds["full_rate_per_100"])
    return Scored(
        min(component.max_points, per_unit * s.friction_weighted_score) * rate_factor,
        round(s.friction_weighted_score, 4),
        f"friction_weighted_score {fmt(s.friction_weighted_score)} over 7 days "
        f"({s.friction_events_7d} friction events, top {s.top_friction_type or '-'}): "
        f"min({component.max_points:g}, {per_unit:g} x {fmt(s.friction_weighted_score)}){rate_text}",
    )


FRICTION = RiskComponent(
    "friction",
    30,
    "Friction",
    "Weighted friction over 7 days (" + FRICTION_CAPS_TEXT + "), {per_unit:g} points per unit, "
    "in full when friction is at least {full_rate_per_100:g} of every 100 events (less in proportion).",
    "{account} ran into {friction_events_text} in the last 7 days{top_text} (friction score {score:.2f})",
    {"per_unit": 3, "full_rate_per_100": 20},
    friction_score,
)
