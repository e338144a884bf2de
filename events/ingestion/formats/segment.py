"""Segment's HTTP Tracking API, for the Segment and RudderStack SDKs unchanged:
``POST /v1/batch``, ``/v1/track``, ``/v1/identify``, ``/v1/group``, ``/v1/page``,
``/v1/screen``, ``/v1/alias``.

The write key travels as Basic auth (``<key>:``) or as ``writeKey`` in the body; bodies
may be gzip (RudderStack's default). Limits as Segment documents them: 500 KB per
batch, 32 KB per message (measured on what the console stores of it, its metadata: properties,
traits and context; the ids beside them have their own limits). Mapping: ``userId`` (else ``anonymousId``) -> user,
``messageId`` -> event id (a non-UUID id becomes a stable UUIDv5), identify's ``anonymousId``
beside its ``userId`` and alias's ``previousId`` -> the same person (events/ingestion/identities.py), ``context.groupId``
(or a group call's ``groupId``) -> account, ``traits`` email and name -> the user's traits
(a group call's traits -> the account's name and properties), ``context.userAgent`` ->
``metadata.user_agent``, ``properties`` -> metadata (the context beside them, without what the row
holds in its columns). A track call's type is its ``event``;
the other calls are stored as ``$identify``, ``$group``, ``$page``, ``$screen``, ``$alias``
(parked until registered, like any name).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from events.ingestion.event_row import EventRow
from events.ingestion.formats.common import sdk_event_id, sdk_text, sdk_timestamp, traits_email, traits_name
from events.ingestion.gate import Answer, FormatLimits
from events.ingestion.identities import Identity
from events.ingestion.services import IngestReceipt, ValidatedBatch, batch_validated
from events.ingestion.validation import IngestError, RowMaker

SEGMENT_MAX_BATCH_BYTES = 500 * 1024
SEGMENT_MAX_MESSAGE_BYTES = 32 * 1024
SEGMENT_MAX_MESSAGES = 2_500  # 500 KB of the smallest useful messages
# The event type each non-track call is stored as.
CALL_EVENT_TYPES = {
    "identify": "$identify",
    "group": "$group",
    "page": "$page",
    "screen": "$screen",
    "alias": "$alias",
}
MESSAGE_TYPES = frozenset({"track", *CALL_EVENT_TYPES})


def _id_text(value: Any) -> str | None:
    """``sdk_text`` with the usual string read in place."""
    return value.strip() if value.__class__ is str else sdk_text(value)


@dataclass(slots=True)
class _Read:
    """One message as ``SegmentFormat._message`` reads it: its event's fields (``RowMaker.fields``'
    arguments), its identities, and the account it makes its user a member of ("" for none)."""

    event_id: str
    event_type: Any
    user_id: str
    tenant_id: str
    session_id: str
    occurred_at: Any
    metadata: dict[str, Any]
    identities: list[Identity]
    member: str


class SegmentFormat:
    """One endpoint of the Tracking API: ``call`` is the path's message type, or None for /v1/batch."""

    name = "segment"
    content_types = frozenset({"application/json", "text/plain"})
    parks_unregistered = True

    def __init__(self, call: str | None) -> None:
        self.call = call
        max_body = SEGMENT_MAX_BATCH_BYTES if call is None else SEGMENT_MAX_MESSAGE_BYTES
        self.limits = FormatLimits(
            max_body_bytes=max_body,
            max_items=SEGMENT_MAX_MESSAGES if call is None else 1,
            max_item_bytes=SEGMENT_MAX_MESSAGE_BYTES,
        )

    def payload_decode(self, body: bytes, *, content_type: str, query: Mapping[str, str]) -> bytes:
        return body

    def body_key(self, payload: Any) -> str | None:
        if isinstance(payload, dict) and isinstance(payload.get("writeKey"), str):
            return str(payload["writeKey"])
        return None

    def _messages(self, payload: Any) -> list[Any]:
        if not isinstance(payload, dict):
            raise IngestError('The body must be a JSON object (a message, or {"batch": [...]}).')
        if self.call is not None:
            return [payload]
        messages = payload.get("batch")
        if not isinstance(messages, list):
            raise IngestError("'batch' is required: an array of messages.")
        if not messages:
            raise IngestError("'batch' is empty: send at least one message.")
        if len(messages) > self.limits.max_items:
            raise IngestError(
                f"{len(messages)} messages in one batch; the limit is {self.limits.max_items}.", status=413
            )
        return messages

    def rows(self, payload: Any, maker: RowMaker) -> ValidatedBatch:
        """Each message read once into its row (``maker.fields``), its identities kept when its
        event is valid."""
        rows: list[EventRow] = []
        rejected: list[dict[str, Any]] = []
        identities: list[Identity] = []
        members: dict[str, str] = {}  # user -> account already recorded by this request
        # Context sent once for a whole batch applies to each of its messages (RudderStack may).
        batch_context = payload.get("context") if isinstance(payload, dict) and self.call is None else None
        if not isinstance(batch_context, dict) or not batch_context:
            batch_context = None
        for index, message in enumerate(self._messages(payload)):
            read = self._message(message, batch_context=batch_context, members=members)
            if isinstance(read, dict):  # why it cannot be an event
                given = message.get("messageId") if isinstance(message, dict) else None
                rejected.append({"index": index, "event_id": given if isinstance(given, str) else None, "errors": read})
                continue
            row, errors = maker.fields(
                event_id=read.event_id,
                event_type=read.event_type,
                user_id=read.user_id,
                tenant_id=read.tenant_id,
                session_id=read.session_id,
                occurred_at=read.occurred_at,
                metadata=read.metadata,
            )
            if row is None:
                rejected.append({"index": index, "event_id": read.event_id, "errors": errors})
                continue
            rows.append(row)
            if read.identities:
                identities += read.identities
            if read.member:
                members[read.user_id] = read.member
        return batch_validated(maker, rows, rejected, identities)

    def _message(
        self, message: Any, *, batch_context: dict[str, Any] | None, members: dict[str, str]
    ) -> _Read | dict[str, list[str]]:
        """The message's event fields (``RowMaker.fields``' arguments), its identities and the
        account it makes its user a member of ("" for none); or, for a message that cannot be an
        event, why (its receipt's errors). Each field is read once, and checked as it is read."""
        if message.__class__ is not dict and not isinstance(message, dict):
            return {"non_field_errors": ["Each message must be a JSON object."]}
        get = message.get
        call = self.call or get("type")
        if call.__class__ is not str or call not in MESSAGE_TYPES:
            return {"type": [f"Must be one of {', '.join(sorted(MESSAGE_TYPES))}."]}
        if call == "track" and (not isinstance(get("event"), str) or not message["event"]):
            return {"event": ["Required on a track call: the event name."]}
        if call == "group" and not sdk_text(get("groupId")):
            return {"groupId": ["Required on a group call."]}
        given_user = _id_text(get("userId"))
        user_id = given_user or _id_text(get("anonymousId")) or ""
        if not user_id:
            return {"userId": ["Give userId or anonymousId."]}
        context, properties, traits = get("context"), get("properties"), get("traits")
        for name, value in (("properties", properties), ("traits", traits), ("context", context)):
            if value is not None and value.__class__ is not dict and not isinstance(value, dict):
                return {name: ["Must be an object."]}
        context = context or {}
        if batch_context is not None:
            context = {**batch_context, **context}
        properties = properties or {}
        traits = traits or {}
        context_traits = context.get("traits")
        if not isinstance(context_traits, dict):
            context_traits = {}
        tenant_id = _id_text(context.get("groupId")) or ""
        identities: list[Identity] = []
        member = ""
        person_traits = {**context_traits, **traits} if call == "identify" else context_traits
        if call == "group":
            tenant_id = sdk_text(get("groupId")) or ""
            identities.append(
                Identity(
                    user_id=user_id, tenant_id=tenant_id, account_name=traits_name(traits), account_properties=traits
                )
            )
        elif user_id and tenant_id and members.get(user_id) != tenant_id:
            # Once per user and account in a request: the batch's messages repeat their user's group.
            member = tenant_id
            identities.append(Identity(user_id=user_id, tenant_id=tenant_id))
        # The anonymous id a visitor had before logging in is the same person as the user id:
        # analytics.js sends both on identify, and alias names the previous id outright.
        previous_id = ""
        if call == "identify" and given_user:
            previous_id = sdk_text(get("anonymousId")) or ""
        elif call == "alias":
            previous_id = sdk_text(get("previousId")) or ""
        if previous_id and user_id and previous_id != user_id:
            identities.append(Identity(user_id=user_id, previous_id=previous_id))
        email = traits_email(person_traits) if person_traits else None
        if user_id and person_traits:
            identities.append(
                Identity(user_id=user_id, email=email, name=traits_name(person_traits), traits=person_traits)
            )
        metadata: dict[str, Any] = dict(properties)
        # Traits and context always travel in the metadata (so its validation covers what the
        # identities take from them); "$traits"/"$context" when a property has the plain name.
        if traits:
            metadata["traits" if "traits" not in properties else "$traits"] = traits
        session_id = _id_text(context.get("sessionId")) or ""
        user_agent = context.get("userAgent")
        moved = user_agent.__class__ is str and "user_agent" not in metadata
        if "groupId" in context or "sessionId" in context or moved:
            context = _context_stored(context, tenant_id=tenant_id, session_id=session_id, user_agent_moved=moved)
        if context:
            metadata["context" if "context" not in properties else "$context"] = context
        if moved:
            metadata["user_agent"] = user_agent
        if email:
            metadata.setdefault("email", email)
        if call in ("page", "screen") and isinstance(get("name"), str):
            metadata.setdefault("name", message["name"])
        if call == "alias" and sdk_text(get("previousId")):
            metadata.setdefault("previous_id", sdk_text(get("previousId")))
        # Positional, in _Read's field order (keywords cost a message more than the fields' reading).
        return _Read(
            sdk_event_id(get("messageId"), source="segment", message=message),
            message["event"] if call == "track" else CALL_EVENT_TYPES[call],
            user_id,
            tenant_id,
            session_id,
            sdk_timestamp(get("timestamp") or get("originalTimestamp")),
            metadata,
            identities,
            member,
        )

    def answer(self, receipt: IngestReceipt) -> Answer:
        if receipt.rejected and not receipt.accepted and not receipt.duplicates:
            message = "Every message was rejected; see 'rejected'."
            return Answer(400, {"code": "invalid_request", "message": message, "detail": message, **receipt.as_dict()})
        return Answer(200, {"success": True, **receipt.as_dict()})

    def refusal(self, error: IngestError) -> Answer:
        # RudderStack's SDK reads "code" and "message" from every error answer (and crashes without them).
        code = {401: "unauthorized", 403: "forbidden", 413: "payload_too_large", 429: "rate_limited"}
        return Answer(
            error.status,
            {"code": code.get(error.status, "invalid_request"), "message": error.message, "detail": error.message},
        )


def _context_stored(
    context: dict[str, Any], *, tenant_id: str, session_id: str, user_agent_moved: bool
) -> dict[str, Any]:
    """The context as stored: without what the row holds elsewhere, ``groupId`` and ``sessionId`` when
    the account and session columns hold their very values, ``userAgent`` when it moved to the
    metadata's ``user_agent`` (docs/ARCHITECTURE.md, "What an SDK event stores")."""
    stored = context.copy()
    if tenant_id and stored.get("groupId") == tenant_id:
        del stored["groupId"]
    if session_id and stored.get("sessionId") == session_id:
        del stored["sessionId"]
    if user_agent_moved:
        del stored["userAgent"]
    return stored


SEGMENT_BATCH = SegmentFormat(None)
SEGMENT_CALLS = {call: SegmentFormat(call) for call in MESSAGE_TYPES}
