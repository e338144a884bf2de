"""One validated event on its way into ``ops_events``: what validation produces and the classifier,
the identities and the store read. Its own module, so that none of them imports the ingest service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class EventRow:
    """One validated event, ready for the set-based insert."""

    event_id: str  # canonical lower-case UUID text
    tenant_id: str
    user_id: str
    session_id: str
    event_type: str
    occurred_at: datetime
    metadata: dict[str, Any]
    metadata_json: str  # serialised once during validation; what the insert sends
    friction_signal: str
    is_real: bool = True
    exclusion_reason: str = ""
    # The type is not registered: stored, never counted (exclusion_reason "unregistered").
    parked: bool = False
    # ``occurred_at`` as the COPY sends it: the sender's own text when PostgreSQL reads it as the
    # same instant (``validation.UTC_TEXT_RE``), else "" and the store writes it out.
    occurred_text: str = ""
