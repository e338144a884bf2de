"""What the SDK formats share: ids, timestamps and texts as the SDKs send them."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

# Fixed namespace of the console's derived event ids: the same SDK message id always becomes
# the same UUID, so a resend (or a second import of the same file) dedupes.
EVENT_ID_NAMESPACE = uuid.UUID("5b1f3a0e-6c1d-4e63-9a57-0c2f4f6b8d21")
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_CANONICAL_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# An ISO 8601 time that already carries its offset (the SDKs' usual form): passed on as is.
_HAS_OFFSET_RE = re.compile(r".*T.*(?:Z|[+-]\d\d(?::?\d\d)?)\Z", re.IGNORECASE)
_CANONICAL = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str).encode


def sdk_event_id(value: Any, *, source: str, message: dict[str, Any]) -> str:
    """The event id for an SDK message: its own id when it is a UUID, else a UUIDv5 of it
    (``source`` keeps two SDKs' ids apart), else a UUIDv5 of the message's content."""
    if isinstance(value, str) and value:
        if _CANONICAL_UUID_RE.fullmatch(value):
            return value  # the common case: no UUID object per event
        if _UUID_RE.fullmatch(value):
            return str(uuid.UUID(value))
        return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}:{value}"))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}:{value}"))
    content = {k: v for k, v in message.items() if k not in ("sentAt", "sent_at", "api_key", "writeKey")}
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}:content:{_CANONICAL(content)}"))


def sdk_text(value: Any) -> str | None:
    """An id as text: SDKs send strings, sometimes numbers; anything else is None."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def sdk_timestamp(value: Any) -> Any:
    """An SDK timestamp as the native validator takes it: ISO 8601 with an offset.

    A time without an offset is UTC (what the SDKs mean); anything unparseable is passed
    on unchanged so the validator rejects it with its own message.
    """
    if not isinstance(value, str) or not value:
        return value if value else None
    if value.endswith(("Z", "+00:00")) or _HAS_OFFSET_RE.match(value):  # the endswith: what SDKs send
        return value  # the validator parses it once
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC).isoformat()
    return value


def offset_timestamp(now: datetime, offset_ms: Any) -> str | None:
    """posthog-js may send ``offset`` (milliseconds before the request) instead of a timestamp."""
    if isinstance(offset_ms, int | float) and not isinstance(offset_ms, bool) and 0 <= offset_ms < 10**12:
        return (now - timedelta(milliseconds=offset_ms)).isoformat()
    return None


def traits_email(traits: Any) -> str | None:
    if isinstance(traits, dict) and isinstance(traits.get("email"), str) and "@" in traits["email"]:
        return str(traits["email"]).strip()
    return None


def traits_name(traits: Any) -> str | None:
    if not isinstance(traits, dict):
        return None
    name = traits.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    parts = [traits.get(k) for k in ("firstName", "lastName", "first_name", "last_name")]
    joined = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return joined or None
