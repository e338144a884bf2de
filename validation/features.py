"""The per-customer features the learned model reads, defined once: the backtest stores
them (validation/engine.py computes them from the engine's own numbers), the model
fits them, the API and the page name them, and the coefficients are put in words
with each feature's unit.
"""

from __future__ import annotations

from dataclasses import dataclass

from validation.engine import risk_components


@dataclass(frozen=True)
class Feature:
    name: str
    label: str  # what it is, in the founder's words
    unit: float  # the step a coefficient is put in words for
    unit_words: str  # "each extra <unit_words>"


# The engine's own numbers besides the components' points.
BASE_FEATURES: tuple[Feature, ...] = (
    Feature("stickiness_7d", "7-day stickiness", 1.0, "point of 7-day stickiness"),
    Feature("stickiness_30d", "30-day stickiness (weekly)", 1.0, "point of weekly 30-day stickiness"),
    Feature("stickiness_delta", "stickiness delta (7d / 30d)", 0.1, "0.1 of stickiness delta"),
    Feature("events_7d", "events in 7 days", 10.0, "10 events in 7 days"),
    Feature("events_30d", "events in 30 days", 10.0, "10 events in 30 days"),
    Feature("users_7d", "users in 7 days", 1.0, "user active in 7 days"),
    Feature("users_30d", "users in 30 days", 1.0, "user active in 30 days"),
    Feature("friction_score", "friction score (7 days)", 1.0, "point of friction score"),
    Feature("days_since_core_value", "days since the core action", 7.0, "week without the core action"),
    Feature("age_days", "customer age in days", 30.0, "month of customer age"),
)


def features() -> tuple[Feature, ...]:
    """Every feature: each risk component's points (named by the engine), then BASE_FEATURES."""
    points = tuple(
        Feature(f"{signal}_points", f"{signal.replace('_', ' ')} points", 10.0, f"10 {signal.replace('_', ' ')} points")
        for signal in risk_components()
    )
    return (*points, *BASE_FEATURES)


def feature_names() -> tuple[str, ...]:
    return tuple(f.name for f in features())
