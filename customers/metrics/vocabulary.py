"""The product's vocabulary as the engine reads it: roles and labels from the event type registry.

The engine never names an event type: silent churn and never-used-the-core-value
read the ``core_value`` types, the repeated-block rule the ``blocked`` ones,
failures the ``system_issue`` ones, "what changed" the ``change`` category, and
every founder-facing text the types' labels. ``vocabulary_current`` reads it
once per run; ``registry_key_current`` fingerprints everything a founder edits
that the metrics read, so an edit takes effect at the next recompute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection

from core.rows import row_as_dict, rows_as_dicts
from customers.models import WordingRole
from events.models import EventCategory, FrictionSignal, event_type_label_default
from events.registry import event_type_names_sent

# The whole registry (a few dozen rows; read whole, no index needed).
REGISTRY_SQL = """
SELECT name, label, category, core_value, friction_signal, friction_weight, engagement_weight, is_example
FROM events_eventtype ORDER BY name
"""
# The founder's role wording (at most one row per role).
WORDING_SQL = "SELECT role, for_types, text FROM customers_role_wording ORDER BY role"

# Everything the day summaries carry (fold.py, daily.py): a change rebuilds them from the day counts.
FOLD_KEY_SQL = """
SELECT md5(COALESCE(string_agg(concat_ws(',', name, category, friction_signal, friction_weight,
       engagement_weight), ';' ORDER BY name), '')) AS key
FROM events_eventtype
"""
# Everything the metrics and their texts read: the registry's fields (roles and labels too), the
# types that speak for the product (texts name no other; a type first sent, or an example that
# ages out, rewords them), the role wording, the active risk weights, the adopted churn model and
# the ranking setting, and the version of the engine's text templates. A change recomputes every
# tenant at the next run.
METRICS_KEY_SQL = """
SELECT md5(concat_ws('|',
    (SELECT string_agg(concat_ws(',', name, label, category, core_value, friction_signal, friction_weight,
            engagement_weight), ';' ORDER BY name) FROM events_eventtype),
    'speaking-' || %(speaking)s::text,
    (SELECT string_agg(concat_ws(',', role, for_types, text), ';' ORDER BY role) FROM customers_role_wording),
    (SELECT concat_ws(',', version, weights::text) FROM customers_risk_weights WHERE is_active),
    (SELECT 'model-' || version FROM customers_churn_model WHERE is_active),
    'ranking-' || %(ranking)s::text,
    'texts-' || %(texts_version)s::text
)) AS key
"""


@dataclass(frozen=True)
class Vocabulary:
    """The registry's roles and labels (type names as the product sends them, sorted)."""

    labels: dict[str, str] = field(default_factory=dict)  # name -> the founder's label (may be empty)
    # The roles as the engine measures them: every type that holds the role.
    core_value: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()
    system_issue: tuple[str, ...] = ()
    change: tuple[str, ...] = ()
    # Role -> the founder's words for it, present only while they describe the role's current types.
    wording: dict[str, str] = field(default_factory=dict)
    engagement_weights: dict[str, float] = field(default_factory=dict)  # name -> weight, only those > 0
    # The types that speak for the product (events.registry.event_types_speaking): the only ones a
    # text names. None: every type.
    speaking: frozenset[str] | None = None

    def label(self, name: str) -> str:
        """A type's name for people: its label, or one derived from its name ("invoice_sent" -> "Invoice sent")."""
        return self.labels.get(name) or event_type_label_default(name)

    def speaking_of(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """Those of ``names`` (a role's types) a text may name, in the same order."""
        return names if self.speaking is None else tuple(n for n in names if n in self.speaking)

    def speaking_labels(self, names: tuple[str, ...]) -> list[str]:
        """The labels of those of ``names`` a text may name, each once ("Export failed" twice is one)."""
        return list(dict.fromkeys(self.label(n) for n in self.speaking_of(names)))


def _wording_applying(
    rows: list[dict[str, str]], roles: dict[str, tuple[str, ...]], speaking: frozenset[str] | None
) -> dict[str, str]:
    """The wording that applies: written for exactly the role's current types, one of which at
    least speaks for the product (the seeded "investigated" never speaks for a product that
    never sent an incident)."""
    out = {}
    for row in rows:
        written_for = frozenset(part.strip().lower() for part in row["for_types"].split(",") if part.strip())
        types = roles.get(row["role"], ())
        current = frozenset(name.lower() for name in types)
        heard = speaking is None or any(name in speaking for name in types)
        if row["text"].strip() and current and written_for == current and heard:
            out[row["role"]] = row["text"].strip()
    return out


def vocabulary_from_rows(
    registry: list[dict[str, object]], wording: list[dict[str, str]], *, speaking: frozenset[str] | None = None
) -> Vocabulary:
    """A Vocabulary from registry rows (name, label, category, core_value, friction_signal) and
    wording rows; ``speaking``, the names texts may use (None: all)."""

    def names(keep: object) -> tuple[str, ...]:
        return tuple(sorted(str(r["name"]) for r in registry if keep(r)))  # type: ignore[operator]

    core = names(lambda r: bool(r["core_value"]))
    blocked = names(lambda r: r["friction_signal"] == FrictionSignal.BLOCKED)
    system_issue = names(lambda r: r["friction_signal"] == FrictionSignal.SYSTEM_ISSUE)
    roles = {WordingRole.CORE_VALUE: core, WordingRole.BLOCKED: blocked, WordingRole.SYSTEM_ISSUE: system_issue}
    return Vocabulary(
        labels={str(r["name"]): str(r["label"] or "") for r in registry},
        core_value=core,
        blocked=blocked,
        system_issue=system_issue,
        change=names(lambda r: r["category"] == EventCategory.CHANGE),
        wording=_wording_applying(wording, {str(k): v for k, v in roles.items()}, speaking),
        engagement_weights={
            str(r["name"]): float(r["engagement_weight"])  # type: ignore[arg-type]
            for r in registry
            if float(r.get("engagement_weight") or 0) > 0  # type: ignore[arg-type]
        },
        speaking=speaking,
    )


def _speaking(registry: list[dict[str, object]], *, now: datetime | None = None) -> frozenset[str]:
    """The names of the registry rows that speak for the product (events.registry.event_types_speaking)."""
    sent = event_type_names_sent([str(r["name"]) for r in registry if r["is_example"]], now=now)
    return frozenset(str(r["name"]) for r in registry if not r["is_example"] or r["name"] in sent)


def vocabulary_current() -> Vocabulary:
    """The registry's vocabulary now (two small queries, three while untouched examples are
    registered; once per run)."""
    with connection.cursor() as cursor:
        cursor.execute(REGISTRY_SQL)
        registry = rows_as_dicts(cursor)
        cursor.execute(WORDING_SQL)
        wording = rows_as_dicts(cursor)
    return vocabulary_from_rows(registry, wording, speaking=_speaking(registry))


# Bump when the engine's text templates (risk.py, interventions.py, texts.py) change: the stored
# rows hold rendered sentences, so an upgrade that rewords them recomputes every tenant once.
TEXTS_VERSION = 2


def registry_key_current(*, now: datetime | None = None) -> str:
    """A fingerprint of everything a founder edits that the metrics read (see METRICS_KEY_SQL),
    of the types that speak for the product at ``now``, and of the texts' version."""
    with connection.cursor() as cursor:
        cursor.execute(REGISTRY_SQL)
        speaking = ",".join(sorted(_speaking(rows_as_dicts(cursor), now=now)))
        cursor.execute(
            METRICS_KEY_SQL,
            {"texts_version": TEXTS_VERSION, "ranking": settings.RISK_RANKING, "speaking": speaking},
        )
        return str(row_as_dict(cursor)["key"])


def fold_registry_key_current() -> str:
    """A fingerprint of the registry fields the day summaries carry (see FOLD_KEY_SQL)."""
    with connection.cursor() as cursor:
        cursor.execute(FOLD_KEY_SQL)
        return str(row_as_dict(cursor)["key"])


# The seeded default vocabulary (events/migrations 0002, 0008, 0009 and 0012, customers/migrations/0009),
# for callers that assess hand-built signals without a database (tests, offline backtests). The
# engine itself always passes vocabulary_current().
SPEC_VOCABULARY = vocabulary_from_rows(
    [
        {"name": n, "label": label, "category": c, "core_value": core, "friction_signal": s}
        for n, label, c, core, s in [
            ("INCIDENT_VIEWED", "", EventCategory.VALUE, True, ""),
            ("REPLAY_COMPLETED", "", EventCategory.VALUE, True, ""),
            ("POLICY_BLOCK_REPEAT", "", EventCategory.FRICTION, False, FrictionSignal.BLOCKED),
            ("REPLAY_FAILED", "", EventCategory.FRICTION, False, FrictionSignal.SYSTEM_ISSUE),
            ("EXPORT_FAILED", "", EventCategory.FRICTION, False, FrictionSignal.SYSTEM_ISSUE),
            ("POLICY_CHANGED", "policy change", EventCategory.CHANGE, False, ""),
            ("MODEL_SWITCHED", "model switch", EventCategory.CHANGE, False, ""),
            ("RATE_LIMIT_CHANGED", "rate limit change", EventCategory.CHANGE, False, ""),
            ("PLAN_CHANGED", "plan change", EventCategory.CHANGE, False, ""),
        ]
    ],
    [
        {"role": WordingRole.CORE_VALUE, "for_types": "INCIDENT_VIEWED,REPLAY_COMPLETED", "text": "investigated"},
        {"role": WordingRole.BLOCKED, "for_types": "POLICY_BLOCK_REPEAT", "text": "Review and adjust policy config"},
        {
            "role": WordingRole.SYSTEM_ISSUE,
            "for_types": "EXPORT_FAILED,REPLAY_FAILED",
            "text": "Investigate the failing replays/exports",
        },
    ],
)
