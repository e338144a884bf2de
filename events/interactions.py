"""The north star's recording endpoint, ``POST /metrics/interaction``: one interaction by its
name in the north-star document (docs/source/), stored through ``events_ingest`` like any event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.models import ApiKey
from events.ingestion.services import IngestReceipt, events_ingest
from events.ingestion.validation import IngestError, ingest_names
from events.models import NorthStarRole

# The north star's interaction names, mapped to north-star roles; the registry says which type plays
# each role (EventType.north_star_role). Any registered type name is accepted too.
INTERACTION_ROLES: dict[str, str] = {
    "signup": NorthStarRole.SIGNUP,
    "login": NorthStarRole.LOGIN,
    "coach_call": NorthStarRole.CORE_ACTION,
    "agent_run": NorthStarRole.CORE_ACTION,
    "decision": NorthStarRole.DECISION,
    "feedback": NorthStarRole.FEEDBACK,
}
INTERACTION_FIELDS = frozenset({"user_id", "interaction_type", "metadata", "tenant_id", "occurred_at", "event_id"})


def interaction_record(*, payload: Any, source: ApiKey | None, now: datetime | None = None) -> IngestReceipt:
    """Record one interaction (``POST /metrics/interaction``) through ``events_ingest``, so it
    is validated, classified and stored exactly like any event.

    The interaction's name is kept in ``metadata.interaction_type`` (unless the sender set one),
    because several names map to one role (coach_call and agent_run are both core_action).
    Raises IngestError (400) with per-field errors; nothing is stored then.
    """
    if not isinstance(payload, dict):
        raise IngestError("The body must be one JSON object with user_id and interaction_type.")
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(payload) - INTERACTION_FIELDS)
    if unknown:
        errors["non_field_errors"] = [
            f"Unknown field(s): {', '.join(str(k)[:40] for k in unknown)}. "
            f"Allowed: {', '.join(sorted(INTERACTION_FIELDS))}."
        ]
    user_id = payload.get("user_id")
    if not isinstance(user_id, str) or not user_id.strip():
        errors["user_id"] = ["Required: the id of the user who interacted (a non-empty string)."]
    interaction_type = payload.get("interaction_type")
    event_type = ""
    if not isinstance(interaction_type, str) or not interaction_type:
        errors["interaction_type"] = [
            f"Required: one of {', '.join(INTERACTION_ROLES)}, or a registered event type name."
        ]
    elif interaction_type in INTERACTION_ROLES:
        role = INTERACTION_ROLES[interaction_type]
        registry = ingest_names()
        event_type = registry.role_types.get(role) or ingest_names(refresh=True).role_types.get(role, "")
        if not event_type:
            errors["interaction_type"] = [
                f"No event type plays the north-star role '{role}'; set it on one in the event type registry."
            ]
    else:
        event_type = interaction_type
    if errors:
        raise InteractionError(errors)
    item: dict[str, Any] = {k: payload[k] for k in ("tenant_id", "occurred_at", "event_id") if k in payload}
    item["user_id"] = user_id
    item["event_type"] = event_type
    metadata = payload.get("metadata")
    if isinstance(metadata, dict) and interaction_type in INTERACTION_ROLES:
        metadata = {"interaction_type": interaction_type, **metadata}
    elif metadata is None and interaction_type in INTERACTION_ROLES:
        metadata = {"interaction_type": interaction_type}
    item["metadata"] = metadata
    receipt = events_ingest(items=[item], source=source, now=now, park_unregistered=False)
    if receipt.rejected:
        field_errors = receipt.rejected[0]["errors"]
        if "event_type" in field_errors:
            field_errors["interaction_type"] = field_errors.pop("event_type")
        raise InteractionError(field_errors)
    return receipt


class InteractionError(IngestError):
    """A rejected interaction, with the reason per field."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("The interaction was not recorded; see 'errors'.", status=400)
        self.errors = errors
