"""The emitter never blocks on one bad batch, against the live test server:
oversized batches are cut or split, an event that can never be accepted is given up
with its reason while the rest go on, the buffer is bounded, and emit() tells
"queued, will retry" from "lost"."""

from __future__ import annotations

import pytest

from core.models import ApiKey
from core.services import api_key_create
from events.emitter import DeliveryDeferred, EventLost, EventsLost, OpsEmitter
from events.models import Event

pytestmark = pytest.mark.django_db(transaction=True)

# ~2.5 KB of metadata per event: far under the 64 KiB per-event limit, but 500 of them
# are ~1.3 MB, over the 1 MiB body limit (the failure of issue 19).
PADDING = "m" * 2500


@pytest.fixture
def ingest_key(transactional_db) -> str:
    return api_key_create(name="backend", scope="ingest")[1]


def _stored_ids() -> set[str]:
    return {str(value) for value in Event.objects.values_list("event_id", flat=True)}


def test_events_with_large_metadata_are_all_delivered_in_batches_under_the_body_limit(live_server, ingest_key):
    emitter = OpsEmitter(live_server.url, ingest_key)  # the defaults: 500 per batch
    ids = [emitter.login(tenant_id="acme", user_id=f"u{i % 9}", notes=PADDING) for i in range(1501)]
    emitter.flush()
    assert (emitter.sent, emitter.pending, emitter.lost) == (1501, 0, [])
    assert _stored_ids() == set(ids)
    assert "413" not in emitter.attempts


def test_a_batch_the_server_refuses_as_too_large_is_split_until_it_fits(live_server, ingest_key):
    # An emitter that believes the server takes 8 MiB: the server's 413 is what it learns from.
    emitter = OpsEmitter(live_server.url, ingest_key, max_request_bytes=8 * 1024 * 1024)
    ids = [emitter.login(tenant_id="acme", user_id=f"u{i % 9}", notes=PADDING) for i in range(1200)]
    emitter.flush()
    assert emitter.attempts["413"] >= 1 and emitter.attempts["split"] >= 1
    assert (emitter.sent, emitter.pending, emitter.lost) == (1200, 0, [])
    assert _stored_ids() == set(ids)
    assert Event.objects.count() == 1200


def test_one_event_too_large_on_its_own_is_given_up_with_a_clear_error_and_the_rest_go_on(live_server, ingest_key):
    emitter = OpsEmitter(live_server.url, ingest_key, batch_size=100, max_request_bytes=8 * 1024 * 1024)
    before = [emitter.login(tenant_id="acme", user_id="u1") for _ in range(30)]
    huge = emitter.login(tenant_id="acme", user_id="u1", notes="h" * (1100 * 1024))
    after = [emitter.login(tenant_id="acme", user_id="u2") for _ in range(30)]
    with pytest.raises(EventsLost) as error:
        emitter.flush()
    assert [lost.event_id for lost in error.value.lost] == [huge]
    assert error.value.lost[0].status == 413 and "over the" in error.value.lost[0].reason
    assert _stored_ids() == set(before + after)
    assert emitter.pending == 0
    # Nothing is stuck: the next events go straight through.
    later = emitter.login(tenant_id="acme", user_id="u3")
    emitter.flush()
    assert later in _stored_ids()


def test_an_event_the_server_rejects_with_a_reason_is_reported_lost_and_the_rest_are_stored(live_server, ingest_key):
    emitter = OpsEmitter(live_server.url, ingest_key)
    good = [emitter.login(tenant_id="acme", user_id=f"u{i}") for i in range(10)]
    bad = emitter.login(tenant_id="acme", user_id="u1", notes="n" * (70 * 1024))  # over the per-event 64 KiB
    with pytest.raises(EventsLost) as error:
        emitter.flush()
    assert [lost.event_id for lost in error.value.lost] == [bad]
    assert "metadata" in error.value.lost[0].reason
    assert _stored_ids() == set(good)
    assert emitter.pending == 0


def test_emit_refuses_an_event_over_the_body_limit_at_once_and_keeps_the_others(live_server, ingest_key):
    emitter = OpsEmitter(live_server.url, ingest_key)
    kept = emitter.login(tenant_id="acme", user_id="u1")
    with pytest.raises(EventLost, match="over the 1,048,576-byte body limit"):
        emitter.login(tenant_id="acme", user_id="u1", notes="h" * (1100 * 1024))
    assert (emitter.dropped, emitter.pending) == (1, 1)
    emitter.flush()
    assert _stored_ids() == {kept}


def test_while_the_server_is_down_emit_queues_up_to_the_bound_then_says_lost(live_server, ingest_key):
    emitter = OpsEmitter("http://127.0.0.1:9", ingest_key, batch_size=100, max_buffer=300, max_retries=0)
    queued = [emitter.login(tenant_id="acme", user_id=f"u{i}") for i in range(300)]  # no exception: queued
    assert emitter.pending == 300
    with pytest.raises(EventLost, match="buffer is full"):
        emitter.login(tenant_id="acme", user_id="late")
    assert emitter.dropped == 1 and len(emitter.lost) == 1
    with pytest.raises(DeliveryDeferred, match="stay queued"):
        emitter.flush()
    assert emitter.pending == 300 and emitter.attempts["connection_error"] >= 1

    emitter.url = live_server.url + "/api/v1/events"  # the server is back
    emitter.flush()
    assert (emitter.sent, emitter.pending) == (300, 0)
    assert _stored_ids() == set(queued)


def test_a_split_batch_that_fails_halfway_resends_only_what_was_not_delivered(live_server, ingest_key):
    emitter = OpsEmitter(live_server.url, ingest_key, batch_size=1000, max_request_bytes=8 * 1024 * 1024, max_retries=0)
    ids = [emitter.login(tenant_id="acme", user_id=f"u{i % 9}", notes=PADDING) for i in range(600)]
    # Revoke the key after the first accepted half: the rest must wait in the queue.
    original_send = emitter._send

    def send_then_revoke(batch: list[dict]) -> dict:
        receipt = original_send(batch)
        ApiKey.objects.update(revoked_at="2026-01-01T00:00:00Z")
        return receipt

    emitter._send = send_then_revoke  # type: ignore[method-assign]
    with pytest.raises(DeliveryDeferred, match="401"):
        emitter.flush()
    delivered = _stored_ids()
    assert len(delivered) == 300 and emitter.pending == 300 and emitter.sent == 300
    assert delivered.isdisjoint({str(event["event_id"]) for event, _ in emitter._buffer})

    ApiKey.objects.update(revoked_at=None)
    emitter._send = original_send  # type: ignore[method-assign]
    emitter.flush()
    assert _stored_ids() == set(ids) and emitter.duplicates == 0


def test_an_event_refused_in_the_background_is_recorded_as_lost_and_reported_by_the_next_flush_only(
    live_server, ingest_key
):
    emitter = OpsEmitter(live_server.url, ingest_key, batch_size=10)
    good = [emitter.login(tenant_id="acme", user_id=f"u{i}") for i in range(5)]
    bad = emitter.login(tenant_id="acme", user_id="u1", notes="n" * (70 * 1024))
    good += [emitter.login(tenant_id="acme", user_id=f"v{i}") for i in range(4)]  # a full batch: sent by the thread
    with pytest.raises(EventsLost) as error:  # never raised at an emit() caller
        emitter.flush(timeout=30)
    assert [lost.event_id for lost in error.value.lost] == [bad]
    assert emitter.pending == 0 and [lost.event_id for lost in emitter.lost] == [bad]
    assert _stored_ids() == set(good)
    emitter.flush(timeout=30)  # reported once
