"""Property-based tests of the ingestion payload (hypothesis).

tests/events/test_ingest.py pins each error path with one hand-picked example;
these generate many: wrong types, huge strings, deep nesting, NUL bytes, lone
surrogates, invalid UTF-8, timestamps at the edges, batch counts and body sizes
around the limits. The properties:

- nothing is ever a 5xx, and every 4xx says why;
- in a mixed batch, exactly the items built invalid are rejected, each naming the
  field that was made wrong, and ``accepted + duplicates + rejected == len(batch)``;
- the stored rows are exactly the valid, unique events (counting those stored
  before), and resending the batch stores nothing new.

The oracle is the construction: every generated item is valid or broken on
purpose in one named field, so expectations never come from the code under test.
"""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import time_machine
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from events.models import Event

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = NOW + timedelta(minutes=5)
MAX_LENGTHS = {"tenant_id": 128, "user_id": 255, "session_id": 255, "event_type": 64}
# Seeded by the registry's data migration (events/migrations/0002).
REGISTERED_TYPES = ["LOGIN", "SIGNUP", "PAGE_VIEW", "REPLAY_ABORTED", "EXPORT_COMPLETED", "INCIDENT_VIEWED", "API_CALL"]

FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(autouse=True)
def _frozen_clock_and_no_rate_limit(settings: Any):
    # The rate limit has its own tests; here it would turn later examples into 429s.
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 0
    with time_machine.travel(NOW, tick=False):
        yield


def _post(client: APIClient, body: bytes, **extra: Any) -> Any:
    response = client.generic("POST", URL, body, content_type="application/json", **extra)
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 400:
        assert response.json()["detail"].strip(), response.content[:500]
    return response


def _encode(payload: Any) -> bytes:
    """UTF-8 JSON; falls back to \\u escapes when a lone surrogate cannot be encoded raw."""
    try:
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(payload).encode("ascii")


# --- Strategies ---------------------------------------------------------------------------
storable_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
storable_text = st.text(storable_chars, max_size=20)
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | storable_text
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(storable_text, inner, max_size=4),
    max_leaves=12,
)
# Keys the classifier reads, with any JSON value: a non-string user agent must not crash it.
metadata_key = st.sampled_from(["user_agent", "email", "test", "demo", "plan"]) | storable_text
valid_metadata = st.dictionaries(metadata_key, json_value, max_size=5)


def _offset_iso(moment: datetime, minutes: int, z: bool) -> str:
    if minutes == 0 and z:
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return moment.astimezone(timezone(timedelta(minutes=minutes))).isoformat()


offsets = st.integers(min_value=-14 * 60, max_value=14 * 60)
valid_moment = st.datetimes(
    min_value=EARLIEST.replace(tzinfo=None), max_value=LATEST.replace(tzinfo=None), timezones=st.just(UTC)
)
valid_occurred_at = st.builds(_offset_iso, valid_moment, offsets, st.booleans())


@st.composite
def valid_event(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(draw(st.uuids())),
        "event_type": draw(st.sampled_from(REGISTERED_TYPES)),
    }
    # An event must belong to a user or an account (issue 16): every valid one names its user.
    event["user_id"] = draw(st.text(storable_chars, min_size=1, max_size=39).filter(lambda s: s.strip()))
    for name in ("tenant_id", "session_id"):
        if draw(st.booleans()):
            event[name] = draw(st.text(storable_chars, max_size=MAX_LENGTHS[name]).filter(lambda s: len(s) < 40))
    if draw(st.booleans()):
        event["occurred_at"] = draw(valid_occurred_at)
    if draw(st.booleans()):
        event["metadata"] = draw(valid_metadata)
    return event


def _not_a_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return True
    return False


wrong_type = (
    st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.booleans() | st.lists(json_leaf, max_size=3)
)
nul_text = st.builds(lambda a, b: a + "\x00" + b, storable_text, storable_text)
surrogate_text = st.builds(lambda a, c: a + c, storable_text, st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
naive_or_garbage_time = (
    valid_moment.map(lambda m: m.replace(tzinfo=None).isoformat())
    | st.text(storable_chars, max_size=30).filter(lambda s: not s[:4].isdigit())
    | wrong_type
)
edge_early = st.integers(min_value=1, max_value=10**15).map(lambda us: EARLIEST - timedelta(microseconds=us))
edge_late = st.integers(min_value=1, max_value=10**15).map(lambda us: LATEST + timedelta(microseconds=us))
out_of_range_time = st.builds(_offset_iso, edge_early | edge_late, offsets, st.booleans())


@st.composite
def broken_event(draw: st.DrawFn) -> tuple[Any, str]:
    """An item wrong in exactly one way, and the error key that must name it."""
    base = draw(valid_event())
    kind = draw(
        st.sampled_from(
            [
                "missing_type",
                "unknown_type",
                "wrong_type",
                "too_long",
                "nul",
                "bad_id",
                "bad_time",
                "time_out_of_range",
                "metadata_not_object",
                "metadata_unstorable",
                "metadata_huge",
                "unknown_field",
                "not_an_object",
            ]
        )
    )
    text_field = draw(st.sampled_from(["tenant_id", "user_id", "session_id", "event_type"]))
    if kind == "missing_type":
        base.pop("event_type")
        return base, "event_type"
    if kind == "unknown_type":
        base["event_type"] = "NOT_REGISTERED_" + draw(st.text("ABCXYZ_", max_size=10))
        return base, "event_type"
    if kind == "wrong_type":
        base[text_field] = draw(wrong_type | st.dictionaries(storable_text, json_leaf, max_size=2))
        return base, text_field
    if kind == "too_long":
        base[text_field] = "x" * (MAX_LENGTHS[text_field] + draw(st.integers(1, 5000)))
        return base, text_field
    if kind == "nul":
        base[text_field] = draw(nul_text)
        return base, text_field
    if kind == "bad_id":
        base["event_id"] = draw(st.text(storable_chars, max_size=40).filter(_not_a_uuid) | wrong_type)
        return base, "event_id"
    if kind == "bad_time":
        base["occurred_at"] = draw(naive_or_garbage_time)
        return base, "occurred_at"
    if kind == "time_out_of_range":
        base["occurred_at"] = draw(out_of_range_time)
        return base, "occurred_at"
    if kind == "metadata_not_object":
        base["metadata"] = draw(wrong_type | storable_text)
        return base, "metadata"
    if kind == "metadata_unstorable":
        bad = draw(nul_text | surrogate_text)
        # In a value or in a key, at the top or nested.
        base["metadata"] = draw(
            st.sampled_from([{"k": bad}, {bad: 1}, {"k": [1, {"deep": bad}]}, {"k": {bad: {"x": 1}}}])
        )
        return base, "metadata"
    if kind == "metadata_huge":
        base["metadata"] = {"pad": "x" * (64 * 1024 + draw(st.integers(0, 2000)))}
        return base, "metadata"
    if kind == "unknown_field":
        base[draw(st.sampled_from(["eventType", "timestamp", "tenant", "user"]))] = "x"
        return base, "non_field_errors"
    return draw(st.none() | wrong_type | storable_text), "non_field_errors"


@st.composite
def mixed_batch(draw: st.DrawFn) -> tuple[list[Any], set[int], list[dict[str, Any]]]:
    """(batch, indices of broken items, events stored before the batch is sent)."""
    valid = draw(st.lists(valid_event(), min_size=0, max_size=12, unique_by=lambda e: e["event_id"]))
    broken = draw(st.lists(broken_event(), min_size=0, max_size=8))
    resent = draw(st.lists(st.sampled_from(valid), max_size=4)) if valid else []  # same event_id twice
    assume(valid or broken)
    entries = [(e, None) for e in valid + resent] + [(item, field) for item, field in broken]
    order = draw(st.permutations(range(len(entries))))
    batch = [entries[i][0] for i in order]
    broken_at = {position: entries[i][1] for position, i in enumerate(order) if entries[i][1] is not None}
    stored_before = draw(st.lists(st.sampled_from(valid), max_size=3)) if valid else []
    return batch, broken_at, stored_before


# --- Properties -----------------------------------------------------------------------------
def test_a_mixed_batch_stores_each_valid_event_exactly_once(ingest_client, settings):
    # The strict mode, where an unregistered name is one of the ways an event is broken (by default it
    # is parked and stored; tests/events/test_ingest.py covers that).
    settings.INGEST_REJECT_UNREGISTERED = True

    @FUZZ
    @given(mixed_batch())
    def check(case: tuple[list[Any], dict[int, str], list[dict[str, Any]]]) -> None:
        batch, broken_at, stored_before = case
        Event.objects.all().delete()
        if stored_before:
            assert _post(ingest_client, _encode({"events": stored_before})).status_code == 200
        before_ids = {e["event_id"] for e in stored_before}
        valid_ids = {item["event_id"] for i, item in enumerate(batch) if i not in broken_at}

        response = _post(ingest_client, _encode({"events": batch}))
        receipt = response.json()

        assert response.status_code == (200 if valid_ids else 400)
        assert receipt["accepted"] + receipt["duplicates"] + len(receipt["rejected"]) == len(batch)
        assert receipt["accepted"] == len(valid_ids - before_ids)
        assert receipt["duplicates"] == len(batch) - len(broken_at) - receipt["accepted"]
        assert {r["index"] for r in receipt["rejected"]} == set(broken_at)
        for rejection in receipt["rejected"]:
            assert broken_at[rejection["index"]] in rejection["errors"], rejection
            assert all(m.strip() for messages in rejection["errors"].values() for m in messages)
        stored = [str(i) for i in Event.objects.values_list("event_id", flat=True)]
        assert sorted(stored) == sorted(valid_ids | before_ids)  # exactly once each

        again = _post(ingest_client, _encode({"events": batch})).json()
        assert again["accepted"] == 0
        assert again["duplicates"] == len(batch) - len(broken_at)
        assert Event.objects.count() == len(valid_ids | before_ids)

    check()


def test_any_json_body_is_answered_without_a_5xx_and_stores_what_it_accepts(ingest_client):
    @FUZZ
    @given(json_value | st.lists(json_value, max_size=5).map(lambda items: {"events": items}))
    def check(payload: Any) -> None:
        Event.objects.all().delete()
        response = _post(ingest_client, _encode(payload))
        assert response.status_code in (200, 400)
        receipt = response.json()
        assert Event.objects.count() == receipt.get("accepted", 0)

    check()


def test_invalid_utf8_anywhere_in_the_body_is_a_400_that_stores_nothing(ingest_client):
    invalid = st.sampled_from([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"\x80", b"\xf8\x88\x80\x80\x80"])

    @FUZZ
    @given(st.lists(valid_event(), min_size=1, max_size=5), invalid, st.integers(min_value=0))
    def check(events: list[dict[str, Any]], bad: bytes, position: int) -> None:
        body = _encode({"events": events})
        at = position % (len(body) + 1)
        response = _post(ingest_client, body[:at] + bad + body[at:])
        assert response.status_code == 400
        assert "not valid UTF-8" in response.json()["detail"]
        assert not Event.objects.exists()

    check()


def test_deep_nesting_is_stored_or_rejected_never_a_5xx(ingest_client):
    @FUZZ
    @given(st.integers(min_value=1, max_value=20_000), st.sampled_from(["[", "{"]), st.booleans())
    def check(depth: int, opener: str, in_batch: bool) -> None:
        Event.objects.all().delete()
        nested = ('{"k":' * depth + "1" + "}" * depth) if opener == "{" else ("[" * depth + "]" * depth)
        event = '{"user_id": "u1", "event_type": "LOGIN", "metadata": {"a": ' + nested + "}}"
        body = ('{"events": [' + event + ', {"user_id": "u1", "event_type": "LOGIN"}]}' if in_batch else event).encode()
        response = _post(ingest_client, body)
        assert response.status_code in (200, 400, 413)
        assert Event.objects.count() == response.json().get("accepted", 0)

    check()


def test_occurred_at_is_accepted_exactly_between_2000_and_five_minutes_ahead(ingest_client):
    near = st.integers(min_value=-3, max_value=3) | st.integers(min_value=-(10**12), max_value=10**12)
    boundary = st.sampled_from([EARLIEST, LATEST, NOW])

    @FUZZ
    @given(boundary, near, offsets, st.booleans())
    def check(edge: datetime, microseconds: int, offset: int, z: bool) -> None:
        moment = edge + timedelta(microseconds=microseconds)
        assume(datetime(1, 1, 2, tzinfo=UTC) < moment < datetime(9999, 12, 30, tzinfo=UTC))
        Event.objects.all().delete()
        response = _post(
            ingest_client,
            _encode({"user_id": "u1", "event_type": "LOGIN", "occurred_at": _offset_iso(moment, offset, z)}),
        )
        if EARLIEST <= moment <= LATEST:
            assert response.status_code == 200, response.json()
            assert Event.objects.get().occurred_at == moment
        else:
            assert response.status_code == 400
            assert "occurred_at" in response.json()["rejected"][0]["errors"]
            assert not Event.objects.exists()

    check()


def test_the_event_count_limit_is_exactly_1000(ingest_client):
    @settings(FUZZ, max_examples=8)
    @given(st.integers(min_value=995, max_value=1010) | st.integers(min_value=1, max_value=5))
    def check(count: int) -> None:
        Event.objects.all().delete()
        body = _encode(
            {"events": [{"user_id": "u1", "event_type": "LOGIN", "event_id": str(uuid.uuid4())} for _ in range(count)]}
        )
        response = _post(ingest_client, body)
        if count <= 1000:
            assert response.json()["accepted"] == count
        else:
            assert response.status_code == 413
            assert f"{count} events" in response.json()["detail"]
            assert not Event.objects.exists()

    check()


def test_the_body_size_limit_is_exactly_1_mib(ingest_client):
    limit = 1024 * 1024

    @settings(FUZZ, max_examples=10)
    @given(st.integers(min_value=-3, max_value=3) | st.integers(min_value=-1000, max_value=100_000))
    def check(delta: int) -> None:
        Event.objects.all().delete()
        # Many small events padded to the size: under the limit every one is judged per item.
        events = [{"user_id": "u1", "event_type": "LOGIN", "metadata": {"pad": "x" * 60_000}} for _ in range(17)]
        body = _encode({"events": events})
        body = body[:-2] + b" " * (limit + delta - len(body)) + body[-2:]
        assert len(body) == limit + delta
        response = _post(ingest_client, body)
        if delta > 0:
            assert response.status_code == 413
            assert f"{limit} byte limit" in response.json()["detail"]
            assert not Event.objects.exists()
        else:
            assert response.json()["accepted"] == 17

    check()


def test_a_gzip_bomb_is_refused_without_inflating_it(ingest_client):
    # gzip is accepted now (the SDKs send it), so a bomb is refused by the inflated-size bound.
    bomb = gzip.compress(b"[" + b" " * (50 * 1024 * 1024) + b"]", compresslevel=9)
    assert len(bomb) < 100 * 1024  # 50 MiB inflated
    for encoding, status, message in (
        ("gzip", 413, "inflates to more than the 1048576 byte limit"),
        ("GZIP", 413, "inflates to more than"),
        ("x-gzip", 413, "inflates to more than"),
        ("deflate", 400, "corrupt"),  # a gzip stream is not a zlib stream
        ("br", 415, "is not accepted"),
    ):
        response = _post(ingest_client, bomb, HTTP_CONTENT_ENCODING=encoding)
        assert response.status_code == status, encoding
        assert message in response.json()["detail"]
    assert not Event.objects.exists()


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(metadata=st.dictionaries(st.text(max_size=8), _json_values, max_size=6))
def test_the_metadata_text_is_what_json_dumps_writes(metadata):
    """The reused C encoder (events/ingestion/validation.py) writes exactly json.dumps's text, which is
    what the size limit measures and what is stored."""
    from events.ingestion.validation import _metadata_json

    expected = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text, problem = _metadata_json(metadata, 10**9)
    if problem:
        assert "surrogate" in problem or "NUL" in problem
    else:
        assert text == expected


def test_metadata_nested_past_the_recursion_limit_is_refused_not_a_crash():
    from events.ingestion.validation import _metadata_json

    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    assert _metadata_json(deep) == ("", "is nested too deeply.")
    assert _metadata_json({"x": float("nan")})[1] == "contains NaN or Infinity, which JSON does not allow."


# --- orjson's reading and writing, against the json module's -------------------------------------
_KEYS = st.sampled_from(["a", "b", "", 'a"', "x\\", '\\"', "é", 'k:"', "\u2028", "\\u0022"])
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from([*'ab":\\ \t\n0123456789é\u2028', "\ud800"]), max_size=12)
)
# An object is a list of (key, value) pairs, so it can give a key twice.
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4).map(lambda items: ("array", items))
        | st.lists(st.tuples(_KEYS, children), max_size=4).map(lambda pairs: ("object", pairs))
    ),
    max_leaves=20,
)
_SEPARATORS = st.sampled_from([(",", ":"), (", ", ": "), (",", " :"), (" ,\n", "\t:\r ")])


def _json_text(value: Any, separators: tuple[str, str], ascii_only: bool) -> str:
    if isinstance(value, tuple) and value[0] == "object":
        return "{" + separators[0].join(
            json.dumps(k, ensure_ascii=ascii_only) + separators[1] + _json_text(v, separators, ascii_only)
            for k, v in value[1]
        ) + "}"  # fmt: skip
    if isinstance(value, tuple):
        return "[" + separators[0].join(_json_text(v, separators, ascii_only) for v in value[1]) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(document=_DOCUMENTS, separators=_SEPARATORS, ascii_only=st.booleans())
def test_the_gate_reads_every_body_as_the_strict_json_reader_does(document, separators, ascii_only):
    """orjson reads a body when its reading is provably the strict one (events/ingestion/gate.py,
    ``_orjson_exact``): a key given twice is refused, an integer beyond 64 bits stays exact, and
    anything orjson refuses is read (or refused, with the reason) by the json module."""
    from events.ingestion.gate import _DECODE, json_load
    from events.ingestion.validation import IngestError

    body = _json_text(document, separators, ascii_only).encode("utf-8", "surrogatepass")
    try:
        expected: Any = _DECODE(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        expected = IngestError
    try:
        value, _ = json_load(body)
    except IngestError:
        value = IngestError
    assert json.dumps(value if value is IngestError else [value], default=str) == json.dumps(
        expected if expected is IngestError else [expected], default=str
    ), body


def test_the_gate_refuses_a_key_given_twice_however_the_body_is_written():
    from events.ingestion.gate import json_load
    from events.ingestion.validation import IngestError

    for body in (b'{"a":1,"a":2}', b'{"a": 1, "a" :2}', b'{"a":"\\u0022:","a":1}', b'[{"b":{"c":1,"c":2}}]',
                 b'{"a\\\\":1,"a\\\\":2}', b'{"x":[' + b"[" * 300 + b"]" * 300 + b'],"x":1}'):  # fmt: skip
        with pytest.raises(IngestError, match="appears twice"):
            json_load(body)
    assert json_load(b'{"a":123456789012345678901234}')[0] == {"a": 123456789012345678901234}
    assert json_load(b'{"a":"\\u0022:"}') == ({"a": '":'}, True)


@given(metadata=st.dictionaries(st.text(max_size=8), _json_values, max_size=6))
def test_metadata_read_by_orjson_is_written_by_orjson_to_the_same_json(metadata):
    """A body's metadata (read by orjson) is written by orjson: the same JSON value as the json
    module's text, measured in UTF-8 bytes; what orjson cannot write goes the json module's way."""
    from events.ingestion.validation import _metadata_json

    text, problem = _metadata_json(metadata, 10**9, parsed=True)
    reference, reference_problem = _metadata_json(metadata, 10**9)
    assert (problem is None) == (reference_problem is None), (problem, reference_problem)
    if problem is None:
        assert json.loads(text) == json.loads(reference)
        limit = len(text.encode())
        assert _metadata_json(metadata, limit, parsed=True)[1] is None
        assert _metadata_json(metadata, limit - 1, parsed=True)[1] is not None
