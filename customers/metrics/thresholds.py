"""Thresholds shared by the risk components and the intervention rules (each defined once)."""

from __future__ import annotations

from customers.models import RiskLevel

# Silent churn, never-used-the-core-value and the feature_help intervention share this gap.
CORE_VALUE_GAP_DAYS = 7
# The pricing intervention and the plan-usage secondary signal: events_30d at or above this share
# of Tenant.monthly_event_limit.
PRICING_USAGE_PCT = 90.0
# Risk levels: risk_signal_strength thresholds (below the last = not at risk), most urgent first.
RISK_LEVEL_THRESHOLDS: tuple[tuple[RiskLevel, float], ...] = (
    (RiskLevel.CRITICAL, 60.0),
    (RiskLevel.HIGH, 40.0),
    (RiskLevel.MEDIUM, 20.0),
)
RISK_CRITICAL = RISK_LEVEL_THRESHOLDS[0][1]

# Expansion candidates (the seeded expansion playbooks' conditions, playbooks/defaults.py): over the
# last EXPANSION_WINDOW_DAYS against the same span just before, active users or core-value use grew
# to at least EXPANSION_GROWTH_RATIO times, from a base large enough for a ratio to mean something
# (two users becoming three is not an expansion). Seeded once; the founder edits them in admin.
EXPANSION_WINDOW_DAYS = 28
EXPANSION_GROWTH_RATIO = 1.5
EXPANSION_MIN_ACTIVE_USERS = 5
EXPANSION_MIN_CORE_VALUE_EVENTS = 20
