"""The OpenAPI description of every ingest body and answer, field by field.

Written as JSON Schema (drf-spectacular takes raw schema dicts) because the bodies are
parsed by the gate and the format adapters, not by serializers. The limits come from the
same constants the code enforces, so the schema cannot drift from what is accepted.
"""

from __future__ import annotations

from typing import Any

from events.ingestion.formats.posthog import POSTHOG_MAX_EVENTS
from events.ingestion.formats.segment import MESSAGE_TYPES, SEGMENT_MAX_MESSAGES
from events.ingestion.validation import MAX_LENGTHS
from events.models import EVENT_TYPE_NAME_MAX

_TEXT_ID = {"type": "string", "maxLength": MAX_LENGTHS["user_id"]}
# Not blank: ids are stripped, and a blank one names nobody.
_NAMED_ID = {**_TEXT_ID, "minLength": 1, "pattern": r"\S"}
_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": EVENT_TYPE_NAME_MAX,
    # Printable, no leading or trailing space (control characters are refused).
    "pattern": r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$",
    "description": "The event type as the product sends it (1-64 printable characters; matched "
    "case-insensitively against the registry).",
}
_OBJECT = {"type": "object", "additionalProperties": True}
_TIME = {"type": "string", "format": "date-time", "description": "ISO 8601 with a UTC offset; defaults to now."}

NATIVE_EVENT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["event_type"],
    "properties": {
        "event_id": {"type": "string", "format": "uuid", "description": "Makes a resend idempotent."},
        "tenant_id": {"type": "string", "maxLength": MAX_LENGTHS["tenant_id"], "description": "The account."},
        "user_id": {**_TEXT_ID, "description": "The user; user_id or tenant_id is required."},
        "session_id": {"type": "string", "maxLength": MAX_LENGTHS["session_id"]},
        "event_type": _NAME,
        "occurred_at": {**_TIME, "description": "ISO 8601 with offset, at most 5 minutes ahead; defaults to now."},
        "metadata": {**_OBJECT, "description": "At most 64 KiB; user_agent and email classify the event."},
    },
}
NATIVE_BODY: dict[str, Any] = {
    "oneOf": [
        NATIVE_EVENT,
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["events"],
            "properties": {"events": {"type": "array", "minItems": 1, "maxItems": 1000, "items": NATIVE_EVENT}},
        },
    ]
}
INTERACTION_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["user_id", "interaction_type"],
    "properties": {
        "user_id": {**_TEXT_ID, "minLength": 1},
        "interaction_type": {
            "type": "string",
            "minLength": 1,
            "maxLength": EVENT_TYPE_NAME_MAX,
            "description": "signup, login, coach_call, agent_run, decision, feedback (the registry type with "
            "that north-star role), or a registered type name.",
        },
        "tenant_id": {"type": "string", "maxLength": MAX_LENGTHS["tenant_id"]},
        "occurred_at": _TIME,
        "event_id": {"type": "string", "format": "uuid"},
        "metadata": _OBJECT,
    },
}

POSTHOG_EVENT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": True,
    "required": ["event", "distinct_id"],
    "properties": {
        "event": _NAME,
        "distinct_id": {"oneOf": [_NAMED_ID, {"type": "integer"}], "description": "The user."},
        "uuid": {"type": "string", "format": "uuid", "description": "The event id (resends dedupe)."},
        "timestamp": _TIME,
        "offset": {"type": "integer", "minimum": 0, "description": "Milliseconds before the request (posthog-js)."},
        "properties": {
            **_OBJECT,
            "description": "Stored as metadata (at most 1 MiB). $groups.<INGEST_ACCOUNT_GROUP_TYPE> is the "
            "account, $session_id the session, $raw_user_agent the user agent, $set/$set_once the user's traits.",
        },
        "$set": _OBJECT,
        "$set_once": _OBJECT,
        "api_key": {"type": "string", "description": "The ingest key (or send it as a Bearer token)."},
    },
}
POSTHOG_BODY: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "additionalProperties": True,
            "required": ["batch"],
            "properties": {
                "api_key": {"type": "string", "description": "The ingest key (or send it as a Bearer token)."},
                "batch": {"type": "array", "minItems": 1, "maxItems": POSTHOG_MAX_EVENTS, "items": POSTHOG_EVENT},
                "historical_migration": {"type": "boolean"},
                "sent_at": {"type": "string"},
            },
        },
        POSTHOG_EVENT,
    ],
    "description": "At most 20 MiB uncompressed; JSON, gzip, or posthog-js's form/base64 variants.",
}


def segment_message(call: str | None) -> dict[str, Any]:
    """A Tracking API message; ``call`` is the endpoint's type (None: the message says it)."""
    required = ["type"] if call is None else []
    if call == "track":
        required.append("event")
    if call == "group":
        required.append("groupId")
    return {
        "type": "object",
        "additionalProperties": True,
        **({"required": required} if required else {}),
        "anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}],
        "description": "userId or anonymousId is required; at most 32 KB.",
        "properties": {
            "type": {"type": "string", "enum": sorted(MESSAGE_TYPES)},
            "userId": {"oneOf": [_NAMED_ID, {"type": "integer"}]},
            "anonymousId": {"oneOf": [_NAMED_ID, {"type": "integer"}]},
            "event": {**_NAME, "description": "A track call's event name."},
            "messageId": {"type": "string", "description": "The event id (a non-UUID becomes a stable UUIDv5)."},
            "timestamp": _TIME,
            "originalTimestamp": _TIME,
            "properties": _OBJECT,
            "traits": {**_OBJECT, "description": "email and name become the user's (or a group's) traits."},
            "groupId": {
                "type": "string",
                "maxLength": MAX_LENGTHS["tenant_id"],
                "pattern": r"\S",
                "description": "The account.",
            },
            "previousId": {"type": "string"},
            "name": {"type": "string"},
            "context": {
                "type": "object",
                "additionalProperties": True,
                "properties": {
                    "groupId": {"type": "string", "maxLength": MAX_LENGTHS["tenant_id"]},
                    "userAgent": {"type": "string"},
                    "traits": _OBJECT,
                    "sessionId": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                },
            },
            "writeKey": {"type": "string", "description": "The ingest key (or Basic auth, or a Bearer token)."},
            "integrations": _OBJECT,
            "sentAt": {"type": "string"},
        },
    }


SEGMENT_BATCH_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": True,
    "required": ["batch"],
    "description": "At most 500 KB uncompressed (gzip accepted).",
    "properties": {
        "batch": {"type": "array", "minItems": 1, "maxItems": SEGMENT_MAX_MESSAGES, "items": segment_message(None)},
        "writeKey": {"type": "string", "description": "The ingest key (or Basic auth, or a Bearer token)."},
        "sentAt": {"type": "string"},
        "context": _OBJECT,
    },
}

_REJECTED = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["index", "errors"],
        "properties": {
            "index": {"type": "integer"},
            "event_id": {"type": "string", "nullable": True},
            "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        },
    },
}
_RECEIPT_FIELDS = {
    "accepted": {"type": "integer", "description": "Events stored by this request."},
    "duplicates": {"type": "integer", "description": "Events already stored (same id); nothing new written."},
    "rejected": _REJECTED,
    "parked": {
        "type": "integer",
        "description": "Of the valid events, those of unregistered types (kept, not counted).",
    },
}


def _sdk_answer(**own: dict[str, Any]) -> dict[str, Any]:
    """An SDK endpoint's answer: the fields that SDK expects (each one required), then the receipt's counts."""
    return {"type": "object", "required": list(own), "properties": {**own, **_RECEIPT_FIELDS}}


def _text() -> dict[str, Any]:
    return {"type": "string"}


POSTHOG_OK = _sdk_answer(status={"type": "integer", "enum": [1]})
POSTHOG_ERROR = _sdk_answer(type=_text(), code=_text(), detail=_text())
SEGMENT_OK = _sdk_answer(success={"type": "boolean"})
SEGMENT_ERROR = _sdk_answer(code=_text(), message=_text(), detail=_text())
