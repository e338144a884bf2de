"""The fixed catalogue of metrics a playbook condition can test, and how each becomes SQL.

A condition is ``<metric> <operator> <threshold>`` (plus ``window_days`` and
``event_types`` where the metric needs them). The admin form, the API and the
engine all validate through ``condition_problems`` and render through
``condition_text``, so what the founder reads is exactly what is evaluated;
``playbooks/condition_sql.py`` turns them into the one statement that measures them.

Every metric is measured from the metrics engine's caches for ALL tenants in
one statement (``match_query``): scalar metrics read ``ops_tenant_metrics``
(alias ``tm``); windowed ones aggregate the day rollups (real events only, per
UTC day, windows ending on ``as_of`` inclusive, like the engine's).

``event_count`` counts types named by *selectors* (comma-separated, any case):
a registered type's name (``invoice_sent``), or a role of the registry written
``<role> events`` (``core_value events``, ``blocked events``, ``friction events``,
``login events``; the roles are events.registry.ROLE_SETS), optionally
``weighing N+`` (only the role's types whose friction weight is at least N). A
role is resolved against the registry at every evaluation, so a playbook written
in roles matches in any product and follows the founder's registry edits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from customers.metrics.fold import ROLLUP_RETENTION_DAYS
from customers.metrics.friction import FRICTION_CAPS_TEXT
from events.registry import ROLE_SETS, Registry


class ConditionLike(Protocol):
    metric: str
    operator: str
    threshold: float
    window_days: int | None
    event_types: str

    def event_type_list(self) -> list[str]: ...


@dataclass(frozen=True)
class Metric:
    key: str
    description: str
    windowed: bool = False
    needs_event_types: bool = False
    # Scalar metrics: the SQL expression over ops_tenant_metrics tm (may be NULL).
    column: str = ""
    # Windowed metrics: the noun used in readable text ("3+ real events in 7 days").
    noun: str = ""
    # "days since" metrics read as "7+ days since the last real event".
    days_since: str = ""
    # ...or, for a role's types, in the product's words: "7+ days since the last Deploy shipped".
    days_since_role: str = ""
    # Windowed growth: the last N days divided by the N days before ("active users in 28 days at
    # least 1.5x the 28 days before"); NULL (never matches) when the earlier window had none.
    growth: bool = False
    # Scalar metrics: what the founder reads ("this week's use below 50% of normal"); ``percent``
    # shows a ratio threshold as a percentage, ``unit`` follows the threshold ("of 100").
    reads_as: str = ""
    percent: bool = False
    unit: str = ""


METRICS: dict[str, Metric] = {
    m.key: m
    for m in [
        Metric(
            "event_count",
            "Real events of the listed types or roles (e.g. blocked events) in the last N days (rollups).",
            windowed=True,
            needs_event_types=True,
        ),
        Metric("real_events", "All real events in the last N days (rollups).", windowed=True, noun="real events"),
        Metric(
            "active_days",
            "Days with at least one real event in the last N days (rollups).",
            windowed=True,
            noun="active days",
        ),
        Metric(
            "event_count_growth",
            "Real events of the listed types or roles in the last N days divided by those in the N days before "
            "(rollups); NULL (never matches) when there were none before.",
            windowed=True,
            needs_event_types=True,
            growth=True,
        ),
        Metric(
            "active_users",
            "Distinct users with a real event in the last N days (rollups).",
            windowed=True,
            noun="active users",
        ),
        Metric(
            "active_users_growth",
            "Distinct users with a real event in the last N days divided by those in the N days before (rollups); "
            "NULL (never matches) when there were none before.",
            windowed=True,
            noun="active users",
            growth=True,
        ),
        Metric(
            "stickiness_delta",
            "stickiness_7d / stickiness_30d; NULL (never matches) without a 30-day baseline.",
            column="tm.stickiness_delta",
            reads_as="this week's use",
            percent=True,
            unit=" of normal",
        ),
        Metric(
            "stickiness_7d",
            "Weighted engagement over the last 7 days.",
            column="tm.stickiness_7d",
            reads_as="weighted use this week",
        ),
        Metric(
            "stickiness_30d",
            "Weighted engagement over 30 days / 4.3 (weekly).",
            column="tm.stickiness_30d",
            reads_as="weighted use in a usual week",
        ),
        Metric(
            "days_since_investigation",
            "Days since the last core-value event (the registry's core_value types); NULL (never matches) if never.",
            column="tm.days_since_investigation",
            days_since="the last core-value event",
            days_since_role="core_value",
        ),
        Metric(
            "days_since_last_seen",
            "Days since the tenant's last real event; NULL (never matches) if never seen.",
            column="(%(d)s::date - (tm.last_seen_at AT TIME ZONE 'UTC')::date)",
            days_since="the last real event",
        ),
        Metric(
            "friction_weighted_score",
            f"Weighted friction over 7 days ({FRICTION_CAPS_TEXT}).",
            column="tm.friction_weighted_score",
            reads_as="friction score over 7 days",
        ),
        Metric(
            "friction_events_7d",
            "Friction events over 7 days.",
            column="tm.friction_events_7d",
            reads_as="friction events in 7 days",
        ),
        Metric(
            "risk_signal_strength",
            "The engine's additive heuristic (0-100).",
            column="tm.risk_signal_strength",
            reads_as="risk signal",
            unit=" of 100",
        ),
        Metric(
            "plan_usage_pct",
            "Real events over 30 days as % of the plan's monthly limit; NULL without a limit.",
            column="tm.plan_usage_pct",
            reads_as="plan used",
            unit="% of the monthly limit",
        ),
    ]
}
SQL_OPERATORS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "="}
MAX_WINDOW_DAYS = ROLLUP_RETENTION_DAYS
# A growth metric reads its window and the one before it: both must be in the rollups.
MAX_GROWTH_WINDOW_DAYS = ROLLUP_RETENTION_DAYS // 2
# No metric is negative, and none comes near a billion (event counts over the longest window
# included): a threshold outside this range is a typo such as 1e308 or -5.
THRESHOLD_MIN = 0.0
THRESHOLD_MAX = 1_000_000_000.0
# "core_value events", "friction events weighing 2+".
_ROLE_SELECTOR_RE = re.compile(r"^\s*([a-z_]+)\s+events(?:\s+weighing\s+(\d+(?:\.\d+)?)\s*\+)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class RoleSelector:
    role: str
    min_friction_weight: float | None = None

    def __str__(self) -> str:
        weight = "" if self.min_friction_weight is None else f" weighing {_num(self.min_friction_weight)}+"
        return f"{self.role} events{weight}"


def role_selector_parse(selector: str) -> RoleSelector | None:
    """The role a selector names ("blocked events"), or None for a type name.

    A phrase that reads as a role always means the role, so a condition reads the
    same with or without the registry at hand."""
    found = _ROLE_SELECTOR_RE.match(selector)
    if found is None or found.group(1).lower() not in ROLE_SETS:
        return None
    weight = found.group(2)
    return RoleSelector(found.group(1).lower(), None if weight is None else float(weight))


def selectors_split(event_types: str) -> list[str]:
    """The comma-separated selectors of a condition, stripped, as written."""
    return [t.strip() for t in event_types.split(",") if t.strip()]


def selectors_normalise(selectors: Sequence[str], *, known_event_types: Iterable[str]) -> list[str]:
    """Each selector in its canonical spelling: a role as ``<role> events``, a type as registered
    (the first spelling, whatever case the founder typed). Unknown names are kept as typed."""
    spelled = {name.lower(): name for name in known_event_types}
    out: list[str] = []
    for selector in selectors:
        role = role_selector_parse(selector)
        out.append(str(role) if role else spelled.get(selector.lower(), selector))
    return out


def condition_event_types(condition: ConditionLike, *, registry: Registry) -> list[str]:
    """The registered names the condition's selectors stand for, in registry order, once each.

    Every type in a role, spoken for the product or not: what a condition measures never
    depends on which types its text may name (an unsent type counts zero either way)."""
    names: list[str] = []
    for selector in condition.event_type_list():
        role = role_selector_parse(selector)
        if role is not None:
            found = [t.name for t in registry.members(role.role, min_friction_weight=role.min_friction_weight)]
        else:
            event_type = registry.find(selector)
            found = [event_type.name] if event_type else []
        names += [n for n in found if n not in names]
    return names


def _role_plain(role: RoleSelector) -> str:
    """A role in plain words, for when none of its types speaks for the product ("failures",
    "abandoned steps weighing 2+")."""
    weight = "" if role.min_friction_weight is None else f" weighing {_num(role.min_friction_weight)}+"
    return ROLE_SETS[role.role].plain + weight


def _selectors_noun(condition: ConditionLike, registry: Registry | None) -> str:
    """What a windowed event_count counts, in the product's words: the labels (else the names)
    of the role's types that speak for the product (an example type it never sent does not);
    while none does, the role's plain word, saying so when no type has the role at all."""
    parts: list[str] = []
    for selector in condition.event_type_list():
        role = role_selector_parse(selector)
        if registry is None:
            parts.append(selector)
        elif role is not None:
            speaking = registry.members(role.role, min_friction_weight=role.min_friction_weight, speaking=True)
            if speaking:
                parts += [t.label or t.name for t in speaking]
            elif registry.members(role.role, min_friction_weight=role.min_friction_weight):
                parts.append(_role_plain(role))
            else:
                parts.append(f"{role} (no type has this role yet)")
        else:
            event_type = registry.find(selector)
            parts.append((event_type.label or event_type.name) if event_type else selector)
    unique = list(dict.fromkeys(parts))
    return ", ".join(unique[:-1]) + " or " + unique[-1] if len(unique) > 1 else "".join(unique)


def _days_since_noun(metric: Metric, registry: Registry | None) -> str:
    """What a "days since" metric counts from: with the registry, the last of its role's types by
    label ("the last Deploy shipped"); otherwise the metric's own words."""
    if registry is None or not metric.days_since_role:
        return metric.days_since
    speaking = registry.members(metric.days_since_role, speaking=True)
    labels = list(dict.fromkeys(t.display_label for t in speaking))
    if not labels and registry.members(metric.days_since_role):
        return metric.days_since  # only types the product never sent: the plain words
    if not labels:
        return f"{metric.days_since} ({metric.days_since_role} events: no type has this role yet)"
    return "the last " + (", ".join(labels[:-1]) + " or " + labels[-1] if len(labels) > 1 else labels[0])


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def condition_text(condition: ConditionLike, *, registry: Registry | None = None) -> str:
    """The condition as a founder reads it, e.g. "3+ Seat limit hit in 7 days".

    With the registry, roles read as the product's own types ("blocked events" ->
    the types blocking ("Seat limit hit"), "days_since_investigation >= 7" -> "7+ days since the last
    Deploy shipped"); without it, selectors read as written."""
    metric = METRICS.get(condition.metric)
    op, t = condition.operator, _num(condition.threshold)
    if metric is None:
        return f"{condition.metric} {op} {t} (unknown metric)"
    if metric.windowed and metric.growth:
        noun = _selectors_noun(condition, registry) if metric.needs_event_types else metric.noun
        days = f"{condition.window_days} day{'s' if condition.window_days != 1 else ''}"
        return f"{noun} in {days} {_SCALAR_OPERATOR_WORDS[op]} {t}x the {days} before"
    if metric.windowed:
        noun = _selectors_noun(condition, registry) if metric.needs_event_types else metric.noun
        window = f"in {condition.window_days} day{'s' if condition.window_days != 1 else ''}"
        if op == "==" and condition.threshold == 0:
            return f"no {noun} {window}"
        phrase = {
            ">=": f"{t}+",
            ">": f"more than {t}",
            "<=": f"at most {t}",
            "<": f"fewer than {t}",
            "==": f"exactly {t}",
        }[op]
        return f"{phrase} {noun} {window}"
    if metric.days_since:
        since = _days_since_noun(metric, registry)
        if op in (">=", ">"):
            return f"{t}+ days since {since}" if op == ">=" else f"more than {t} days since {since}"
        return f"{_DAYS_OPERATOR_WORDS[op]} {t} day{'s' if t != '1' else ''} since {since}"
    value = f"{condition.threshold * 100:g}%" if metric.percent else t
    return f"{metric.reads_as or metric.key} {_SCALAR_OPERATOR_WORDS[op]} {value}{metric.unit}"


# How a comparison reads in a sentence ("this week's use below 50% of normal").
_SCALAR_OPERATOR_WORDS = {"<": "below", "<=": "at most", ">": "above", ">=": "at least", "==": "exactly"}
_DAYS_OPERATOR_WORDS = {"<": "fewer than", "<=": "at most", "==": "exactly"}


def condition_problems(
    *,
    metric: str,
    operator: str,
    threshold: float | None,
    window_days: int | None,
    event_types: Sequence[str],
    known_event_types: Iterable[str],
) -> dict[str, str]:
    """Field -> clear message for everything wrong with a condition (empty when valid)."""
    problems: dict[str, str] = {}
    spec = METRICS.get(metric)
    if spec is None:
        problems["metric"] = f"Unknown metric '{metric}'. Choose one of: {', '.join(METRICS)}."
    if operator not in SQL_OPERATORS:
        problems["operator"] = f"Unknown operator '{operator}'. Choose one of: {', '.join(SQL_OPERATORS)}."
    if threshold is None:
        problems["threshold"] = "A threshold is required."
    elif not (math.isfinite(threshold) and THRESHOLD_MIN <= threshold <= THRESHOLD_MAX):
        problems["threshold"] = (
            f"The threshold must be a number from {_num(THRESHOLD_MIN)} to {THRESHOLD_MAX:,.0f} "
            "(no metric is negative or anywhere near that large)."
        )
    if spec is None:
        return problems
    if spec.windowed:
        longest = MAX_GROWTH_WINDOW_DAYS if spec.growth else MAX_WINDOW_DAYS
        if window_days is None:
            problems["window_days"] = f"'{metric}' is measured over a window: give window_days (1-{longest})."
        elif not 1 <= window_days <= longest:
            problems["window_days"] = (
                f"window_days must be between 1 and {longest} (the rollups keep {MAX_WINDOW_DAYS} days"
                + (", and a growth reads the window before it too)." if spec.growth else ").")
            )
    elif window_days is not None:
        problems["window_days"] = f"'{metric}' has a fixed window; leave window_days empty."
    if spec.needs_event_types:
        if not event_types:
            problems["event_types"] = (
                f"{metric} needs at least one event type or role, e.g. invoice_sent or blocked events."
            )
        else:
            known = {name.lower() for name in known_event_types}
            unknown = [t for t in event_types if role_selector_parse(t) is None and t.lower() not in known]
            if unknown:
                problems["event_types"] = (
                    f"Unknown event type(s): {', '.join(unknown)}. Use names from the event type registry, "
                    f"or a role written '<role> events' (roles: {', '.join(ROLE_SETS)})."
                )
    elif event_types:
        takes = " and ".join(m.key for m in METRICS.values() if m.needs_event_types)
        problems["event_types"] = f"Only {takes} take event types; leave it empty for '{metric}'."
    return problems
