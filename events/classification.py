"""Real or not: decides ``is_real`` and ``exclusion_reason`` for incoming events.

This is the one function the rest of the system relies on for "does this
event come from a real user?". The north-star issue extends it with the rule
tables (internal users and domains, tenant flags, user-agent patterns,
single-page visits) and the reclassification of history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from events.models import ApiKey, ExclusionReason

if TYPE_CHECKING:
    from events.services import EventRow


def _flag(metadata: dict[str, object], name: str) -> bool:
    value = metadata.get(name)
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true", "yes"))


def classify_batch(rows: list[EventRow], *, source: ApiKey | None) -> None:
    """Set ``is_real`` and ``exclusion_reason`` on each row, in place."""
    automation = bool(source is not None and source.is_automation)
    for row in rows:
        reason = ""
        if automation:
            reason = ExclusionReason.AUTOMATION_CLIENT
        elif _flag(row.metadata, "test"):
            reason = ExclusionReason.TEST_TRAFFIC
        elif _flag(row.metadata, "demo"):
            reason = ExclusionReason.DEMO
        row.is_real = not reason
        row.exclusion_reason = reason
