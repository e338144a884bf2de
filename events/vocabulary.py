"""Reads for the Vocabulary page: which event type names the product actually sends, against the registry.

The founder's first morning: every name seen in ``ops_events`` over the last
``VOCABULARY_DAYS`` days with its count and first/last time, whether the registry
knows it (in any case) and what role it plays, plus the registered types not seen.
Today links to the page while the product's events do not fit the registry
(``vocabulary_mismatch``, which reads index probes only: Today is opened every morning,
the Vocabulary page rarely).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib.admin.utils import quote
from django.core.cache import cache
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from core.flavour import flavour
from core.rows import row_as_dict, rows_as_dicts
from events.models import EventType
from events.registry import Registry, event_type_registry, example_event_type_names

VOCABULARY_DAYS = 30
# The names seen are an aggregate over a month of events: each process reuses it this long
# (a count a minute old is fine; the registry half of the page is always read fresh).
VOCABULARY_CACHE_SECONDS = 60
_CACHE_KEY = "events:vocabulary:seen"

# One row per name sent in the window. Relies on the BRIN index ops_events_occurred_brin: the
# range predicate on occurred_at reads only the block ranges of the last 30 days, not the table.
_SEEN_SQL = """
SELECT event_type AS name, count(*) AS events, min(occurred_at) AS first_seen, max(occurred_at) AS last_seen
FROM ops_events
WHERE occurred_at >= %(since)s
GROUP BY event_type
ORDER BY count(*) DESC, event_type
"""


@dataclass(frozen=True)
class SeenName:
    name: str
    events: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class VocabularyRow:
    """A name the product sent (``seen``), or a registered type it did not send (``seen`` None)."""

    name: str
    seen: SeenName | None
    event_type: EventType | None

    @property
    def registered(self) -> bool:
        return self.event_type is not None

    @property
    def admin_url(self) -> str:
        """Where to edit the type, or to register the name (the add form prefilled with it)."""
        if self.event_type is not None:
            return reverse("admin:events_eventtype_change", args=[quote(self.event_type.name)])
        return reverse("admin:events_eventtype_add") + "?" + urlencode({"name": self.name})

    @property
    def roles(self) -> list[str]:
        """The type's roles and weights as short phrases ("core value", "blocked, weight 2")."""
        t = self.event_type
        if t is None:
            return []
        out = []
        if t.core_value:
            out.append("core value")
        if t.friction_signal:
            out.append(f"{t.friction_signal}, friction weight {t.friction_weight:g}")
        elif t.friction_weight:
            out.append(f"friction weight {t.friction_weight:g}")
        if t.engagement_weight:
            out.append(f"engagement weight {t.engagement_weight:g}")
        if t.north_star_role:
            out.append(f"north star: {t.north_star_role}")
        if t.page_view:
            out.append("page view")
        if t.counts_as_real_interaction:
            out.append("counts as a real interaction")
        return out


@dataclass(frozen=True)
class Vocabulary:
    since: datetime
    seen: list[VocabularyRow]
    not_seen: list[VocabularyRow]

    @property
    def unregistered(self) -> list[VocabularyRow]:
        return [row for row in self.seen if not row.registered]

    @property
    def examples_not_seen(self) -> list[VocabularyRow]:
        """The example types (seeded on a fresh install) not sent in the window: what the page
        offers to remove (the removal itself keeps any that history holds)."""
        examples = example_event_type_names()
        return [row for row in self.not_seen if row.name in examples]

    @property
    def core_value_seen(self) -> bool:
        return any(row.event_type is not None and row.event_type.core_value for row in self.seen)


def seen_names(*, now: datetime | None = None) -> list[SeenName]:
    """Every name in ops_events over the window, busiest first (cached VOCABULARY_CACHE_SECONDS)."""
    cached = cache.get(_CACHE_KEY)
    if cached is not None and now is None:
        return list(cached)
    since = (now or timezone.now()) - timedelta(days=VOCABULARY_DAYS)
    with connection.cursor() as cursor:
        cursor.execute(_SEEN_SQL, {"since": since})
        names = [SeenName(**row) for row in rows_as_dicts(cursor)]
    if now is None:
        cache.set(_CACHE_KEY, names, timeout=VOCABULARY_CACHE_SECONDS)
    return names


def vocabulary(*, now: datetime | None = None, registry: Registry | None = None) -> Vocabulary:
    """The names seen against the registry (names matched in any case). Two queries."""
    registry = registry or event_type_registry()
    seen = seen_names(now=now)
    rows = [VocabularyRow(name=s.name, seen=s, event_type=registry.find(s.name)) for s in seen]
    seen_lower = {s.name.lower() for s in seen}
    not_seen = [
        VocabularyRow(name=t.name, seen=None, event_type=t) for t in registry.types if t.name.lower() not in seen_lower
    ]
    not_seen.sort(key=lambda r: r.name.lower())
    return Vocabulary(since=(now or timezone.now()) - timedelta(days=VOCABULARY_DAYS), seen=rows, not_seen=not_seen)


def vocabulary_mismatch_reasons(found: Vocabulary) -> list[str]:
    """Why the product's events do not fit the registry yet, in words (empty: they fit, or
    nothing has arrived)."""
    if not found.seen:
        return []
    reasons = []
    if found.unregistered:
        names = ", ".join(row.name for row in found.unregistered[:3])
        more = f" and {len(found.unregistered) - 3} more" if len(found.unregistered) > 3 else ""
        reasons.append(f"{len(found.unregistered)} event name(s) arriving that are not registered ({names}{more})")
    if not found.core_value_seen:
        reasons.append(f"no type marked as your core value has been seen in {VOCABULARY_DAYS} days")
    return reasons


# Each distinct name among some events with its last time: a loose index scan (one top-1 probe
# per name to find the next name, one for its last time), so its cost follows the number of names,
# not of events. Today reads it over two partial indexes, each named by its rows' predicate:
# ops_events_real_type_time (real, attributed events) and ops_events_parked (parked events).
_REAL = "{o}is_real AND NOT ({o}user_id = '')"  # Uses index: ops_events_real_type_time
_PARKED = "{o}exclusion_reason = 'unregistered'"  # Uses index: ops_events_parked


def _names_last_seen_sql(rows: str) -> str:
    where, where_o = rows.format(o=""), rows.format(o="o.")
    return f"""
WITH RECURSIVE names AS (
    (SELECT event_type FROM ops_events WHERE {where} ORDER BY event_type LIMIT 1)
    UNION ALL
    SELECT (SELECT o.event_type FROM ops_events o
            WHERE o.event_type > names.event_type AND {where_o}
            ORDER BY o.event_type LIMIT 1)
    FROM names WHERE names.event_type IS NOT NULL
)
SELECT n.event_type AS name,
       (SELECT o.occurred_at FROM ops_events o
        WHERE o.event_type = n.event_type AND {where_o}
        ORDER BY o.occurred_at DESC LIMIT 1) AS last_seen
FROM names n
WHERE n.event_type IS NOT NULL
"""


# The same loose index scan one probe at a time, for Citus (no recursive CTE over a distributed
# table): each step is a top-1 probe of the partial index on every shard.
def _next_name_sql(rows: str) -> str:
    return f"SELECT min(event_type) AS name FROM ops_events WHERE event_type > %(after)s AND {rows.format(o='')}"


def _name_last_seen_sql(rows: str) -> str:
    return f"SELECT max(occurred_at) AS last_seen FROM ops_events WHERE event_type = %(name)s AND {rows.format(o='')}"


def _names_last_seen(cursor: Any, rows: str = _REAL) -> list[tuple[str, datetime | None]]:
    if flavour().probes_in_one_statement:
        cursor.execute(_names_last_seen_sql(rows))
        return [(row["name"], row["last_seen"]) for row in rows_as_dicts(cursor)]
    found: list[tuple[str, datetime | None]] = []
    after = ""
    while True:
        cursor.execute(_next_name_sql(rows), {"after": after})
        name = row_as_dict(cursor)["name"]
        if name is None:
            return found
        cursor.execute(_name_last_seen_sql(rows), {"name": name})
        found.append((name, row_as_dict(cursor)["last_seen"]))
        after = name


def vocabulary_mismatch(*, now: datetime | None = None) -> list[str]:
    """What Today's link to the Vocabulary page says: ``vocabulary_mismatch_reasons`` over the
    names real users sent in the window and the names parked in it. Two cheap queries (the registry, and index probes per
    name: _NAMES_LAST_SEEN_SQL), never a scan of a month of events on every morning's page."""
    since = (now or timezone.now()) - timedelta(days=VOCABULARY_DAYS)
    registry = event_type_registry()
    with connection.cursor() as cursor:
        # Real names, then parked ones (never real: the names a product sends before describing them).
        recent = [name for name, last_seen in _names_last_seen(cursor) if last_seen and last_seen >= since]
        recent += [name for name, last_seen in _names_last_seen(cursor, _PARKED) if last_seen and last_seen >= since]
    rows = [VocabularyRow(name=name, seen=None, event_type=registry.find(name)) for name in recent]
    return vocabulary_mismatch_reasons(Vocabulary(since=since, seen=rows, not_seen=[]))
