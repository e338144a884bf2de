"""The behavioural features a churn model reads, defined once, computed by the engine from its rollups.

Each feature has a founder-facing label, the unit a coefficient is put in words for, and a
sentence about one account ("used the product on 2 days in the last 4 weeks"). The backtest
computes them on each as-of date from its private rollups and the live engine from the live
ones, with the same function (``features_matrix``) over the same measured signals: there is
no second implementation. It computes a day's accounts column by column (one array per feature,
not a dict per account), so measuring them costs little beside the signals query. Counts are
log-scaled (log(1 + n)): use is heavy-tailed, and a model on raw counts is led by the few
busiest accounts.

A decline is also set against the account's own earlier level (``events_14d_vs_own_level``: its last 14 days
against its days from 90 to 28 days back), which a decline does not drag down the way it drags the 28-day average
that ``trend_7d_vs_28d`` compares with.

Per event type: the 28- and 90-day counts of every registered type (``type_28d:<name>``),
from one query over the day rollups (``TYPE_COUNTS_SQL``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
from django.db import connection

from core.rows import row_as_dict
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
    Feature("events_14d_vs_own_level", "events in the last 14 days against the account's own level in the 2 months "
            "before (log ratio)", 0.5, "half e-fold of the last 2 weeks against its own earlier level",
            lambda s, v: f"about {pct_text(math.exp(v))} of its own earlier use in the last 2 weeks"),
)  # fmt: skip
FEATURES_BY_NAME = {f.name: f for f in FEATURES}
TYPE_FEATURE_WINDOWS = (28, 90)
# The account's own level: its days between 90 and 28 days back (the rollups' retention, before the last 4 weeks);
# an account with fewer of them than a week has no level of its own yet, and its ratio reads as steady (0).
OWN_LEVEL_DAYS = (90, 28)
OWN_LEVEL_MIN_DAYS = 7

# Every registered type's counts over 28 and 90 days per tenant: the day rollups by their primary
# key's tenant prefix (tenant_rows_sql), one group per tenant and type, returned as parallel arrays in
# one row (a 10,000-customer day is some 200,000 groups: no Python object per group). sum(bigint) is
# numeric in PostgreSQL; the counts fit a bigint.
TYPE_COUNTS_SQL = """
WITH counts AS (
    SELECT r.tenant_id, r.event_type,
           sum(r.value) FILTER (WHERE r.day > %(d)s::date - 28) AS n_28d, sum(r.value) AS n_90d
    FROM {day_rows} r
    GROUP BY r.tenant_id, r.event_type
)
SELECT COALESCE(array_agg(c.tenant_id), '{{}}') AS tenant_ids, COALESCE(array_agg(t.i), '{{}}') AS type_index,
       COALESCE(array_agg(COALESCE(c.n_28d, 0)::bigint), '{{}}') AS n_28d,
       COALESCE(array_agg(c.n_90d::bigint), '{{}}') AS n_90d
FROM counts c JOIN unnest(%(types)s::text[]) WITH ORDINALITY AS t(name, i) ON t.name = c.event_type
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


@dataclass(frozen=True)
class TypeCounts:
    """Per tenant (``row``: tenant_id -> row), each type's 28- and 90-day counts (``counts[row, type, window]``,
    types in the order they were measured for, windows in TYPE_FEATURE_WINDOWS order)."""

    row: dict[str, int]
    counts: np.ndarray

    @classmethod
    def empty(cls, types: tuple[str, ...]) -> TypeCounts:
        return cls({}, np.zeros((0, len(types), len(TYPE_FEATURE_WINDOWS)), dtype=np.int64))


def type_counts_measure(*, as_of: date, scope: str, types: tuple[str, ...]) -> TypeCounts:
    """Every tenant's 28- and 90-day count of each of ``types`` (the registry's: feature_types)."""
    window = (
        f"x.event_type = ANY(%(types)s::text[]) AND x.day > %(d)s::date - {SIGNAL_WINDOW_DAYS} AND x.day <= %(d)s::date"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            TYPE_COUNTS_SQL.format(day_rows=tenant_rows_sql("ops_rollup_tenant_day", window, scope=scope)),
            {"d": as_of, "types": list(types)},
        )
        found = row_as_dict(cursor)
    row: dict[str, int] = {}
    rows = np.fromiter((row.setdefault(t, len(row)) for t in found["tenant_ids"]), dtype=np.int64)
    counts = np.zeros((len(row), len(types), len(TYPE_FEATURE_WINDOWS)), dtype=np.int64)
    index = np.asarray(found["type_index"], dtype=np.int64) - 1  # WITH ORDINALITY counts from 1
    counts[rows, index, 0] = np.asarray(found["n_28d"], dtype=np.int64)
    counts[rows, index, 1] = np.asarray(found["n_90d"], dtype=np.int64)
    return TypeCounts(row, counts)


def _log_exact(x: np.ndarray) -> np.ndarray:
    """log(1 + max(x, 0)) of each value, by math.log1p (numpy's own log1p differs from it in the last bit of some
    values, and a feature must not depend on which of the two computed it); once per distinct value."""
    distinct, inverse = np.unique(np.maximum(x, 0.0), return_inverse=True)
    return np.fromiter((math.log1p(v) for v in distinct.tolist()), dtype=float, count=len(distinct))[
        inverse.reshape(-1)
    ]


def _ratio_log_exact(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log((1 + a) / (1 + b)): 0 when steady, negative when a fell below b."""
    return _log_exact(a) - _log_exact(b)


def _day_ordinals(moments: list[datetime | None], default: np.ndarray) -> np.ndarray:
    """Each moment's UTC day as an ordinal; ``default`` where there is none."""
    days = np.fromiter(
        (m.astimezone(UTC).date().toordinal() if m is not None else -1 for m in moments),
        dtype=np.int64,
        count=len(moments),
    )
    return np.where(days < 0, default, days)


def _share(num: np.ndarray, den: np.ndarray, *, scale: float = 1.0) -> np.ndarray:
    """scale * num / den where den > 0, else 0 (as Python computes it: the product first)."""
    safe = np.where(den > 0, den, 1)
    return np.where(den > 0, (scale * num) / safe if scale != 1.0 else num / safe, 0.0)


def _own_level_ratio(recent: np.ndarray, days: int, level: np.ndarray, level_days: np.ndarray) -> np.ndarray:
    """log((1 + recent) / (1 + the account's own use over as many days at its earlier rate)); 0 (steady) with
    fewer than OWN_LEVEL_MIN_DAYS days of its own level."""
    known = level_days >= OWN_LEVEL_MIN_DAYS
    expected = np.where(known, days * level / np.where(known, level_days, 1), recent)
    return np.where(known, _ratio_log_exact(recent, expected), 0.0)


def features_matrix(
    measured: list[TenantSignals],
    *,
    as_of: date,
    types: tuple[str, ...],
    type_counts: TypeCounts,
    points: dict[str, np.ndarray],
) -> tuple[tuple[str, ...], np.ndarray]:
    """Every feature of each account on ``as_of`` (see the module docstring), computed column by column:
    (the feature names, then ``<component>_points`` of ``points``; one float64 row per account of ``measured``).
    ``points``: the heuristic's component points per account (kept as features too: the model can lean on the
    decline it sees). ``type_counts`` must have been measured for ``types``."""
    n = len(measured)

    def col(name: str) -> np.ndarray:
        return np.fromiter((getattr(s, name) for s in measured), dtype=float, count=n)

    today = as_of.toordinal()
    first = _day_ordinals([s.first_seen_at for s in measured], np.full(n, today))
    age = np.maximum(today - first, 0)
    last = _day_ordinals([s.last_seen_at for s in measured], first)
    core = _day_ordinals([s.last_investigation_at for s in measured], np.full(n, -1))
    since_core = np.where(core >= 0, today - core, age + 1)
    events_7d, events_28d, active_28d, users_28d = (
        col("events_7d"),
        col("events_28d"),
        col("active_days_28d"),
        col("users_28d"),
    )
    # Days of the account's life in the window of its own level.
    level_days = np.maximum(
        0, (today - OWN_LEVEL_DAYS[1]) - np.maximum(first, today - OWN_LEVEL_DAYS[0] + 1) + 1
    ).astype(float)
    peer = np.fromiter(
        (s.peer_level_pct if s.peer_level_pct is not None else 0.5 for s in measured), dtype=float, count=n
    )  # without enough customers to compare with, the middle: "no different from the others"
    columns: dict[str, np.ndarray] = {
        "log_events_7d": _log_exact(events_7d),
        "log_events_28d": _log_exact(events_28d),
        "log_events_90d": _log_exact(col("events_90d")),
        "log_core_7d": _log_exact(col("core_events_7d")),
        "log_core_28d": _log_exact(col("core_events_28d")),
        "log_core_90d": _log_exact(col("core_events_90d")),
        "active_days_28d": active_28d,
        "active_days_90d": col("active_days_90d"),
        "log_events_per_active_day": np.where(active_28d > 0, _log_exact(_share(events_28d, active_28d)), 0.0),
        "log_events_per_user": np.where(users_28d > 0, _log_exact(_share(events_28d, users_28d)), 0.0),
        "trend_7d_vs_28d": _ratio_log_exact(events_7d, events_28d / 4),
        "trend_28d_vs_prev": _ratio_log_exact(events_28d, col("events_prev_28d")),
        "peer_level": peer,
        "log_tenure_days": _log_exact(age.astype(float)),
        "log_users_28d": _log_exact(users_28d),
        "users_trend": _ratio_log_exact(col("users_7d"), users_28d),
        "log_days_since_last_event": _log_exact((today - last).astype(float)),
        "log_days_since_core_value": _log_exact(since_core.astype(float)),
        "friction_per_100": _share(col("friction_events_28d"), events_28d, scale=100.0),
        "core_share": _share(col("core_events_28d"), events_28d),
        "events_14d_vs_own_level": _own_level_ratio(col("events_14d"), 14, col("events_90d") - events_28d, level_days),
    }
    rows = np.fromiter((type_counts.row.get(s.tenant_id, -1) for s in measured), dtype=np.int64, count=n)
    counts = np.zeros((n, len(types), len(TYPE_FEATURE_WINDOWS)))
    known = rows >= 0
    counts[known] = type_counts.counts[rows[known]]
    names = feature_names(types)
    matrix = np.empty((n, len(names) + len(points)))
    for j, f in enumerate(FEATURES):
        matrix[:, j] = columns[f.name]
    base = len(FEATURES)
    for k in range(len(types)):
        for w in range(len(TYPE_FEATURE_WINDOWS)):
            matrix[:, base + k * len(TYPE_FEATURE_WINDOWS) + w] = _log_exact(counts[:, k, w])
    for j, values in enumerate(points.values()):
        matrix[:, len(names) + j] = values
    return (*names, *(f"{name}_points" for name in points)), matrix


def component_points(points: list[dict[str, float]]) -> dict[str, np.ndarray]:
    """Each risk component's points per account (``points``: each account's {component: points}, in one order)."""
    if not points:
        return {}
    names = list(points[0])
    table = np.asarray([[float(row[name]) for name in names] for row in points], dtype=float)
    return {name: table[:, j] for j, name in enumerate(names)}


def feature_sentence(name: str, signals: TenantSignals, value: float) -> str:
    """One account's value of a feature in a sentence (the per-type counts in plain numbers)."""
    if name in FEATURES_BY_NAME:
        return FEATURES_BY_NAME[name].describe(signals, value)
    if name.endswith("_points"):
        return ""
    prefix, _, event_type = name.partition(":")
    days = prefix.removeprefix("type_").removesuffix("d")
    return f"{count_text(round(math.expm1(value)), event_type + ' event')} in the last {days} days"
