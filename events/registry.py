"""The event type registry as the rest of the console reads and writes it.

Names match case-insensitively and keep their first spelling: ``find`` and
``event_type_put`` look a name up by ``lower(name)`` (the unique index
``events_eventtype_name_ci``), so "login" finds "LOGIN" and a PUT of "login"
replaces "LOGIN" without renaming it.

Validation is the model's (``EventType`` field validators, choices and
constraints in events/models/vocabulary.py): the API and admin both call ``full_clean``,
so a weight of 1e308, a signal "banana" or a 101-character label is refused in
the same words everywhere.

``ROLE_SETS`` are the sets of types a playbook condition (or any later reader)
can name by role instead of by type name: "core_value events", "blocked events".
They are defined here, next to the fields they read, so a new role is one entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet, Value
from django.db.models.functions import Lower
from django.utils import timezone

from core.rows import rows_as_dicts
from events.defaults import DEFAULT_VOCABULARY
from events.models import EventCategory, EventType, FrictionSignal, NorthStarRole
from events.rules import classification_rules_changed

# Every field of an entry the API and admin expose, in the order they are shown: the type's editable
# fields as the model declares them (the name first; never its bookkeeping, created_at and is_example).
ENTRY_FIELDS = tuple(field.name for field in EventType._meta.concrete_fields if field.editable)
# Fields whose edit changes what is real or who counts: history is reclassified on commit.
CLASSIFICATION_FIELDS = frozenset({"counts_as_real_interaction", "page_view"})


@dataclass(frozen=True)
class RoleSet:
    key: str
    description: str
    member: Callable[[EventType], bool]
    # What a text says for the role while none of its types speaks for the product (a plural
    # noun: "no failures in 7 days", "7+ days since the last core action").
    plain: str = ""


# The plain words of the friction signals and north-star roles, as plural nouns.
SIGNAL_PLAIN = {
    FrictionSignal.FRICTION: "abandoned steps",
    FrictionSignal.HESITATION: "hesitations",
    FrictionSignal.INTENT: "started actions",
    FrictionSignal.SYSTEM_ISSUE: "failures",
    FrictionSignal.BLOCKED: "blocks",
    FrictionSignal.ENGAGEMENT: "session events",
}
NORTH_STAR_PLAIN = {
    NorthStarRole.SIGNUP: "signups",
    NorthStarRole.LOGIN: "logins",
    NorthStarRole.CORE_ACTION: "core actions",
    NorthStarRole.DECISION: "decisions",
    NorthStarRole.FEEDBACK: "feedback",
}


def _role_sets() -> dict[str, RoleSet]:
    sets = [
        RoleSet("core_value", "The product's main value action (core_value).", lambda t: t.core_value, "core actions"),
        RoleSet("page_view", "Page views (page_view).", lambda t: t.page_view, "page views"),
        RoleSet(
            "engaged",
            "Types that count in stickiness (engagement_weight above 0).",
            lambda t: t.engagement_weight > 0,
            "events that count as use",
        ),
        RoleSet(
            "side_value",
            "Value types that are neither the core value nor weighted in engagement (e.g. a certificate).",
            lambda t: t.category == EventCategory.VALUE and not t.core_value and t.engagement_weight == 0,
            "side-feature events",
        ),
    ]
    sets += [
        RoleSet(
            signal.value,
            f"Friction signal '{signal.value}': {signal.label}.",
            _signal_member(signal.value),
            SIGNAL_PLAIN[signal],
        )
        for signal in FrictionSignal
    ]
    sets += [
        RoleSet(
            role.value,
            f"North-star role '{role.value}' ({role.label}).",
            _role_member(role.value),
            NORTH_STAR_PLAIN[role],
        )
        for role in NorthStarRole
    ]
    return {s.key: s for s in sets}


def _signal_member(signal: str) -> Callable[[EventType], bool]:
    return lambda t: t.friction_signal == signal


def _role_member(role: str) -> Callable[[EventType], bool]:
    return lambda t: t.north_star_role == role


ROLE_SETS: dict[str, RoleSet] = _role_sets()


# --- Which types speak for the product ---------------------------------------------------
# A type speaks in founder-facing texts (a text's labels, a playbook condition's role, a talk
# track's words) unless it is an untouched example (``EventType.is_example``) the product has
# not sent in this many days: the default vocabulary never speaks for a product that never sent
# it. What is measured is unchanged: an unsent type only ever counts zero.
SPEAKING_DAYS = 90
# Which of the names the product sent since %(since)s (real events, as the metrics engine folds
# them into its per-type spans). Uses index: ops_span_type_last (event_type, last_at), a range per
# name asked about (the untouched examples only); never a read of ops_events. A plain DISTINCT, not a
# correlated EXISTS over unnest, which a Citus coordinator cannot plan.
_NAMES_SENT_SQL = """
SELECT DISTINCT s.event_type AS name FROM ops_rollup_tenant_span s
WHERE s.event_type = ANY(%(names)s::text[]) AND s.last_at >= %(since)s
"""


def event_type_names_sent(names: Iterable[str], *, now: datetime | None = None) -> set[str]:
    """Those of ``names`` (registry spellings) the product sent in the last SPEAKING_DAYS days."""
    names = list(names)
    if not names:
        return set()
    since = (now or timezone.now()) - timedelta(days=SPEAKING_DAYS)
    with connection.cursor() as cursor:
        cursor.execute(_NAMES_SENT_SQL, {"names": names, "since": since})
        return {row["name"] for row in rows_as_dicts(cursor)}


def event_types_speaking(types: Iterable[EventType], *, now: datetime | None = None) -> frozenset[str]:
    """The names of ``types`` that speak for the product: every type but an untouched example
    not sent in SPEAKING_DAYS days. One query while untouched examples are registered, else none."""
    types = list(types)
    sent = event_type_names_sent([t.name for t in types if t.is_example], now=now)
    return frozenset(t.name for t in types if not t.is_example or t.name in sent)


class Registry:
    """A snapshot of every registered type (one query; the table is small), in the order the
    types were registered: the order a role's types are listed in founder-facing text.

    ``speaking`` (the names that speak for the product, ``event_types_speaking``) is read on
    first use; without a reader every type speaks."""

    def __init__(
        self, types: Iterable[EventType], *, speaking: Callable[[list[EventType]], frozenset[str]] | None = None
    ) -> None:
        self.types = list(types)
        self._by_lower = {t.name.lower(): t for t in self.types}
        self._speaking_read = speaking
        self._speaking: frozenset[str] | None = None

    @property
    def speaking(self) -> frozenset[str]:
        if self._speaking is None:
            read = self._speaking_read
            self._speaking = read(self.types) if read else frozenset(t.name for t in self.types)
        return self._speaking

    def find(self, name: str) -> EventType | None:
        """The type spelled ``name`` in any case, or None."""
        return self._by_lower.get(name.lower())

    def members(
        self, role: str, *, min_friction_weight: float | None = None, speaking: bool = False
    ) -> list[EventType]:
        """The types in the role set ``role`` (a key of ROLE_SETS), in registry order; with
        ``speaking``, only those that speak for the product (what a text may name)."""
        member = ROLE_SETS[role].member
        found = [
            t
            for t in self.types
            if member(t) and (min_friction_weight is None or t.friction_weight >= min_friction_weight)
        ]
        return [t for t in found if t.name in self.speaking] if speaking else found


def event_type_registry() -> Registry:
    return Registry(EventType.objects.order_by("created_at", "name"), speaking=event_types_speaking)


def _by_name(name: str) -> QuerySet[EventType]:
    # lower(name) = lower(%s): the expression of the unique index events_eventtype_name_ci.
    return EventType.objects.alias(lname=Lower("name")).filter(lname=Lower(Value(name)))


def event_type_find(*, name: str) -> EventType | None:
    """The registered type with this name in any case, or None."""
    return _by_name(name).first()


def event_type_entry(event_type: EventType) -> dict[str, Any]:
    """The API's entry for a type: every field, with ``label`` the display label."""
    entry = {field: getattr(event_type, field) for field in ENTRY_FIELDS}
    entry["label"] = event_type.display_label
    return entry


def event_type_put(*, name: str, data: dict[str, Any]) -> tuple[EventType, bool]:
    """Create or replace the type ``name`` with ``data`` (the other fields; missing ones
    take their defaults, as a replace does). Returns (type, created).

    A name that differs only in case from a registered type replaces that type and keeps
    its first spelling. Raises django ValidationError (field -> messages) and changes
    nothing when any field is invalid. A replace locks the row (``SELECT ... FOR UPDATE``);
    two racing creates of one name (in any case) meet at the unique index on lower(name),
    and the loser retries as a replace: never two types, never an IntegrityError.
    """
    try:
        return _event_type_put(name=name, data=data)
    except IntegrityError:
        # A concurrent PUT created the same name (in some case) first: this one replaces it.
        return _event_type_put(name=name, data=data)


def _event_type_put(*, name: str, data: dict[str, Any]) -> tuple[EventType, bool]:
    with transaction.atomic():
        existing = _by_name(name).select_for_update().first()
        # A new instance: every field not in ``data`` takes its default, and ``is_example`` is
        # cleared (a type the founder wrote is theirs, named in texts whether sent or not).
        event_type = EventType(name=existing.name if existing else name)
        if existing is not None:
            event_type.created_at = existing.created_at
            event_type._state.adding = False  # its unique checks then skip the row it replaces
        for field in ENTRY_FIELDS[1:]:
            if field in data:
                setattr(event_type, field, data[field])
        event_type.full_clean()
        event_type.save(force_insert=existing is None, force_update=existing is not None)
        before = existing or EventType()
        # A new name un-parks its history (events stored while it was unregistered), and an
        # edit of what counts re-judges history: both are a reclassification on commit.
        if existing is None or any(getattr(before, f) != getattr(event_type, f) for f in CLASSIFICATION_FIELDS):
            classification_rules_changed()
    return event_type, existing is None


# --- Removing a type --------------------------------------------------------------------
# The fields a retired type keeps: what it is called. Every role and weight takes its default,
# so no text, condition or score reads it any more; its events stay stored and registered.
RETIRE_KEEPS = ("label", "description")

# Which of the names have any stored event (real, parked or excluded). No index leads with
# event_type for every row (the partial ones cover real and parked rows only), so this is one
# pass over ops_events for all the names asked about: a rare founder action, never a page read.
# A plain DISTINCT (not a correlated EXISTS over unnest, which Citus cannot plan).
_NAMES_WITH_EVENTS_SQL = """
SELECT DISTINCT e.event_type AS name FROM ops_events e WHERE e.event_type = ANY(%(names)s::text[])
"""


class EventTypeHasEvents(Exception):
    """The type's events are stored: deleting it would park its history; retire it instead."""


@cache
def example_event_type_names() -> frozenset[str]:
    """The example vocabulary seeded on a fresh install: the default vocabulary's names."""
    return frozenset(t.name for t in DEFAULT_VOCABULARY)


def event_type_names_with_events(names: Iterable[str]) -> set[str]:
    """Those of ``names`` (registry spellings) that any stored event carries."""
    names = list(names)
    if not names:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(_NAMES_WITH_EVENTS_SQL, {"names": names})
        return {row["name"] for row in rows_as_dicts(cursor)}


def event_type_delete(*, name: str, retire: bool = False) -> tuple[EventType, str] | None:
    """Remove the type ``name`` (any case). Returns (the type, "deleted" or "retired"), or
    None when no type has that name.

    A type no stored event carries is deleted. One whose events are stored raises
    ``EventTypeHasEvents`` unless ``retire``: then it stays registered (its history is kept
    and never parked) with every role and weight dropped (``RETIRE_KEEPS``), so nothing reads
    it any more; that edit is a registry edit like any other (history re-judged on commit).
    """
    with transaction.atomic():
        event_type = _by_name(name).select_for_update().first()
        if event_type is None:
            return None
        if not event_type_names_with_events([event_type.name]):
            event_type.delete()
            # This process's ingest stops resolving the name at once (others within its cache's
            # few seconds, REGISTRY_TTL_SECONDS): a later event of the name is parked. Safe before
            # the commit: were it rolled back, a name missing from the cache is reloaded when seen.
            _ingest_names_reload()
            return event_type, "deleted"
        if not retire:
            raise EventTypeHasEvents(event_type.name)
        kept = {field: getattr(event_type, field) for field in RETIRE_KEEPS}
        retired, _ = event_type_put(name=event_type.name, data=kept)
        return retired, "retired"


def example_event_types_unsent_delete() -> list[str]:
    """Delete every example type (``example_event_type_names``) no stored event carries: the
    founder's first tidy-up, so no text names a type the product never sent. Returns their
    names, sorted. A type the product did send is kept, whatever its name."""
    with transaction.atomic():
        examples = [t.name for t in _examples().select_for_update()]
        unsent = sorted(set(examples) - event_type_names_with_events(examples))
        EventType.objects.filter(name__in=unsent).delete()
        _ingest_names_reload()
    return unsent


def _ingest_names_reload() -> None:
    from events.ingestion.validation import (
        ingest_names,  # the ingest's cache; events.ingestion imports this app's rules
    )

    ingest_names(refresh=True)


def _examples() -> QuerySet[EventType]:
    return EventType.objects.filter(name__in=example_event_type_names())
