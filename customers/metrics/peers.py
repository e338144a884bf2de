"""Where an account's level of use stands among the founder's other customers.

Churn is often quiet: an account whose use was always thin never declines, so only a
comparison with the other accounts sees it. The reference is every customer with a real
event in the rollups' window: its active days and events over the last 28 days, sorted.
An account's level is the mean of its two mid-rank percentiles (0 = below every other
customer, 1 = above every other), None while fewer than PEERS_MIN customers exist.

The live engine measures the reference once per as-of day (write.py ``peer_levels_day``:
every later run of the day, a full rebuild included, reads the stored one, so an incremental
run and a rebuild on the same day compare with the same customers); the backtest measures it
on each as-of date from its private rollups (``peer_levels_measure``).

The same reference carries the day the console's record begins (``record_start``, its earliest event of any
account): an account already there in the record's first weeks was a customer before the console started
watching, so its first event says nothing of its age (quiet.py, ``early_days``).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import connection

from core.rows import rows_as_dicts, value_of
from customers.metrics.daily import SUMMARY_TABLE

# Fewer customers than this and "fewer than most of your customers" means nothing.
PEERS_MIN = 10
PEER_WINDOW_DAYS = 28

# One row per customer with a real event in the 90 days ending on d. Reads the day summaries'
# window (one row per tenant and day; the primary key (tenant_id, day) is not used: every row is).
PEER_LEVELS_SQL = f"""
SELECT count(*) FILTER (WHERE s.day > %(d)s::date - {PEER_WINDOW_DAYS} AND s.events > 0) AS active_days,
       COALESCE(sum(s.events) FILTER (WHERE s.day > %(d)s::date - {PEER_WINDOW_DAYS}), 0) AS events
FROM {SUMMARY_TABLE} s JOIN customers_tenant t ON t.tenant_id = s.tenant_id AND t.kind = 'customer'
WHERE s.day > %(d)s::date - 90 AND s.day <= %(d)s::date AND s.events > 0
GROUP BY s.tenant_id
"""
# The earliest event on record by the end of d, of any account. Reads every span row (no index serves a
# minimum over all tenants): once per as-of day live (stored with the levels), once per date in the backtest.
RECORD_START_SQL = """
SELECT min(first_at)::date AS record_start FROM ops_rollup_tenant_span WHERE first_at < %(d)s::date + 1
"""


@dataclass(frozen=True)
class PeerLevels:
    """The customers' 28-day active days and events on one as-of day, each sorted ascending."""

    as_of: date
    active_days: tuple[int, ...]
    events: tuple[int, ...]
    record_start: date | None = None  # the console's earliest event of any account (None: none, or not measured)

    @property
    def size(self) -> int:
        return len(self.active_days)

    def level(self, *, active_days: int, events: int) -> float | None:
        """The account's level among the customers (see the module docstring)."""
        if self.size < PEERS_MIN:
            return None
        return round((_mid_rank(self.active_days, active_days) + _mid_rank(self.events, events)) / 2, 4)

    def as_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "active_days": list(self.active_days),
            "events": list(self.events),
            "record_start": self.record_start.isoformat() if self.record_start else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PeerLevels:
        start = data.get("record_start")  # absent from a day stored before it was measured
        return cls(
            date.fromisoformat(data["as_of"]),
            tuple(data["active_days"]),
            tuple(data["events"]),
            date.fromisoformat(start) if start else None,
        )


def _mid_rank(ordered: tuple[int, ...], value: int) -> float:
    """The share of the reference below ``value``, ties counted half."""
    below = bisect.bisect_left(ordered, value)
    equal = bisect.bisect_right(ordered, value) - below
    return (below + equal / 2) / len(ordered)


def peer_levels_measure(*, as_of: date) -> PeerLevels:
    """The reference from the rollups as they are now (live, or the backtest's private copies)."""
    with connection.cursor() as cursor:
        cursor.execute(PEER_LEVELS_SQL, {"d": as_of})
        rows = rows_as_dicts(cursor)
        cursor.execute(RECORD_START_SQL, {"d": as_of})
        record_start = value_of(cursor, "record_start")
    return PeerLevels(
        as_of,
        tuple(sorted(int(r["active_days"]) for r in rows)),
        tuple(sorted(int(r["events"]) for r in rows)),
        record_start,
    )
