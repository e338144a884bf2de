"""What an event must be to be stored: each one checked and turned into an ``EventRow``.

A batch's events are made into rows by one ``RowMaker``, against the event type registry as
``ingest_names`` caches it per process: ``RowMaker.item`` for a native item (the console's own
format), ``RowMaker.fields`` for a format adapter that has read the fields out of its SDK's
message itself (events/ingestion/formats/), so each event is read once, checked once and its
metadata encoded once. ``IngestError`` is a refusal of a whole request (its HTTP status with it);
an event's own problems are its receipt entry.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.conf import settings

from core.models import ApiKey
from events.ingestion import classify
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


# --- Validating one event ---------------------------------------------------------------
# The canonical UUID text form; anything else goes through uuid.UUID (braces, urn:, no hyphens).
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# An ISO 8601 UTC time PostgreSQL reads as the very instant ``datetime.fromisoformat`` does, so the
# store sends the sender's text (writing a datetime out again cost more than reading it): Python
# truncates a seventh fractional digit where PostgreSQL rounds, hence at most six.
UTC_TEXT_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|\+00:00)")
# JSON writes NUL as \u0000; an odd number of backslashes before "u0000" means a real NUL.
_NUL_ESCAPE_RE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_NUL_ESCAPE_BYTES_RE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


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


def _metadata_json(
    metadata: dict[str, Any], max_bytes: int = METADATA_MAX_BYTES, *, parsed: bool = False
) -> tuple[str, str | None]:
    """Serialise metadata once; returns ``(json_text, problem)``.

    The serialised text is both what the size limit measures and what the
    insert sends, so each event's metadata is encoded exactly once.

    ``parsed``: the metadata is what ``json_load`` read from a body (orjson's reading: only
    JSON's own values, every number finite), so orjson writes it, several times faster than
    the json module; what orjson cannot write (an integer beyond 64 bits, a lone surrogate,
    nesting past 254 levels) goes the json module's way, which says why it is refused.
    """
    if parsed:
        try:
            data = orjson.dumps(metadata)
        except orjson.JSONEncodeError:
            pass
        else:
            # A backslash first (one memchr): most metadata has none, and a search for the
            # six-byte escape cost as much as writing the metadata.
            if b"\\" in data and b"\\u0000" in data and _NUL_ESCAPE_BYTES_RE.search(data):
                return "", "contains a NUL character, which PostgreSQL cannot store."
            if len(data) > max_bytes:  # bytes: the UTF-8 size itself
                return "", f"is over the {max_bytes // 1024} KiB limit per event."
            return data.decode(), None
    try:
        text = _metadata_encode(metadata)
    except RecursionError:
        return "", "is nested too deeply."
    except ValueError:
        return "", "contains NaN or Infinity, which JSON does not allow."
    if "\\" in text and "\\u0000" in text and _NUL_ESCAPE_RE.search(text):
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


def _occurred_in_utc(value: Any) -> datetime | None:
    """The usual ``occurred_at``, an ISO 8601 text in UTC, read at the cost of one C call; None for
    anything else (absent, another offset, not a time), which ``_parse_occurred_at`` reads or refuses."""
    if value.__class__ is not str:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is UTC else None


_utc_text = UTC_TEXT_RE.fullmatch


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


def _texts_checked(values: tuple[Any, Any, Any, Any], errors: dict[str, list[str]]) -> tuple[str, str, str, str]:
    """(tenant_id, user_id, session_id, event_type) one by one, each with its own error: the
    slow path, for the event whose texts the common check refused."""
    texts = {"tenant_id": "", "user_id": "", "session_id": "", "event_type": ""}
    for name, value in zip(texts, values, strict=True):
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
    return texts["tenant_id"], texts["user_id"], texts["session_id"], texts["event_type"]


_UNREGISTERED = "unregistered"


class RowMaker:
    """Makes one batch's events into rows: each event read once, checked once, its metadata
    encoded once, and its realness decided as far as the event alone decides it.

    What a batch shares is decided once: now and the latest accepted ``occurred_at``, whether
    unregistered names park, the metadata limit, the registry (reloaded at most once a batch,
    at the first name it lacks, so a type added in admin is accepted at once) and each sent
    name's resolution. Rules 0, 4 and 5 of events/classification.py (parked; the test and demo
    flags; the user agent) read the event alone, so each row gets them here from the process's
    cached rules; ``classify_batch`` keeps them when the batch's look-up finds those rules
    current and nothing else applies, and decides again otherwise.
    """

    def __init__(
        self,
        *,
        now: datetime,
        park: bool,
        metadata_max_bytes: int = METADATA_MAX_BYTES,
        parsed: bool = False,
        registry: IngestNames | None = None,
    ) -> None:
        self.now = now
        self.latest = occurred_at_latest(now)
        self.park = park
        self.max_bytes = metadata_max_bytes
        self.parsed = parsed
        self.registry = registry or ingest_names()
        self._reloaded = False
        # sent name -> (the registry's spelling, its friction signal, parked), or the error's text
        self._names: dict[str, tuple[str, str, bool] | str] = {}
        # The rules rows are classified with here (None: no cached rules yet; classify_batch decides).
        self.rules = classify.rules_cached()

    # -- the parts --
    def _resolve(self, event_type: str, errors: dict[str, list[str]]) -> tuple[str, str, bool]:
        """(the registry's spelling, its friction signal, parked) of a sent name; an error where refused."""
        known = self._names.get(event_type)
        if known is None:
            known = self._names[event_type] = self._resolve_new(event_type)
        if isinstance(known, str):
            errors["event_type"] = [known]
            return event_type, "", False
        return known

    def _resolve_new(self, event_type: str) -> tuple[str, str, bool] | str:
        if not event_type:
            return "An event type name has 1 to 64 printable characters."
        if event_type != event_type.strip() or not event_type.isprintable():
            return "An event type name has 1 to 64 printable characters, with no leading or trailing space."
        known = self.registry.resolve(event_type)
        if known is None and not self._reloaded:
            # Once a batch, not once an event: parked names are the usual case for a product not described yet.
            self._reloaded = True
            self.registry = ingest_names(refresh=True)
            self._names.clear()
            known = self.registry.resolve(event_type)
        if known is not None:
            return known[0], known[1], False
        if self.park:
            return event_type, "", True
        return (
            f"Unknown event type '{event_type}'. Add it to the event type registry in admin, or use a registered type."
        )

    def _metadata(self, metadata: Any, errors: dict[str, list[str]]) -> tuple[dict[str, Any], str]:
        """The metadata object and its JSON text, serialised once ({} when absent)."""
        if metadata is None:
            return {}, "{}"
        if metadata.__class__ is not dict and not isinstance(metadata, dict):
            errors["metadata"] = [f"Must be a JSON object, not {type(metadata).__name__}."]
            return {}, "{}"
        metadata_json, problem = _metadata_json(metadata, self.max_bytes, parsed=self.parsed)
        if problem:
            errors["metadata"] = [f"It {problem}"]
        return metadata, metadata_json

    # -- an event --
    def fields(
        self,
        *,
        event_id: str,
        event_type: Any,
        user_id: Any,
        tenant_id: Any,
        session_id: Any,
        occurred_at: Any,
        metadata: Any,
        errors: dict[str, list[str]] | None = None,
    ) -> tuple[EventRow | None, dict[str, list[str]]]:
        """An event given field by field (``event_id`` already canonical, or "" after an error in
        ``errors``). Returns ``(row, {})`` or ``(None, errors)``; None/absent texts are ""."""
        if errors is None:
            errors = {}
        tenant_id = "" if tenant_id is None else tenant_id
        user_id = "" if user_id is None else user_id
        session_id = "" if session_id is None else session_id
        # The common event: four strings within their limits, ASCII without NUL (one check over
        # the four); anything else takes the field-by-field checks and their messages.
        if (
            event_type.__class__ is str
            and tenant_id.__class__ is str
            and user_id.__class__ is str
            and session_id.__class__ is str
            and len(tenant_id) <= _TENANT_MAX
            and len(user_id) <= _USER_MAX
            and len(session_id) <= _SESSION_MAX
            and len(event_type) <= _TYPE_MAX
            and (joined := tenant_id + user_id + session_id + event_type).isascii()
            and "\x00" not in joined
        ):
            tenant_id, user_id, session_id = tenant_id.strip(), user_id.strip(), session_id.strip()
        else:
            tenant_id, user_id, session_id, event_type = _texts_checked(
                (tenant_id, user_id, session_id, event_type), errors
            )
        known = self._names.get(event_type) if event_type else None
        if known.__class__ is tuple:  # a name this batch resolved already (the usual case)
            event_type, friction_signal, parked = known
        elif event_type or "event_type" not in errors:
            event_type, friction_signal, parked = self._resolve(event_type, errors)
        else:
            friction_signal, parked = "", False
        if not user_id and not tenant_id and "user_id" not in errors and "tenant_id" not in errors:
            errors["user_id"] = ["Give user_id or tenant_id (or both): an event must belong to a user or an account."]
        occurred = _occurred_in_utc(occurred_at)
        occurred_text = ""
        if occurred is None or not EARLIEST_OCCURRED_AT <= occurred <= self.latest:
            occurred, problem = _parse_occurred_at(occurred_at, self.now, self.latest)
            if problem:
                errors["occurred_at"] = [problem]
        elif _utc_text(occurred_at):
            occurred_text = occurred_at
        if metadata.__class__ is dict:
            metadata_json, problem = _metadata_json(metadata, self.max_bytes, parsed=self.parsed)
            if problem:
                errors["metadata"] = [f"It {problem}"]
        else:
            metadata, metadata_json = self._metadata(metadata, errors)
        if errors or occurred is None:
            return None, errors
        rules = self.rules
        # No cached rules yet: classify_batch decides (a row is real until then).
        reason = "" if rules is None else _UNREGISTERED if parked else classify.metadata_reason(metadata, rules)
        # Positional, in EventRow's field order: keywords cost more than the rest of the row's making.
        return EventRow(
            event_id, tenant_id, user_id, session_id, event_type, occurred, metadata, metadata_json,
            friction_signal, not reason, reason, parked, occurred_text,
        ), errors  # fmt: skip

    def item(self, item: Any) -> tuple[EventRow | None, dict[str, list[str]]]:
        """A native item (``POST /api/v1/events``'s event object): every field checked, an
        unknown field refused. Returns ``(row, {})`` or ``(None, errors)``."""
        if item.__class__ is not dict and not isinstance(item, dict):
            return None, {"non_field_errors": ["Each event must be a JSON object."]}
        errors: dict[str, list[str]] = {}
        if not ALLOWED_FIELDS.issuperset(item):
            unknown = sorted(str(k)[:40] for k in set(item) - ALLOWED_FIELDS)
            errors["non_field_errors"] = [
                f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(ALLOWED_FIELDS))}."
            ]
        get = item.get
        return self.fields(
            event_id=_event_id(get("event_id"), errors),
            event_type=get("event_type"),
            user_id=get("user_id"),
            tenant_id=get("tenant_id"),
            session_id=get("session_id"),
            occurred_at=get("occurred_at"),
            metadata=get("metadata"),
            errors=errors,
        )


def event_row_validate(
    item: Any,
    *,
    now: datetime,
    registry: IngestNames | None = None,
    park: bool = False,
    metadata_max_bytes: int = METADATA_MAX_BYTES,
) -> tuple[EventRow | None, dict[str, list[str]]]:
    """Validate one native item on its own (a batch makes its rows with one ``RowMaker``).
    Returns ``(row, {})`` or ``(None, errors)``."""
    maker = RowMaker(now=now, park=park, metadata_max_bytes=metadata_max_bytes, registry=registry)
    return maker.item(item)


def parking_wanted(source: ApiKey | None) -> bool:
    """Whether /api/v1/events parks unregistered types for this key: by default, unless
    INGEST_REJECT_UNREGISTERED asks for the strict mode and the key's own flag does not ask
    for parking. Not parked, an event of an unregistered type is rejected, naming the type."""
    if source is not None and source.park_unregistered:
        return True
    return bool(settings.INGEST_PARK_UNREGISTERED or not settings.INGEST_REJECT_UNREGISTERED)
