"""The one ingestion gate: every ingest endpoint (native, interaction, PostHog, Segment)
and ``import_events`` pass their bytes through here before a format adapter sees them.

The gate owns what is the same for every format, so it is decided once:

- the body: ``Content-Length`` or ``Transfer-Encoding: chunked`` (read from the WSGI
  server's de-chunked input), never more than the format's limit plus one byte;
- ``Content-Encoding``: identity, gzip or deflate, inflated with a bound (a gzip bomb
  stops at the limit, having inflated one byte more than it);
- JSON: strict (no NaN/Infinity), UTF-8, and a duplicate key anywhere is refused
  (``{"events": [A], "events": [B]}`` would otherwise silently keep B);
- the key: whichever way the format lets it travel (Bearer, Basic, a body field),
  hashed, scoped, revocable, and counted against the key's per-minute rate limit.

Formats (events/ingestion/formats/*.py) are adapters: they say where their key travels, their
limits, how their messages become events, and how their SDK expects to be answered.
Every refusal is an ``IngestError`` with a 4xx status and nothing stored.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from django.http import HttpRequest
from django.utils import timezone

from core.auth import ApiKeyRefused, api_key_verify
from core.models import ApiKey, ApiKeyScope
from events.ingestion import services
from events.ingestion.collector import collector_paused
from events.ingestion.ratelimit import ingest_rate_check
from events.ingestion.services import IngestReceipt, ValidatedBatch, row_maker
from events.ingestion.validation import IngestError, RowMaker

# Each read from the WSGI input asks for at most this much (a chunked body has no length).
READ_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class FormatLimits:
    """A format's documented limits; the gate and the adapter enforce them."""

    max_body_bytes: int  # the inflated body
    max_items: int  # events in one request
    max_item_bytes: int  # one event's metadata (or message), serialised


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class IngestFormat(Protocol):
    """A format adapter (one file under events/ingestion/formats/)."""

    name: str
    limits: FormatLimits
    # Media types the body may be declared as (lower case, without parameters).
    content_types: frozenset[str]
    # Unregistered type names are stored parked (True) or rejected per item (False).
    parks_unregistered: bool

    def payload_decode(self, body: bytes, *, content_type: str, query: Mapping[str, str]) -> bytes:
        """The JSON text inside the body (e.g. a form field or base64), or the body itself."""
        ...

    def body_key(self, payload: Any) -> str | None:
        """The raw key when it travels in the body, else None."""
        ...

    def rows(self, payload: Any, maker: RowMaker) -> ValidatedBatch:
        """The messages of a parsed body made into rows, one pass each (``maker.fields`` or
        ``maker.item``), with the identities of the valid ones and the reasons for the others;
        IngestError for a wrong shape."""
        ...

    def answer(self, receipt: IngestReceipt) -> Answer:
        """What the SDK expects back for a stored request."""
        ...

    def refusal(self, error: IngestError) -> Answer:
        """What the SDK expects back for a refused request (its status is error.status)."""
        ...


# --- The body -------------------------------------------------------------------------------
def body_read(request: HttpRequest, *, max_bytes: int) -> bytes:
    """The raw request body, at most ``max_bytes``; 413 beyond, 411 when a chunked body
    cannot be read (the WSGI server did not de-chunk it)."""
    meta = request.META
    length = meta.get("CONTENT_LENGTH") or ""
    chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
    if length and not chunked:
        try:
            declared = int(length)
        except ValueError as exc:
            raise IngestError("Content-Length is not a number.") from exc
        if declared > max_bytes:
            raise IngestError(f"Request body is over the {max_bytes} byte limit.", status=413)
        body = request.read(max_bytes + 1)
    elif chunked:
        # Django reads CONTENT_LENGTH bytes (0 for a chunked body); servers that de-chunk
        # (gunicorn, uWSGI) say so with wsgi.input_terminated and end the stream at the body's end.
        if not meta.get("wsgi.input_terminated"):
            raise IngestError(
                "This server cannot read a chunked body; send Content-Length (or run behind gunicorn).", status=411
            )
        stream = meta["wsgi.input"]
        parts: list[bytes] = []
        size = 0
        while size <= max_bytes:
            part = stream.read(min(READ_CHUNK_BYTES, max_bytes + 1 - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
        body = b"".join(parts)
    else:
        body = b""
    if len(body) > max_bytes:
        raise IngestError(f"Request body is over the {max_bytes} byte limit.", status=413)
    return body


def body_inflate(body: bytes, *, encoding: str, max_bytes: int) -> bytes:
    """The body without its Content-Encoding, never inflating more than ``max_bytes + 1``."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    gzip = encoding in ("gzip", "x-gzip")
    if not gzip and encoding != "deflate":
        raise IngestError(
            f"Content-Encoding '{encoding[:40]}' is not accepted; send gzip, deflate or none.", status=415
        )
    parts: list[bytes] = []
    size = 0
    rest = body
    # A gzip body may be several members back to back (RFC 1952, 2.2): inflate them all, with
    # one budget for the lot, so a thousand small members cannot add up to a bomb either.
    while rest:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS)
        try:
            part = inflater.decompress(rest, max_bytes + 1 - size)
        except zlib.error as exc:
            raise IngestError(f"The {encoding} body is corrupt ({exc}).") from exc
        size += len(part)
        if size > max_bytes or inflater.unconsumed_tail:
            raise IngestError(f"Request body inflates to more than the {max_bytes} byte limit.", status=413)
        if not inflater.eof:
            raise IngestError(f"The {encoding} body is truncated.")
        parts.append(part)
        rest = inflater.unused_data
        if rest and not gzip:
            raise IngestError("The deflate body has data after its end.")
    return b"".join(parts)


# --- JSON --------------------------------------------------------------------------------------
class _NonStandardJSON(ValueError):
    pass


class _DuplicateKey(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (and PostgreSQL) do not.
    raise _NonStandardJSON(name)


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # dict() first: the common case (no duplicate) costs one length comparison.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


# Built once: json.loads with hooks builds a new decoder on every call (a large share of
# the import's parse time, one call per line).
_DECODE = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_object_without_duplicates).decode


def _written_keys(written: bytes) -> int:
    """How many keys orjson's own (compact) text holds: each '":' whose quote closes a string, not
    one escaped inside it, i.e. one after an even run of backslashes. The '":' after at least k
    backslashes are counted for k = 0, 1, 2...; their alternating sum counts the even runs."""
    if b"\\" not in written:  # one memchr: most bodies escape nothing, and need one count
        return written.count(b'":')
    keys, sign, pattern = 0, 1, b'":'
    while found := written.count(pattern):
        keys += sign * found
        sign, pattern = -sign, b"\\" + pattern
    return keys


# For ``_orjson_exact``'s count: whitespace deleted, and every digit made a 0.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_JSON_WHITESPACE = b" \t\n\r"
# An integer of 19 digits or more may be beyond 64 bits, which orjson reads as a float (json keeps the integer).
_LONG_NUMBER = b"0" * 19


def _orjson_exact(body: bytes, value: Any) -> bool:
    """Whether orjson's reading of ``body`` is provably the strict one: no key given twice in one
    object (orjson keeps the last, silently) and no integer beyond 64 bits (orjson reads a float).

    The usual body is the text orjson itself writes (JSON.stringify's: posthog-js's, analytics.js's):
    then writing the value back gives the body byte for byte, which no body with a repeated key or
    a rounded number can. Otherwise the keys are counted: with whitespace deleted, every key of the
    body is a '":' of its own (a string's escaped quote before a colon makes one more, never one
    fewer), so as many '":' as the parsed objects hold keys (counted exactly in orjson's text)
    proves that none was repeated."""
    if value.__class__ is not dict and value.__class__ is not list:
        return value.__class__ is not float  # a lone number: orjson's float may be a rounded integer
    try:
        written = orjson.dumps(value)
    except orjson.JSONEncodeError:  # nested past the 254 levels orjson writes (it reads 1,024)
        return False
    if written == body:
        return True
    squeezed = body.translate(_DIGITS_AS_ZERO, _JSON_WHITESPACE)
    return _LONG_NUMBER not in squeezed and squeezed.count(b'":') == _written_keys(written)


def json_load(body: bytes) -> tuple[Any, bool]:
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate keys. IngestError (400) otherwise.

    Returns the value and whether orjson read it (then every number is finite: orjson refuses
    1e400, which the json module reads as infinity). orjson reads a body several times faster
    than the json module's decoder with the duplicate-key hook; the json module reads what orjson
    refuses or may have read differently (``_orjson_exact``), and says why a body is refused.
    """
    if not body.strip():
        raise IngestError('Request body is empty: send one event object or {"events": [...]}.')
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    else:
        if _orjson_exact(body, value):
            return value, True
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(f"Request body is not valid UTF-8 (byte {exc.start}).") from exc
    try:
        return _DECODE(text), False
    except json.JSONDecodeError as exc:
        raise IngestError(f"Malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.") from exc
    except RecursionError as exc:
        raise IngestError("Malformed JSON: nested too deeply.") from exc
    except _NonStandardJSON as exc:
        raise IngestError(f"Malformed JSON: {exc} is not valid JSON (use null or a string).") from exc
    except _DuplicateKey as exc:
        raise IngestError(
            f"Malformed JSON: the key '{str(exc)[:40]}' appears twice in one object; send each key once."
        ) from exc


def json_parse(body: bytes) -> Any:
    """``json_load``'s value."""
    return json_load(body)[0]


# --- The key ---------------------------------------------------------------------------------------
def header_raw_key(request: HttpRequest) -> str | None:
    """The raw key from ``Authorization: Bearer <key>`` or ``Basic base64(<key>:)``, or None."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if not credentials:
        return None
    if scheme.lower() == "bearer":
        return credentials
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise IngestError("Malformed Basic credentials: send base64('<key>:').", status=401) from exc
        user, _, password = decoded.partition(":")
        # Segment and RudderStack send the write key as the user name with an empty password.
        return user or password or None
    return None


def ingest_key_resolve(raw_key: str | None) -> ApiKey:
    """The ingest key for a raw key: 401 if missing, unknown or revoked, 403 for another scope."""
    if not raw_key:
        raise IngestError(
            "Send an ingest key (Authorization: Bearer <key>, Basic auth or the body's key field).", status=401
        )
    try:
        api_key = api_key_verify(raw_key)
    except ApiKeyRefused as exc:
        raise IngestError(str(exc), status=401) from exc
    if api_key.scope != ApiKeyScope.INGEST:
        raise IngestError(
            f"A key with scope '{api_key.scope}' cannot send events; it needs scope 'ingest'.", status=403
        )
    return api_key


class RateLimited(IngestError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Rate limit for this key reached; nothing was stored. Retry in {retry_after} s.", status=429)
        self.retry_after = retry_after


def origin_enforce(request: HttpRequest, api_key: ApiKey) -> None:
    """403 when a browser page sends with a key that does not allow its origin (the key's
    ``allowed_origins``; a read or write key allows none). Requests without Origin (server
    SDKs, curl) are not a browser's and pass. events/cors.py makes the 403 readable by the page."""
    origin = request.META.get("HTTP_ORIGIN", "")
    if origin and not api_key.origin_allowed(origin):
        raise IngestError(
            f"This key does not accept events from web pages on {origin[:100]}: add the origin to the key's "
            "allowed origins (admin, API keys), or leave that list empty to allow any.",
            status=403,
        )


def rate_limit_enforce(api_key: ApiKey) -> None:
    retry_after = ingest_rate_check(api_key=api_key)
    if retry_after is not None:
        raise RateLimited(retry_after)


def content_type_check(request: HttpRequest, allowed: frozenset[str]) -> str:
    """The declared media type, or 415 when the format does not take it."""
    media_type = (request.content_type or "").split(";")[0].strip().lower()
    if media_type not in allowed:
        raise IngestError(
            f"Content-Type must be {' or '.join(sorted(allowed))}, not '{media_type[:60] or 'missing'}'.", status=415
        )
    return media_type


@dataclass
class GatedBody:
    """A request that passed the gate: its parsed payload and the key that sent it."""

    payload: Any
    api_key: ApiKey
    parsed: bool = False  # read by orjson (json_load): every number finite


def request_gate(request: HttpRequest, fmt: IngestFormat, *, api_key: ApiKey | None = None) -> GatedBody:
    """Everything before the format's translation, in the order that refuses cheapest first.

    ``api_key`` is given when the view authenticated the request already (the native
    endpoints, through DRF); otherwise the key comes from the headers or the body.
    """
    media_type = content_type_check(request, fmt.content_types)
    if api_key is None:
        raw_key = header_raw_key(request)
        if raw_key is not None:
            api_key = ingest_key_resolve(raw_key)
    if api_key is not None:
        origin_enforce(request, api_key)
        # Before reading the body: a limited sender costs one upsert, not a parse.
        rate_limit_enforce(api_key)
    limit = fmt.limits.max_body_bytes
    wire = body_read(request, max_bytes=limit)
    body = body_inflate(wire, encoding=request.META.get("HTTP_CONTENT_ENCODING", ""), max_bytes=limit)
    if len(body) > limit:
        raise IngestError(f"Request body is over the {limit} byte limit.", status=413)
    payload, parsed = json_load(fmt.payload_decode(body, content_type=media_type, query=request.GET))
    if api_key is None:
        raw_key = fmt.body_key(payload)
        user = getattr(request, "user", None)
        if raw_key is None and user is not None and user.is_authenticated:
            raise IngestError("A console session cannot send events; send an ingest key.", status=403)
        api_key = ingest_key_resolve(raw_key)
        origin_enforce(request, api_key)
        rate_limit_enforce(api_key)
    return GatedBody(payload=payload, api_key=api_key, parsed=parsed)


def gate_answer(fmt: IngestFormat, run: Callable[[], IngestReceipt]) -> Answer:
    """Run a gated ingest and turn its outcome into the format's answer (never a 5xx of ours)."""
    try:
        return fmt.answer(run())
    except RateLimited as exc:
        refused = fmt.refusal(exc)
        return Answer(refused.status, refused.body, {**refused.headers, "Retry-After": str(exc.retry_after)})
    except IngestError as exc:
        return fmt.refusal(exc)


def _gated_store(request: HttpRequest, fmt: IngestFormat, api_key: ApiKey | None) -> IngestReceipt:
    gated = request_gate(request, fmt, api_key=api_key)
    now = timezone.now()
    maker = row_maker(
        source=gated.api_key,
        now=now,
        park_unregistered=True if fmt.parks_unregistered else None,
        metadata_max_bytes=fmt.limits.max_item_bytes,
        parsed=gated.parsed,
    )
    return services.validated_store(fmt.rows(gated.payload, maker), source=gated.api_key, now=now)


def gated_ingest(request: HttpRequest, fmt: IngestFormat, *, api_key: ApiKey | None = None) -> Answer:
    """One ingest request end to end: the gate, the format's rows (each message read, checked
    and classified as far as it alone decides, in one pass), the one write path
    (``validated_store``), and the answer its SDK expects."""

    def run() -> IngestReceipt:
        # The batch is freed as _gated_store returns, before the collector runs again.
        with collector_paused():
            return _gated_store(request, fmt, api_key)

    return gate_answer(fmt, run)
