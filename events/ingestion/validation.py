"""What an event must be to be stored: one item checked and turned into an ``EventRow``.

Every path (the HTTP formats, ``import_events``, the console's own interactions) validates
through ``event_row_validate``, against the event type registry as ``ingest_names`` caches
it per process. ``IngestError`` is a refusal of a whole request (its HTTP status with it);
an item's own problems are its receipt entry. events/ingestion/services.py runs it over a batch.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings

from core.models import ApiKey
from events.ingestion.event_row import EventRow
from events.models import EVENT_TYPE_NAME_MAX, EventType

ALLOWED_FIELDS = frozenset({"event_id", "tenant_id", "user_id", "session_id", "event_type", "occurred_at", "metadata"})
MAX_LENGTHS = {"tenant_id": 128, "user_id": 255, "session_id": 255, "event_type": EVENT_TYPE_NAME_MAX}
METADATA_MAX_BYTES = 64 * 1024
EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=UTC)
REGISTRY_TTL_SECONDS = 10.0


class IngestError(Exception):
    """The whole request is unusable; nothing was stored. Carries the HTTP status."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# --- The event type registry, cached per process -------------------------------------
@dataclass(frozen=True)
class IngestNames:
    """The registry as the ingest hot path needs it, cached per process: each name by its lower
    case (names match case-insensitively and keep the registry's first spelling), and the type
    that plays each north-star role (the oldest one, when several do). Everything else reads
    the registry through events/registry.py."""

    by_lower: dict[str, tuple[str, str]]  # lower(name) -> (name, friction_signal)
    role_types: dict[str, str]  # north_star_role -> name
    # The names that count as a real interaction (the store's fast path checks them against
    # the table in its own statement, so a stale cache is noticed, never used).
    real_interaction: frozenset[str] = frozenset()

    def resolve(self, name: str) -> tuple[str, str] | None:
        return self.by_lower.get(name.lower())


_registry = IngestNames(by_lower={}, role_types={})
_registry_loaded_at = 0.0


def ingest_names(*, refresh: bool = False) -> IngestNames:
    """The registry, cached for a few seconds.

    A name missing from the cache triggers one reload before it is parked or
    rejected, so a type added in admin is accepted at once; weight edits take
    effect within REGISTRY_TTL_SECONDS.
    """
    global _registry, _registry_loaded_at
    if refresh or not _registry.by_lower or time.monotonic() - _registry_loaded_at > REGISTRY_TTL_SECONDS:
        by_lower: dict[str, tuple[str, str]] = {}
        role_types: dict[str, str] = {}
        real_interaction: set[str] = set()
        for name, signal, role, counts in EventType.objects.order_by("created_at", "name").values_list(
            "name", "friction_signal", "north_star_role", "counts_as_real_interaction"
        ):
            by_lower.setdefault(name.lower(), (name, signal))
            if role:
                role_types.setdefault(role, name)
            if counts:
                real_interaction.add(name)
        _registry = IngestNames(by_lower=by_lower, role_types=role_types, real_interaction=frozenset(real_interaction))
        _registry_loaded_at = time.monotonic()
    return _registry


# --- Validating one item ---------------------------------------------------------------
# The canonical UUID text form; anything else goes through uuid.UUID (braces, urn:, no hyphens).
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# json.dumps writes NUL as \u0000; an odd number of backslashes before "u0000" means a real NUL.
_NUL_ESCAPE_RE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _text_problem(value: str) -> str | None:
    """Why a string cannot be stored in a PostgreSQL text or jsonb value, or None."""
    if "\x00" in value:
        return "contains a NUL character, which PostgreSQL cannot store."
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate (invalid Unicode)."
    return None


_TENANT_MAX, _USER_MAX, _SESSION_MAX, _TYPE_MAX = (
    MAX_LENGTHS[k] for k in ("tenant_id", "user_id", "session_id", "event_type")
)


def _texts_common(item: dict[str, Any]) -> dict[str, str] | None:
    """The four text fields of the common event (strings or absent, within their limits,
    ASCII without NUL: one check over the four), or None when any needs the field-by-field
    checks and their messages. A missing event_type always takes the long way (its error)."""
    tenant_id = item.get("tenant_id")
    tenant_id = "" if tenant_id is None else tenant_id
    user_id = item.get("user_id")
    user_id = "" if user_id is None else user_id
    session_id = item.get("session_id")
    session_id = "" if session_id is None else session_id
    event_type = item.get("event_type")
    if not (
        event_type.__class__ is str
        and tenant_id.__class__ is str
        and user_id.__class__ is str
        and session_id.__class__ is str
        and len(tenant_id) <= _TENANT_MAX
        and len(user_id) <= _USER_MAX
        and len(session_id) <= _SESSION_MAX
        and len(event_type) <= _TYPE_MAX
    ):
        return None
    joined = tenant_id + user_id + session_id + event_type
    if not joined.isascii() or "\x00" in joined:
        return None
    return {
        "tenant_id": tenant_id.strip(),
        "user_id": user_id.strip(),
        "session_id": session_id.strip(),
        "event_type": event_type,
    }


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Built once and reused: JSONEncoder.encode builds a new C encoder on every call, which was a
# third of the cost of encoding one event's metadata. Same output as json.dumps with these
# options; no circular check (the metadata comes from parsed JSON, which has no cycles).
_C_ENCODER = (
    json.encoder.c_make_encoder(None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    if json.encoder.c_make_encoder is not None
    else None
)


def _metadata_encode(metadata: dict[str, Any]) -> str:
    if _C_ENCODER is None:
        return json.dumps(metadata, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return "".join(_C_ENCODER(metadata, 0))


def _metadata_json(metadata: dict[str, Any], max_bytes: int = METADATA_MAX_BYTES) -> tuple[str, str | None]:
    """Serialise metadata once; returns ``(json_text, problem)``.

    The serialised text is both what the size limit measures and what the
    insert sends, so each event's metadata is encoded exactly once.
    """
    try:
        text = _metadata_encode(metadata)
    except RecursionError:
        return "", "is nested too deeply."
    except ValueError:
        return "", "contains NaN or Infinity, which JSON does not allow."
    if "\\u0000" in text and _NUL_ESCAPE_RE.search(text):
        return "", "contains a NUL character, which PostgreSQL cannot store."
    if text.isascii():  # O(1) in CPython: the common case needs no encoding to be measured
        size = len(text)
    else:
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            return "", "contains an unpaired surrogate (invalid Unicode)."
    if size > max_bytes:
        return "", f"is over the {max_bytes // 1024} KiB limit per event."
    return text, None


def occurred_at_latest(now: datetime) -> datetime:
    """The latest ``occurred_at`` accepted at ``now`` (INGEST_MAX_FUTURE_SECONDS of clock skew)."""
    return now + timedelta(seconds=settings.INGEST_MAX_FUTURE_SECONDS)


def _parse_occurred_at(value: Any, now: datetime, latest: datetime) -> tuple[datetime | None, str | None]:
    if value is None:
        return now, None
    if not isinstance(value, str):
        return None, "Must be an ISO 8601 string with a UTC offset, e.g. 2026-02-08T14:32:15+02:00."
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None, f"'{value[:40]}' is not an ISO 8601 timestamp, e.g. 2026-02-08T14:32:15+02:00."
    if parsed.tzinfo is None:
        return None, "Must include a UTC offset (e.g. 'Z' or '+02:00'); naive times are ambiguous."
    if parsed.tzinfo is not UTC:
        try:
            parsed = parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            return None, "Is outside the range of representable times."
    if parsed < EARLIEST_OCCURRED_AT:
        return None, "Is before 2000-01-01; check the clock or the unit."
    if parsed > latest:
        return None, (
            f"Is more than {settings.INGEST_MAX_FUTURE_SECONDS // 60} minutes in the future; check the sender's clock."
        )
    return parsed, None


def _event_id(raw_id: Any, errors: dict[str, list[str]]) -> str:
    """The canonical lower-case UUID text of ``event_id`` (a new one when absent); "" after an error."""
    if raw_id is None:
        return str(uuid.uuid4())
    if not isinstance(raw_id, str):
        errors["event_id"] = ["Must be a UUID string."]
        return ""
    if _UUID_RE.fullmatch(raw_id):
        return raw_id.lower()
    try:
        return str(uuid.UUID(raw_id))
    except ValueError:
        errors["event_id"] = [f"'{raw_id[:40]}' is not a valid UUID."]
        return ""


def _texts_checked(item: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, str]:
    """The text fields one by one, each with its own error: the slow path, after ``_texts_common`` refused."""
    texts = {"tenant_id": "", "user_id": "", "session_id": "", "event_type": ""}
    for name in texts:
        value = item.get(name)
        if value is None:
            if name == "event_type":
                errors[name] = ["This field is required."]
            continue
        if value.__class__ is not str:
            errors[name] = [f"Must be a string, not {type(value).__name__}."]
            continue
        if len(value) > MAX_LENGTHS[name]:
            errors[name] = [f"Is {len(value)} characters long; the limit is {MAX_LENGTHS[name]}."]
            continue
        problem = _text_problem(value)
        if problem:
            errors[name] = [f"It {problem}"]
            continue
        texts[name] = value if name == "event_type" else value.strip()
    return texts


def _event_type_resolve(
    event_type: str, errors: dict[str, list[str]], *, registry: IngestNames, park: bool, reload_unknown: bool
) -> tuple[str, str, bool]:
    """(the registry's spelling, its friction signal, parked) of a sent name; an error where it is refused."""
    if not event_type:
        if "event_type" not in errors:
            errors["event_type"] = ["An event type name has 1 to 64 printable characters."]
        return event_type, "", False
    if event_type != event_type.strip() or not event_type.isprintable():
        errors["event_type"] = [
            "An event type name has 1 to 64 printable characters, with no leading or trailing space."
        ]
        return event_type, "", False
    known = registry.resolve(event_type)
    if known is None and reload_unknown:
        known = ingest_names(refresh=True).resolve(event_type)
    if known is not None:
        return known[0], known[1], False
    if park:
        return event_type, "", True
    errors["event_type"] = [
        f"Unknown event type '{event_type}'. Add it to the event type registry in admin, or use a registered type."
    ]
    return event_type, "", False


def _metadata_checked(metadata: Any, errors: dict[str, list[str]], max_bytes: int) -> tuple[dict[str, Any], str]:
    """The metadata object and its JSON text, serialised once ({} when absent)."""
    if metadata is None:
        return {}, "{}"
    if not isinstance(metadata, dict):
        errors["metadata"] = [f"Must be a JSON object, not {type(metadata).__name__}."]
        return {}, "{}"
    metadata_json, problem = _metadata_json(metadata, max_bytes)
    if problem:
        errors["metadata"] = [f"It {problem}"]
    return metadata, metadata_json


def event_row_validate(
    item: Any,
    *,
    now: datetime,
    registry: IngestNames,
    latest: datetime | None = None,
    park: bool = False,
    metadata_max_bytes: int = METADATA_MAX_BYTES,
    reload_unknown: bool = True,
) -> tuple[EventRow | None, dict[str, list[str]]]:
    """Validate one incoming item. Returns ``(row, {})`` or ``(None, errors)``.

    This runs once per event on the ingest hot path: it avoids work for the
    common, valid case (no per-field dicts, one metadata serialisation).
    ``latest`` is the latest acceptable ``occurred_at`` (computed once per batch).
    An unregistered ``event_type`` is parked with ``park``, rejected without; a name the
    cached registry lacks reloads it first unless ``reload_unknown`` is off (the caller did).
    """
    if latest is None:
        latest = occurred_at_latest(now)
    if not isinstance(item, dict):
        return None, {"non_field_errors": ["Each event must be a JSON object."]}
    errors: dict[str, list[str]] = {}
    if not ALLOWED_FIELDS.issuperset(item):
        unknown = sorted(str(k)[:40] for k in set(item) - ALLOWED_FIELDS)
        errors["non_field_errors"] = [
            f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(ALLOWED_FIELDS))}."
        ]
    event_id = _event_id(item.get("event_id"), errors)
    texts = _texts_common(item)
    if texts is None:
        texts = _texts_checked(item, errors)
    event_type, friction_signal, parked = _event_type_resolve(
        texts["event_type"], errors, registry=registry, park=park, reload_unknown=reload_unknown
    )
    if not texts["user_id"] and not texts["tenant_id"] and "user_id" not in errors and "tenant_id" not in errors:
        errors["user_id"] = ["Give user_id or tenant_id (or both): an event must belong to a user or an account."]
    occurred_at, problem = _parse_occurred_at(item.get("occurred_at"), now, latest)
    if problem:
        errors["occurred_at"] = [problem]
    metadata, metadata_json = _metadata_checked(item.get("metadata"), errors, metadata_max_bytes)
    if errors or occurred_at is None:
        return None, errors
    return (
        EventRow(
            event_id=event_id,
            tenant_id=texts["tenant_id"],
            user_id=texts["user_id"],
            session_id=texts["session_id"],
            event_type=event_type,
            occurred_at=occurred_at,
            metadata=metadata,
            metadata_json=metadata_json,
            friction_signal=friction_signal,
            parked=parked,
        ),
        {},
    )


def parking_wanted(source: ApiKey | None) -> bool:
    """Whether /api/v1/events parks unregistered types for this key: by default, unless
    INGEST_REJECT_UNREGISTERED asks for the strict mode and the key's own flag does not ask
    for parking. Not parked, an event of an unregistered type is rejected, naming the type."""
    if source is not None and source.park_unregistered:
        return True
    return bool(settings.INGEST_PARK_UNREGISTERED or not settings.INGEST_REJECT_UNREGISTERED)
