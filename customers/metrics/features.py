"""The behavioural features a churn model reads, defined once, computed by the engine from its rollups.

Each feature has a founder-facing label, the unit a coefficient is put in words for, and a
sentence about one account ("used the product on 2 days in the last 4 weeks"). The backtest
computes them on each as-of date from its private rollups and the live engine from the live
ones, with the same function (``tenant_features``) over the same measured signals: there is
no second implementation. Counts are log-scaled (log(1 + n)): use is heavy-tailed, and a model
on raw counts is led by the few busiest accounts.

Per event type: the 28- and 90-day counts of every registered type (``type_28d:<name>``),
from one query over the day rollups (``TYPE_COUNTS_SQL``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date
from typing import Any

from django.db import connection

from core.rows import rows_as_dicts
from customers.metrics.scope import tenant_rows_sql
from customers.metrics.signals import SIGNAL_WINDOW_DAYS, TenantSignals
from customers.metrics.texts import count_text, pct_text
from customers.metrics.vocabulary import Vocabulary


@dataclass(frozen=True)
class Feature:
    name: str
    label: str  # what it is, in the founder's words
    unit: float  # the step a coefficient is put in words for
    unit_words: str  # "each extra <unit_words>"
    # The account's value in a sentence, from its signals and value ("" when nothing useful to say).
    describe: Callable[[TenantSignals, float], str] = lambda s, v: ""


def _log(n: float) -> float:
    return math.log1p(max(n, 0.0))


def _ratio_log(a: float, b: float) -> float:
    """log((1 + a) / (1 + b)): 0 when steady, negative when a fell below b."""
    return math.log1p(max(a, 0.0)) - math.log1p(max(b, 0.0))


def _level_words(s: TenantSignals, v: float) -> str:
    return (
        f"used the product on {count_text(s.active_days_28d, 'day')} in the last 4 weeks, "
        f"less than {pct_text(1 - v)} of your customers"
    )


FEATURES: tuple[Feature, ...] = (
    Feature("log_events_7d", "events in 7 days (log)", 1.0, "e-fold of events in 7 days",
            lambda s, v: f"{count_text(s.events_7d, 'event')} in the last 7 days"),
    Feature("log_events_28d", "events in 28 days (log)", 1.0, "e-fold of events in 28 days",
            lambda s, v: f"{count_text(s.events_28d, 'event')} in the last 4 weeks"),
    Feature("log_events_90d", "events in 90 days (log)", 1.0, "e-fold of events in 90 days",
            lambda s, v: f"{count_text(s.events_90d, 'event')} in the last 90 days"),
    Feature("log_core_7d", "core-value events in 7 days (log)", 1.0, "e-fold of core-value events in 7 days",
            lambda s, v: f"{count_text(s.core_events_7d, 'core-value event')} in the last 7 days"),
    Feature("log_core_28d", "core-value events in 28 days (log)", 1.0, "e-fold of core-value events in 28 days",
            lambda s, v: f"{count_text(s.core_events_28d, 'core-value event')} in the last 4 weeks"),
    Feature("log_core_90d", "core-value events in 90 days (log)", 1.0, "e-fold of core-value events in 90 days",
            lambda s, v: f"{count_text(s.core_events_90d, 'core-value event')} in the last 90 days"),
    Feature("active_days_28d", "active days in 28 days", 1.0, "active day in 4 weeks",
            lambda s, v: f"active on {count_text(s.active_days_28d, 'day')} of the last 28"),
    Feature("active_days_90d", "active days in 90 days", 7.0, "7 active days in 90 days",
            lambda s, v: f"active on {count_text(s.active_days_90d, 'day')} of the last 90"),
    Feature("log_events_per_active_day", "events per active day over 28 days (log)", 1.0,
            "e-fold of events per active day",
            lambda s, v: f"{s.events_28d / s.active_days_28d:.1f} events per active day" if s.active_days_28d else ""),
    Feature("log_events_per_user", "events per active user over 28 days (log)", 1.0, "e-fold of events per user",
            lambda s, v: f"{s.events_28d / s.users_28d:.1f} events per active user" if s.users_28d else ""),
    Feature("trend_7d_vs_28d", "last 7 days against the 28-day weekly average (log ratio)", 0.5,
            "half e-fold of this week against the 4-week average",
            lambda s, v: f"{count_text(s.events_7d, 'event')} this week against {s.events_28d / 4:.0f} in an average "
            "week of the last 4"),
    Feature("trend_28d_vs_prev", "last 28 days against the 28 before (log ratio)", 0.5,
            "half e-fold of the last 4 weeks against the 4 before",
            lambda s, v: f"{count_text(s.events_28d, 'event')} in the last 4 weeks against {s.events_prev_28d} in the "
            "4 before"),
    Feature("peer_level", "level among your customers (0 lowest, 1 highest)", 0.1, "tenth higher among customers",
            _level_words),
    Feature("log_tenure_days", "days since the first event (log)", 1.0, "e-fold of account age",
            lambda s, v: f"a customer for {math.expm1(v):.0f} days"),
    Feature("log_users_28d", "active users in 28 days (log)", 1.0, "e-fold of active users",
            lambda s, v: f"{count_text(s.users_28d, 'active user')} in the last 4 weeks"),
    Feature("users_trend", "active users this week against 4 weeks (log ratio)", 0.5,
            "half e-fold of this week's users against 4 weeks'",
            lambda s, v: f"{count_text(s.users_7d, 'active user')} this week of {s.users_28d} in 4 weeks"),
    Feature("log_days_since_last_event", "days since the last real event (log)", 1.0,
            "e-fold of days since the last event",
            lambda s, v: f"last real event {math.expm1(v):.0f} days ago"),
    Feature("log_days_since_core_value", "days since the core value (log; never: age + 1)", 1.0,
            "e-fold of days since the core value",
            lambda s, v: "never reached the core value" if s.last_investigation_at is None
            else f"last core-value event {math.expm1(v):.0f} days ago"),
    Feature("friction_per_100", "friction events per 100 events over 28 days", 5.0, "5 friction events per 100",
            lambda s, v: f"{v:.0f} friction events per 100 events over 4 weeks"),
    Feature("core_share", "core value's share of events over 28 days", 0.1, "tenth more of use on the core value",
            lambda s, v: f"{pct_text(v)} of its use on the core value"),
)  # fmt: skip
FEATURES_BY_NAME = {f.name: f for f in FEATURES}
TYPE_FEATURE_WINDOWS = (28, 90)

# Every registered type's counts over 28 and 90 days per tenant: the day rollups by their primary
# key's tenant prefix (tenant_rows_sql), one group per tenant and type.
TYPE_COUNTS_SQL = """
SELECT r.tenant_id, r.event_type,
       sum(r.value) FILTER (WHERE r.day > %(d)s::date - 28) AS n_28d, sum(r.value) AS n_90d
FROM {day_rows} r
GROUP BY r.tenant_id, r.event_type
"""


def type_feature_name(event_type: str, days: int) -> str:
    return f"type_{days}d:{event_type}"


def feature_types(vocabulary: Vocabulary) -> tuple[str, ...]:
    """The event types with per-type features: every registered name, sorted (the live engine and the
    backtest both read them from the registry they compute with)."""
    return tuple(sorted(vocabulary.labels))


def feature_names(types: tuple[str, ...]) -> tuple[str, ...]:
    """Every feature: FEATURES, then the per-type counts of ``types`` (the registry's names)."""
    return (
        *(f.name for f in FEATURES),
        *(type_feature_name(t, days) for t in types for days in TYPE_FEATURE_WINDOWS),
    )


def feature_label(name: str) -> str:
    if name in FEATURES_BY_NAME:
        return FEATURES_BY_NAME[name].label
    prefix, _, event_type = name.partition(":")
    return f"{event_type} events in {prefix.removeprefix('type_')} (log)"


def feature_unit(name: str) -> tuple[float, str]:
    if name in FEATURES_BY_NAME:
        feature = FEATURES_BY_NAME[name]
        return feature.unit, feature.unit_words
    return 1.0, f"e-fold of {feature_label(name).removesuffix(' (log)')}"


def type_counts_measure(*, as_of: date, scope: str) -> dict[str, dict[str, tuple[int, int]]]:
    """tenant -> event type -> (28-day count, 90-day count)."""
    window = f"x.day > %(d)s::date - {SIGNAL_WINDOW_DAYS} AND x.day <= %(d)s::date"
    with connection.cursor() as cursor:
        cursor.execute(
            TYPE_COUNTS_SQL.format(day_rows=tenant_rows_sql("ops_rollup_tenant_day", window, scope=scope)),
            {"d": as_of},
        )
        rows = rows_as_dicts(cursor)
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for r in rows:
        out.setdefault(r["tenant_id"], {})[r["event_type"]] = (int(r["n_28d"] or 0), int(r["n_90d"] or 0))
    return out


def tenant_features(
    signals: TenantSignals,
    *,
    as_of: date,
    types: tuple[str, ...],
    type_counts: dict[str, tuple[int, int]],
    points: dict[str, float],
) -> dict[str, float]:
    """Every feature of one account on ``as_of`` (see the module docstring); ``points``: the heuristic's
    component points (kept as features too: the model can lean on the decline it sees)."""
    first = signals.first_seen_at.astimezone(UTC).date() if signals.first_seen_at else as_of
    age = max((as_of - first).days, 0)
    last = signals.last_seen_at.astimezone(UTC).date() if signals.last_seen_at else first
    core = signals.last_investigation_at.astimezone(UTC).date() if signals.last_investigation_at else None
    since_core = (as_of - core).days if core is not None else age + 1
    values: dict[str, float] = {
        "log_events_7d": _log(signals.events_7d),
        "log_events_28d": _log(signals.events_28d),
        "log_events_90d": _log(signals.events_90d),
        "log_core_7d": _log(signals.core_events_7d),
        "log_core_28d": _log(signals.core_events_28d),
        "log_core_90d": _log(signals.core_events_90d),
        "active_days_28d": float(signals.active_days_28d),
        "active_days_90d": float(signals.active_days_90d),
        "log_events_per_active_day": _log(signals.events_28d / signals.active_days_28d)
        if signals.active_days_28d
        else 0.0,
        "log_events_per_user": _log(signals.events_28d / signals.users_28d) if signals.users_28d else 0.0,
        "trend_7d_vs_28d": _ratio_log(signals.events_7d, signals.events_28d / 4),
        "trend_28d_vs_prev": _ratio_log(signals.events_28d, signals.events_prev_28d),
        # Without enough customers to compare with, the middle: "no different from the others".
        "peer_level": signals.peer_level_pct if signals.peer_level_pct is not None else 0.5,
        "log_tenure_days": _log(age),
        "log_users_28d": _log(signals.users_28d),
        "users_trend": _ratio_log(signals.users_7d, signals.users_28d),
        "log_days_since_last_event": _log((as_of - last).days),
        "log_days_since_core_value": _log(since_core),
        "friction_per_100": 100.0 * signals.friction_events_28d / signals.events_28d if signals.events_28d else 0.0,
        "core_share": signals.core_events_28d / signals.events_28d if signals.events_28d else 0.0,
    }
    for event_type in types:
        counts = type_counts.get(event_type, (0, 0))
        for days, n in zip(TYPE_FEATURE_WINDOWS, counts, strict=True):
            values[type_feature_name(event_type, days)] = _log(n)
    values.update({f"{name}_points": float(p) for name, p in points.items()})
    return values


def feature_sentence(name: str, signals: TenantSignals, value: float) -> str:
    """One account's value of a feature in a sentence (the per-type counts in plain numbers)."""
    if name in FEATURES_BY_NAME:
        return FEATURES_BY_NAME[name].describe(signals, value)
    if name.endswith("_points"):
        return ""
    prefix, _, event_type = name.partition(":")
    days = prefix.removeprefix("type_").removesuffix("d")
    return f"{count_text(round(math.expm1(value)), event_type + ' event')} in the last {days} days"


def features_payload(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items()}
