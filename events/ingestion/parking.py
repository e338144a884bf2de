"""Reads of parked events: the names the product sends that the registry does not know yet.

An event whose type is not registered is stored with ``exclusion_reason = 'unregistered'``
(events/classification.py, rule 0): kept in ops_events, never counted. Registering the
name (admin, or ``PUT /ops/event-types/{name}``) changes the rules fingerprint, so the next
classification pass re-applies the rules to history, adopts the registry's spelling and
rebuilds the touched tenants' rollups: the parked history counts from that recompute.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from core.flavour import flavour
from core.rows import row_as_dict, rows_as_dicts

# Uses ops_events_parked (partial on exclusion_reason = 'unregistered', (event_type, occurred_at)):
# the aggregate reads only parked rows, and each example is one backward probe of the same index.
_UNREGISTERED_WITH_EXAMPLES_SQL = """
SELECT p.event_type, p.events, p.first_seen, p.last_seen,
       ex.event_id, ex.user_id, ex.tenant_id, ex.occurred_at, ex.metadata
FROM (SELECT event_type, count(*) AS events, min(occurred_at) AS first_seen, max(occurred_at) AS last_seen
      FROM ops_events WHERE exclusion_reason = 'unregistered'
      GROUP BY event_type) p
CROSS JOIN LATERAL (
    SELECT e.event_id::text AS event_id, e.user_id, e.tenant_id, e.occurred_at, e.metadata
    FROM ops_events e
    WHERE e.exclusion_reason = 'unregistered' AND e.event_type = p.event_type
    ORDER BY e.occurred_at DESC LIMIT 1
) ex
"""
# Citus cannot push that lateral probe to the shards: the aggregate, then one probe per name there.
_UNREGISTERED_SQL = """
SELECT event_type, count(*) AS events, min(occurred_at) AS first_seen, max(occurred_at) AS last_seen
FROM ops_events WHERE exclusion_reason = 'unregistered'
GROUP BY event_type
"""
_EXAMPLE_SQL = """
SELECT e.event_id::text AS event_id, e.user_id, e.tenant_id, e.occurred_at, e.metadata
FROM ops_events e
WHERE e.exclusion_reason = 'unregistered' AND e.event_type = %(name)s
ORDER BY e.occurred_at DESC LIMIT 1
"""


@dataclass(frozen=True)
class UnregisteredName:
    name: str
    events: int
    first_seen: datetime
    last_seen: datetime
    example: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "events": self.events,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "example": self.example,
        }


def unregistered_event_types(*, limit: int = 100) -> list[UnregisteredName]:
    """Parked names, most events first. Spellings that differ only in case are one name
    (the registry matches case-insensitively); the most used spelling names it."""
    with connection.cursor() as cursor:
        one_statement = flavour().probes_in_one_statement
        cursor.execute(_UNREGISTERED_WITH_EXAMPLES_SQL if one_statement else _UNREGISTERED_SQL)
        rows = rows_as_dicts(cursor)
        for row in [] if one_statement else rows:
            cursor.execute(_EXAMPLE_SQL, {"name": row["event_type"]})
            row.update(row_as_dict(cursor))
    merged: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (-r["events"], r["event_type"])):
        example = {
            "event_id": row["event_id"],
            "event_type": row["event_type"],
            "user_id": row["user_id"],
            "tenant_id": row["tenant_id"],
            "occurred_at": row["occurred_at"].isoformat(),
            # Raw cursors get jsonb as text (Django registers a text loader for JSONField).
            "metadata": json.loads(row["metadata"]) if isinstance(row["metadata"], str) else row["metadata"],
        }
        key = row["event_type"].lower()
        seen = merged.get(key)
        if seen is None:
            merged[key] = {**row, "example": example}
            continue
        seen["events"] += row["events"]
        seen["first_seen"] = min(seen["first_seen"], row["first_seen"])
        if row["last_seen"] > seen["last_seen"]:
            seen["last_seen"], seen["example"] = row["last_seen"], example
    names = [
        UnregisteredName(
            name=m["event_type"],
            events=m["events"],
            first_seen=m["first_seen"],
            last_seen=m["last_seen"],
            example=m["example"],
        )
        for m in merged.values()
    ]
    names.sort(key=lambda n: (-n.events, n.name))
    return names[:limit]
