"""Friction, every knob but the per-type weights (those are the event types' ``friction_weight``, in
admin; their defaults in events/defaults.py): the caps the day summaries apply (daily.py), and the risk
component that scores weighted friction over 7 days, in full only where friction is a large share of
the account's use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from customers.metrics.component import Assessing, RiskComponent, Scored
from customers.metrics.texts import fmt

if TYPE_CHECKING:
    from customers.metrics.signals import TenantSignals

# A session's weighted friction counts up to the first cap, a day's up to the second: one bad session
# or one bad day cannot fill the 7-day score alone.
FRICTION_CAP_PER_SESSION = 5.0
FRICTION_CAP_PER_DAY = 10.0
# How every page, help text and API description states the caps: read from the two numbers above.
FRICTION_CAPS_TEXT = f"each session capped at {FRICTION_CAP_PER_SESSION:g}, each day at {FRICTION_CAP_PER_DAY:g}"


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
        lambda: (
            f"friction_weighted_score {fmt(s.friction_weighted_score)} over 7 days "
            f"({s.friction_events_7d} friction events, top {s.top_friction_type or '-'}): "
            f"min({component.max_points:g}, {per_unit:g} x {fmt(s.friction_weighted_score)}){rate_text}"
        ),
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
