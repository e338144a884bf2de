"""PostHog's capture API, for the PostHog SDKs unchanged: ``POST /batch/``, ``/capture/``,
``/e/`` and ``/i/v0/e/``.

Bodies: ``{"api_key": ..., "batch": [...]}`` (posthog-python, posthog-node), one event
with ``api_key``, or posthog-js's array of events whose ``properties.token`` is the key,
sent as JSON, gzip (``Content-Encoding: gzip``, or recognised by its magic bytes whatever the
content type says: posthog-js sends it as text/plain, with or without ``?compression=gzip-js``)
or a form field ``data`` (base64 with ``compression=base64``), by fetch or sendBeacon. The
project key (``properties.token``) is a credential and is never stored. Mapping: ``distinct_id`` -> user,
``uuid`` -> event id, ``timestamp`` (or ``offset``), ``properties`` -> metadata
(``$raw_user_agent`` -> ``user_agent``, ``$session_id`` -> session), ``$set``/``$set_once``
-> the user's traits (email and name), ``$groups[INGEST_ACCOUNT_GROUP_TYPE]`` -> account,
``$groupidentify`` of that group type -> the account's name and properties, ``$identify``'s
``$anon_distinct_id`` (and ``$create_alias``'s ``alias``) -> the same person as ``distinct_id``.
A property whose value the row holds in a column, and posthog-js's transport bookkeeping, are not
stored in the metadata (``_ALWAYS_UNSTORED`` and the properties beside it).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings

from events.ingestion.event_row import EventRow
from events.ingestion.formats.common import (
    offset_timestamp,
    sdk_event_id,
    sdk_text,
    sdk_timestamp,
    traits_email,
    traits_name,
)
from events.ingestion.gate import Answer, FormatLimits, body_inflate
from events.ingestion.identities import Identity
from events.ingestion.services import IngestReceipt, ValidatedBatch, batch_validated
from events.ingestion.validation import IngestError, RowMaker

# PostHog's capture service refuses bodies over 20 MB and events over 1 MB (uncompressed).
POSTHOG_MAX_BODY_BYTES = 20 * 1024 * 1024
POSTHOG_MAX_EVENT_BYTES = 1024 * 1024
POSTHOG_MAX_EVENTS = 20_000
FORM = "application/x-www-form-urlencoded"
GZIP_MAGIC = b"\x1f\x8b"
# posthog-js puts the project key in every event's properties: it is a credential, never stored.
KEY_PROPERTIES = ("token",)
# posthog-js's transport bookkeeping, which says nothing about the event: a random de-duplication
# token (the event's uuid is its id here) and its client-side rate limiter's remaining budget.
TRANSPORT_PROPERTIES = ("$insert_id", "$lib_rate_limit_remaining_tokens")
# Never stored; besides them, a property whose value the row holds in a column (distinct_id the
# user, $session_id the session, $groups of the account group type alone the account,
# $raw_user_agent the metadata's user_agent) is stored once, there (docs/ARCHITECTURE.md, "What an
# SDK event stores"; ``PostHogFormat.rows``).
_ALWAYS_UNSTORED = KEY_PROPERTIES + TRANSPORT_PROPERTIES


def _form_payload(body: bytes, query: Mapping[str, str]) -> bytes:
    """posthog-js's form body: ``data=<json or base64 json>``, maybe ``compression=base64``."""
    try:
        fields = parse_qs(body.decode("ascii"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError) as exc:
        raise IngestError("The form body must be 'data=<JSON or base64 JSON>'.") from exc
    data = (fields.get("data") or [""])[0]
    if not data:
        raise IngestError("The form body has no 'data' field: send data=<JSON or base64 JSON>.")
    compression = (fields.get("compression") or [query.get("compression", "")])[0]
    if compression == "base64" or not data.lstrip().startswith(("{", "[")):
        try:
            return base64.b64decode(data + "=" * (-len(data) % 4), validate=False)
        except (binascii.Error, ValueError) as exc:
            raise IngestError("The form field 'data' is neither JSON nor base64 JSON.") from exc
    return data.encode("utf-8")


class PostHogFormat:
    name = "posthog"
    content_types = frozenset({"application/json", "text/plain", FORM})
    parks_unregistered = True
    limits = FormatLimits(
        max_body_bytes=POSTHOG_MAX_BODY_BYTES, max_items=POSTHOG_MAX_EVENTS, max_item_bytes=POSTHOG_MAX_EVENT_BYTES
    )

    def payload_decode(self, body: bytes, *, content_type: str, query: Mapping[str, str]) -> bytes:
        compression = query.get("compression", "")
        # Recognised by its magic bytes: posthog-js sends gzip as text/plain, with or without
        # ?compression=gzip-js (its native CompressionStream path leaves the parameter out).
        if body[:2] == GZIP_MAGIC:
            body = body_inflate(body, encoding="gzip", max_bytes=self.limits.max_body_bytes)
        elif compression in ("gzip-js", "gzip"):
            raise IngestError(
                f"The body is not gzip data although the request says compression={compression}; "
                "send gzip, or leave the parameter out."
            )
        if content_type == FORM:
            return _form_payload(body, query)
        if compression == "base64" and body[:1] not in (b"{", b"["):
            try:
                return base64.b64decode(body, validate=False)
            except (binascii.Error, ValueError) as exc:
                raise IngestError("The body is not base64 JSON (compression=base64).") from exc
        return body

    def body_key(self, payload: Any) -> str | None:
        if isinstance(payload, dict):
            for key in ("api_key", "token"):
                if isinstance(payload.get(key), str):
                    return str(payload[key])
            first = payload.get("batch")
            payload = first if isinstance(first, list) else [payload]
        if isinstance(payload, list) and payload and isinstance(payload[0], dict):
            event = payload[0]
            properties = event.get("properties")
            for value in (event.get("api_key"), properties.get("token") if isinstance(properties, dict) else None):
                if isinstance(value, str):
                    return value
        return None

    def _messages(self, payload: Any) -> list[Any]:
        if isinstance(payload, dict) and "batch" in payload:
            messages = payload["batch"]
            if not isinstance(messages, list):
                raise IngestError("'batch' must be an array of events.")
        elif isinstance(payload, list):
            messages = payload
        elif isinstance(payload, dict) and "event" in payload:
            messages = [payload]
        else:
            raise IngestError('The body must be {"api_key": ..., "batch": [...]}, one event, or an array of events.')
        if not messages:
            raise IngestError("'batch' is empty: send at least one event.")
        if len(messages) > self.limits.max_items:
            raise IngestError(
                f"{len(messages)} events in one request; the limit is {self.limits.max_items}.", status=413
            )
        return messages

    def rows(self, payload: Any, maker: RowMaker) -> ValidatedBatch:
        """Each message read once into its row (``maker.fields``), its identities kept when its
        event is valid. The common message costs a few dict lookups: every branch below is for a
        key most messages lack, and the properties pass to the metadata as they are."""
        account_type = settings.INGEST_ACCOUNT_GROUP_TYPE
        now = maker.now
        make = maker.fields
        rows: list[EventRow] = []
        rejected: list[dict[str, Any]] = []
        identities: list[Identity] = []
        members: dict[str, str] = {}  # user -> account already recorded by this request
        for index, message in enumerate(self._messages(payload)):
            if message.__class__ is not dict:
                rejected.append(_refusal(index, message))  # type: ignore[arg-type]
                continue
            event: Any = message.get("event")
            properties = message.get("properties")
            if event.__class__ is not str or not event or (properties is not None and properties.__class__ is not dict):
                refusal = _refusal(index, message)
                if refusal is not None:
                    rejected.append(refusal)
                    continue
            if properties is None:
                properties = {}
            found: list[Identity] = []  # what this message says about people and accounts
            raw_user = message.get("distinct_id")
            if raw_user is None:
                raw_user = properties.get("distinct_id")
            user_id = raw_user.strip() if raw_user.__class__ is str else (sdk_text(raw_user) or "")
            groups = properties.get("$groups")
            tenant_id, member = "", False
            if event == "$groupidentify" or groups.__class__ is dict:
                tenant_id, member = _account(found, members, event=event, groups=groups, properties=properties,
                                             user_id=user_id, account_type=account_type)  # fmt: skip
            session = properties.get("$session_id")
            session_id = session.strip() if session.__class__ is str else (sdk_text(session) or "")
            user_agent = properties.get("$raw_user_agent")
            if user_agent.__class__ is not str or "user_agent" in properties:
                user_agent = None
            # Read before the properties are pared down: an id made from the message's content is the content as sent.
            event_id = sdk_event_id(message.get("uuid"), source="posthog", message=message)
            # The properties themselves, pared down in place (the parsed body is this request's alone, and
            # nothing reads what is removed after this): less what is not stored, the key and the
            # transport's bookkeeping always, a column's property when the row holds its very value.
            metadata = properties
            if metadata:
                for key in _ALWAYS_UNSTORED:
                    if key in metadata:
                        del metadata[key]
                if session is not None and session == session_id:
                    del metadata["$session_id"]
                if user_agent is not None:
                    del metadata["$raw_user_agent"]  # moved to user_agent below
                if groups.__class__ is dict and len(groups) == 1 and groups.get(account_type) == tenant_id != "":
                    del metadata["$groups"]
                if user_id and metadata.get("distinct_id") == user_id:
                    del metadata["distinct_id"]
            previous_id = ""
            if event == "$identify":
                previous_id = sdk_text(properties.get("$anon_distinct_id")) or ""
            elif event == "$create_alias":
                previous_id = sdk_text(properties.get("alias")) or ""
            if previous_id and user_id:
                found.append(Identity(user_id=user_id, previous_id=previous_id))
            if "$set" in message or "$set_once" in message or "$set" in properties or "$set_once" in properties:
                metadata = _person_traits(found, message, properties=properties, metadata=metadata, user_id=user_id)
            if user_agent is not None:
                metadata["user_agent"] = user_agent
            row, errors = make(
                event_id=event_id,
                event_type=event,
                user_id=user_id,
                tenant_id=tenant_id,
                session_id=session_id,
                occurred_at=sdk_timestamp(message.get("timestamp")) or offset_timestamp(now, message.get("offset")),
                metadata=metadata,
            )
            if row is None:
                rejected.append({"index": index, "event_id": event_id, "errors": errors})
                continue
            rows.append(row)
            if found:
                identities += found
            if member:
                members[user_id] = tenant_id
        return batch_validated(maker, rows, rejected, identities)

    def answer(self, receipt: IngestReceipt) -> Answer:
        body = {"status": 1, **receipt.as_dict()}
        if receipt.rejected and not receipt.accepted and not receipt.duplicates:
            return Answer(
                400,
                {
                    "type": "validation_error",
                    "code": "invalid_payload",
                    "detail": "Every event was rejected; see 'rejected'.",
                    **receipt.as_dict(),
                },
            )
        return Answer(200, body)

    def refusal(self, error: IngestError) -> Answer:
        kind = {401: "authentication_error", 429: "rate_limited", 413: "payload_too_large"}.get(error.status)
        return Answer(
            error.status,
            {"type": kind or "validation_error", "code": kind or "invalid_payload", "detail": error.message},
        )


POSTHOG = PostHogFormat()


def _refusal(index: int, message: Any) -> dict[str, Any] | None:
    """Why a message cannot become an event (its receipt entry), or None when it can."""
    if not isinstance(message, dict):
        return {"index": index, "event_id": None, "errors": {"event": ["Must be an object."]}}
    event = message.get("event")
    properties = message.get("properties")
    errors: dict[str, list[str]] = {}
    if not isinstance(event, str) or not event:
        errors["event"] = ["Required: the event name (a string)."]
    if properties is not None and not isinstance(properties, dict):
        errors["properties"] = ["Must be an object."]
    if not errors:
        return None
    given = message.get("uuid")
    return {"index": index, "event_id": given if isinstance(given, str) else None, "errors": errors}


def _account(
    found: list[Identity],
    members: dict[str, str],
    *,
    event: str,
    groups: Any,
    properties: dict[str, Any],
    user_id: str,
    account_type: str,
) -> tuple[str, bool]:
    """The event's account (``$groups``, or the group a ``$groupidentify`` names), "" without one,
    and whether it makes the user a member: the account's traits or the user's membership are
    recorded in ``found``, a membership once per user and account in a request (the batch's
    events repeat their user's group)."""
    tenant_id = (sdk_text(groups.get(account_type)) or "") if groups.__class__ is dict else ""
    if event == "$groupidentify" and properties.get("$group_type") == account_type:
        group_key = sdk_text(properties.get("$group_key")) or ""
        if group_key:
            group_set = properties.get("$group_set")
            group_set = group_set if isinstance(group_set, dict) else {}
            found.append(
                Identity(tenant_id=group_key, account_name=traits_name(group_set), account_properties=group_set)
            )
            return group_key, False
    elif user_id and tenant_id and members.get(user_id) != tenant_id:
        found.append(Identity(user_id=user_id, tenant_id=tenant_id))
        return tenant_id, True
    return tenant_id, False


def _person_traits(
    found: list[Identity],
    message: dict[str, Any],
    *,
    properties: dict[str, Any],
    metadata: dict[str, Any],
    user_id: str,
) -> dict[str, Any]:
    """Record ``$set``/``$set_once`` traits as the user's identity in ``found``; the metadata to store (the traits sent
    at the top level and the email travel in it, so the item's validation covers them)."""
    traits: dict[str, Any] = {}
    for source in (message.get("$set_once"), properties.get("$set_once"), message.get("$set"), properties.get("$set")):
        if isinstance(source, dict):
            traits.update(source)
    email = traits_email(traits)
    top_level = [k for k in ("$set", "$set_once") if isinstance(message.get(k), dict) and k not in properties]
    if top_level or (email and "email" not in properties):
        metadata = dict(metadata)
        for key in top_level:
            metadata[key] = message[key]
        if email:
            metadata.setdefault("email", email)
    if user_id and traits:
        found.append(Identity(user_id=user_id, email=email, name=traits_name(traits), traits=traits))
    return metadata
