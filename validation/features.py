"""The features the backtest stores and the learned model reads: the engine's feature registry
(customers/metrics/features.py) over the registry's event types, then each risk component's points."""

from __future__ import annotations

from customers.metrics.features import feature_label, feature_types, feature_unit
from customers.metrics.features import feature_names as engine_feature_names
from customers.metrics.vocabulary import vocabulary_current
from validation.engine import risk_components


def feature_names() -> tuple[str, ...]:
    """Every feature of the registry in force, then the component points (``<signal>_points``)."""
    return (*engine_feature_names(feature_types(vocabulary_current())), *(f"{s}_points" for s in risk_components()))


def feature_words(name: str) -> tuple[str, float, str]:
    """(label, unit, unit words) of a feature, a component's points included."""
    if name.endswith("_points"):
        signal = name.removesuffix("_points").replace("_", " ")
        return f"{signal} points", 10.0, f"10 {signal} points"
    unit, words = feature_unit(name)
    return feature_label(name), unit, words
