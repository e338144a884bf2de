"""The event store's two paths (events/ingestion/store.py): the straight COPY of a batch that is all new,
and the staged insert it falls back to when any event of the batch is already stored.

The oracle is the set of events itself: the stored rows are the distinct (tenant, event id)
pairs with the first-stored copy winning, the real-user cache equals ``real_users_rebuild``
over the stored rows, and every tenant named is registered, whichever path stored a batch.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import close_old_connections, connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.flavour import CITUS, PLAIN, flavour
from customers.models import Tenant
from events.classification import real_users_rebuild
from events.ingestion import store
from events.ingestion.event_row import EventRow
from events.ingestion.identities import Identity
from events.ingestion.services import IngestReceipt, events_ingest
from events.ingestion.store import event_rows_store as _event_rows_store
from events.ingestion.validation import ingest_names
from events.models import Event, EventType, RealUser, UserAccount

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
IDS = [uuid.UUID(int=i + 1) for i in range(12)]


def _row(event_id: uuid.UUID, tenant: str, user: str, event_type: str, minutes: int, *, real: bool = True) -> EventRow:
    return EventRow(
        event_id=str(event_id),
        tenant_id=tenant,
        user_id=user,
        session_id="",
        event_type=event_type,
        occurred_at=T0 - timedelta(minutes=minutes),
        metadata={"n": minutes},
        metadata_json=f'{{"n":{minutes}}}',
        friction_signal="",
        is_real=real,
        exclusion_reason="" if real else "test_traffic",
    )


_rows = st.builds(
    _row,
    st.sampled_from(IDS),
    st.sampled_from(["acme", "globex", ""]),
    st.sampled_from(["u1", "u2", ""]),
    # LOGIN counts as a real interaction; API_CALL does not (the fold joins the registry).
    st.sampled_from(["LOGIN", "API_CALL"]),
    st.integers(min_value=0, max_value=60 * 24 * 40),
    real=st.booleans(),
)


def event_rows_store(rows: list[EventRow], *, source: None, now: datetime, real_interaction=None) -> int:
    if real_interaction is None:
        real_interaction = ingest_names(refresh=True).real_interaction
    return _event_rows_store(rows, source=source, now=now, real_interaction=real_interaction)


def _cache() -> list[tuple[str, datetime, datetime]]:
    return sorted(RealUser.objects.values_list("user_id", "first_interaction_at", "last_interaction_at"))


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(st.lists(_rows, max_size=8), min_size=1, max_size=4),
    # A web worker's registry cache may be stale: then the staged statement must fold instead.
    stale=st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_either_path_stores_each_event_once_and_folds_the_real_users_exactly(batches, stale):
    assert not EventType.objects.get(name="API_CALL").counts_as_real_interaction
    current = ingest_names(refresh=True).real_interaction
    with transaction.atomic():
        expected: dict[tuple[str, str], EventRow] = {}
        for batch, cache_stale in zip(batches, stale, strict=False):
            new = {(r.tenant_id, r.event_id) for r in batch} - set(expected)
            cached = current | {"API_CALL"} if cache_stale else current
            assert event_rows_store(batch, source=None, now=T0, real_interaction=cached) == len(new)
            for r in batch:
                expected.setdefault((r.tenant_id, r.event_id), r)
        stored = {
            (tenant, str(event_id)): (user, occurred)
            for tenant, event_id, user, occurred in Event.objects.values_list(
                "tenant_id", "event_id", "user_id", "occurred_at"
            )
        }
        assert stored == {key: (r.user_id, r.occurred_at) for key, r in expected.items()}
        assert set(Tenant.objects.values_list("tenant_id", flat=True)) == {t for t, _ in expected if t}
        folded = _cache()
        RealUser.objects.all().delete()
        real_users_rebuild()
        assert folded == _cache()
        transaction.set_rollback(True)


def _staged_statements(queries: CaptureQueriesContext) -> int:
    return sum(1 for q in queries.captured_queries if f"DELETE FROM {store.STAGE_TABLE}" in q["sql"])


@pytest.mark.django_db
def test_a_batch_holding_a_stored_event_takes_the_staged_path_and_stores_only_the_rest():
    first = [_row(IDS[0], "acme", "u1", "LOGIN", 30), _row(IDS[1], "acme", "u1", "LOGIN", 20)]
    with CaptureQueriesContext(connection) as queries:
        assert event_rows_store(first, source=None, now=T0) == 2
    # All new: the straight COPY.
    assert _staged_statements(queries) == 0
    # Its COPY meets the stored event (on Citus a worker's internal error), is rolled back and staged.
    second = [_row(IDS[1], "acme", "u1", "LOGIN", 20), _row(IDS[2], "acme", "u1", "LOGIN", 5)]
    with CaptureQueriesContext(connection) as queries:
        assert event_rows_store(second, source=None, now=T0) == 1
    assert _staged_statements(queries) == 1
    stale = frozenset({"LOGIN", "API_CALL"})  # API_CALL no longer counts, the cache has not seen it yet
    with CaptureQueriesContext(connection) as queries:
        assert (
            event_rows_store([_row(IDS[3], "acme", "u2", "API_CALL", 1)], source=None, now=T0, real_interaction=stale)
            == 1
        )
    assert _staged_statements(queries) == 1
    assert sorted(str(e) for e in Event.objects.values_list("event_id", flat=True)) == [str(i) for i in IDS[:4]]
    assert _cache() == [("u1", T0 - timedelta(minutes=30), T0 - timedelta(minutes=5))]


@pytest.mark.django_db(transaction=True)
def test_two_senders_racing_with_the_same_batch_store_it_once():
    """Both COPY at once: the second waits on the unique index, then falls back and skips every row."""
    batch = [_row(uuid.uuid4(), "acme", f"u{i % 3}", "LOGIN", i) for i in range(200)]
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                results.append(event_rows_store(batch, source=None, now=T0))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sorted(results) == [0, 200]
    assert Event.objects.count() == 200
    assert _cache() == [(f"u{k}", T0 - timedelta(minutes=max(range(k, 200, 3))), T0 - timedelta(minutes=k))
                        for k in range(3)]  # fmt: skip


def _resend_with_a_new_member() -> tuple[IngestReceipt, CaptureQueriesContext]:
    """u1's LOGIN stored, then sent again with u2's and u2's group call: the batch's resend meets a stored event."""

    def item(event_id: uuid.UUID, user: str) -> dict[str, str]:
        return {"event_id": str(event_id), "tenant_id": "acme", "user_id": user, "event_type": "LOGIN",
                "occurred_at": (T0 - timedelta(minutes=5)).isoformat()}  # fmt: skip

    assert events_ingest(items=[item(IDS[0], "u1")], source=None, now=T0).accepted == 1
    with CaptureQueriesContext(connection) as queries:
        receipt = events_ingest(
            items=[item(IDS[0], "u1"), item(IDS[1], "u2")],
            source=None,
            now=T0,
            identities=[Identity(user_id="u2", tenant_id="acme", item=1)],
        )
    return receipt, queries


@pytest.mark.django_db(transaction=True)
def test_a_resend_in_a_transaction_of_its_own_is_rolled_back_whole_and_stored_again_staged():
    """A web request's store has no savepoint before its COPY: meeting a stored event, the
    whole transaction (the batch's identities too) is rolled back and done again, staged."""
    receipt, queries = _resend_with_a_new_member()
    assert (receipt.accepted, receipt.duplicates) == (1, 1)
    assert _staged_statements(queries) == 1
    assert not [q["sql"] for q in queries.captured_queries if "SAVEPOINT" in q["sql"]]
    assert sorted(str(e) for e in Event.objects.values_list("event_id", flat=True)) == [str(i) for i in IDS[:2]]
    assert list(UserAccount.objects.values_list("user_id", "tenant_id")) == [("u2", "acme")]
    assert _cache() == [("u1", T0 - timedelta(minutes=5), T0 - timedelta(minutes=5)),
                        ("u2", T0 - timedelta(minutes=5), T0 - timedelta(minutes=5))]  # fmt: skip


@pytest.mark.django_db
def test_a_key_that_sent_events_cannot_be_deleted():
    from django.db.models import ProtectedError

    from core.services import api_key_create

    key, _raw = api_key_create(name="sender", scope="ingest")
    events_ingest(items=[{"event_type": "x", "user_id": "u1", "occurred_at": T0.isoformat()}], source=key, now=T0)
    with pytest.raises(ProtectedError):
        key.delete()
    assert Event.objects.get().source_id == key.pk


def _lookups(queries: CaptureQueriesContext) -> int:
    """classify_batch's look-up before the COPY (the tenants' kinds and the users' domains)."""
    return sum(1 for q in queries.captured_queries if "json_object_agg(tenant_id, kind)" in q["sql"])


def _confirmations(queries: CaptureQueriesContext) -> int:
    """The fast path's statement confirming the rows' classification as made (on Citus, its query after the COPY)."""
    if flavour() is CITUS:
        return sum(
            1 for q in queries.captured_queries if "registry_current" in q["sql"] and "rules_version" in q["sql"]
        )
    return sum(1 for q in queries.captured_queries if "kind <> 'customer')" in q["sql"] and "registry" in q["sql"])


def _tenants_read(queries: CaptureQueriesContext) -> list[str]:
    """On Citus, the statements reading the batch's tenants (before the COPY in the look-up, or after it)."""
    return [q["sql"] for q in queries.captured_queries if "SELECT tenant_id, kind FROM customers_tenant" in q["sql"]]


def _items(tenant: str, count: int, **metadata: str) -> list[dict[str, object]]:
    return [{"event_id": str(uuid.uuid4()), "tenant_id": tenant, "user_id": f"{tenant}-u{i}", "event_type": "LOGIN",
             "occurred_at": (T0 - timedelta(minutes=i + 1)).isoformat(), "metadata": metadata}
            for i in range(count)]  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_web_requests_batch_is_classified_by_its_stores_own_statement_without_a_look_up():
    events_ingest(items=_items(f"warm-{uuid.uuid4().hex[:8]}", 1), source=None, now=T0)  # the process's rules cached
    tenant = f"acme-{uuid.uuid4().hex[:8]}"
    with CaptureQueriesContext(connection) as queries:
        receipt = events_ingest(items=_items(tenant, 3), source=None, now=T0)
    assert receipt.accepted == 3
    assert (_lookups(queries), _confirmations(queries), _staged_statements(queries)) == (0, 1, 0)
    assert list(Event.objects.filter(tenant_id=tenant).values_list("is_real", "exclusion_reason").distinct()) == [
        (True, "")
    ]
    assert list(Tenant.objects.filter(tenant_id=tenant).values_list("kind", flat=True)) == ["customer"]
    if flavour() is CITUS:
        # The new tenant was read after the COPY, in the confirming query, and registered.
        (read,) = _tenants_read(queries)
        assert read.index("customers_tenant") < read.index("registry_current")

    # A tenant deleted since (in admin, by a restore) is registered again by its next batch, on either database:
    # no process takes a tenant it once read for one that still exists.
    Tenant.objects.filter(tenant_id=tenant).delete()
    with CaptureQueriesContext(connection) as queries:
        assert events_ingest(items=_items(tenant, 2), source=None, now=T0 + timedelta(seconds=1)).accepted == 2
    assert (_lookups(queries), _confirmations(queries), _staged_statements(queries)) == (0, 1, 0)
    assert list(Tenant.objects.filter(tenant_id=tenant).values_list("kind", flat=True)) == ["customer"]


@pytest.mark.django_db(transaction=True)
def test_a_tenant_made_internal_through_the_services_is_confirmed_again_on_its_next_batch():
    """A kind changed through the services moves the rules' version, so the tenant's next batch is refused the
    confirmation and classified after the look-up, on either database."""
    from customers.services import tenant_save

    tenant = f"acme-{uuid.uuid4().hex[:8]}"
    events_ingest(items=_items(f"warm-{uuid.uuid4().hex[:8]}", 1), source=None, now=T0)  # the process's rules cached
    assert events_ingest(items=_items(tenant, 2), source=None, now=T0).accepted == 2
    row = Tenant.objects.get(tenant_id=tenant)
    row.kind = "internal"
    tenant_save(tenant=row, kind_changed=True)
    receipt = events_ingest(items=_items(tenant, 2), source=None, now=T0 + timedelta(seconds=1))
    assert (receipt.accepted, receipt.duplicates) == (2, 0)
    latest = Event.objects.filter(tenant_id=tenant, received_at=T0 + timedelta(seconds=1))
    assert list(latest.values_list("is_real", "exclusion_reason").distinct()) == [(False, "internal_tenant")]


@pytest.mark.django_db(transaction=True)
def test_a_batch_of_an_internal_tenant_is_refused_the_confirmation_and_stored_again_classified():
    events_ingest(items=_items(f"warm-{uuid.uuid4().hex[:8]}", 1), source=None, now=T0)
    tenant = f"ours-{uuid.uuid4().hex[:8]}"
    Tenant.objects.create(tenant_id=tenant, name="Us", kind="internal", first_seen_at=T0)
    with CaptureQueriesContext(connection) as queries:
        receipt = events_ingest(items=_items(tenant, 3), source=None, now=T0)
    assert (receipt.accepted, receipt.duplicates) == (3, 0)
    # Confirmed against the tenant's kind, refused, rolled back, looked up and stored staged.
    if flavour() is PLAIN:
        assert (_confirmations(queries), _lookups(queries), _staged_statements(queries)) == (1, 1, 1)
    assert list(Event.objects.filter(tenant_id=tenant).values_list("is_real", "exclusion_reason").distinct()) == [
        (False, "internal_tenant")
    ]
    # The process remembers the tenant's kind: its next batch is looked up first, stored once.
    with CaptureQueriesContext(connection) as queries:
        assert events_ingest(items=_items(tenant, 2), source=None, now=T0 + timedelta(seconds=1)).accepted == 2
    if flavour() is PLAIN:
        assert (_confirmations(queries), _lookups(queries), _staged_statements(queries)) == (0, 1, 0)
    assert Event.objects.filter(tenant_id=tenant, is_real=False).count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_rule_changed_since_the_rows_were_made_is_applied_by_the_stored_again_batch():
    from django.db.models import F

    from events.models import ClassificationState, UserAgentPattern

    events_ingest(items=_items(f"warm-{uuid.uuid4().hex[:8]}", 1), source=None, now=T0)
    # Saved by hand (no version bump yet): the rows below are made with the cached rules, which lack it.
    UserAgentPattern.objects.create(pattern="ScrapeBot", reason="bot")
    ClassificationState.objects.get_or_create(pk=1)
    ClassificationState.objects.filter(pk=1).update(rules_version=F("rules_version") + 1)
    tenant = f"acme-{uuid.uuid4().hex[:8]}"
    with CaptureQueriesContext(connection) as queries:
        receipt = events_ingest(items=_items(tenant, 2, user_agent="ScrapeBot/2.0"), source=None, now=T0)
    assert receipt.accepted == 2
    if flavour() is PLAIN:
        assert (_confirmations(queries), _lookups(queries), _staged_statements(queries)) == (1, 1, 1)
    assert list(Event.objects.filter(tenant_id=tenant).values_list("is_real", "exclusion_reason").distinct()) == [
        (False, "bot")
    ]


@pytest.mark.django_db
def test_a_batch_registers_its_new_tenants_and_leaves_the_stored_ones_as_they_are():
    """The batch's tenants are read with its classification: a stored one keeps its row (and its kind
    classifies the batch), a new one is registered; a batch naming only stored tenants writes none."""
    Tenant.objects.create(tenant_id="acme", name="Acme Inc", kind="test", first_seen_at=T0 - timedelta(days=30))

    def item(event_id: uuid.UUID, tenant: str) -> dict[str, str]:
        return {"event_id": str(event_id), "tenant_id": tenant, "user_id": "u1", "event_type": "LOGIN",
                "occurred_at": (T0 - timedelta(minutes=5)).isoformat()}  # fmt: skip

    assert events_ingest(items=[item(IDS[0], "acme"), item(IDS[1], "globex")], source=None, now=T0).accepted == 2
    assert sorted(Tenant.objects.values_list("tenant_id", "name", "kind", "first_seen_at")) == [
        ("acme", "Acme Inc", "test", T0 - timedelta(days=30)),
        ("globex", "", "customer", T0),
    ]
    assert sorted(Event.objects.values_list("tenant_id", "is_real", "exclusion_reason")) == [
        ("acme", False, "test_traffic"),
        ("globex", True, ""),
    ]
    with CaptureQueriesContext(connection) as queries:
        assert events_ingest(items=[item(IDS[2], "acme"), item(IDS[3], "globex")], source=None, now=T0).accepted == 2
    inserts = [q["sql"] for q in queries.captured_queries if "INSERT INTO customers_tenant" in q["sql"]]
    on_citus = flavour() is CITUS
    # On Citus the tenants' insert is a distributed statement of its own, left out when every tenant is
    # stored; on plain PostgreSQL it is a part of the batch's one upsert statement.
    assert (len(inserts) == 0) if on_citus else (len(inserts) == 1)
    assert Tenant.objects.count() == 2


def _memberships_written(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "INSERT INTO ops_user_accounts" in q["sql"]]


@pytest.mark.django_db(transaction=True)
def test_a_batchs_memberships_are_written_by_the_statement_that_stores_its_rows():
    """No statement of their own before the COPY: the store's upsert records them, and the batch's
    group-less event of that user is attributed to the account as if they were stored already."""
    tenant = f"acme-{uuid.uuid4().hex[:8]}"
    items = _items(tenant, 2)
    items.append({"event_id": str(uuid.uuid4()), "user_id": f"{tenant}-u0", "event_type": "LOGIN",
                  "occurred_at": T0.isoformat()})  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        receipt = events_ingest(
            items=items, source=None, now=T0, identities=[Identity(user_id=f"{tenant}-u0", tenant_id=tenant, item=0)]
        )
    assert receipt.accepted == 3
    written = _memberships_written(queries)
    if flavour() is PLAIN:  # on Citus the memberships keep their statement (identities_apply)
        assert len(written) == 1 and "INSERT INTO ops_real_users" in written[0], written
    assert list(UserAccount.objects.filter(tenant_id=tenant).values_list("user_id", flat=True)) == [f"{tenant}-u0"]
    assert Event.objects.filter(tenant_id=tenant).count() == 3


@pytest.mark.django_db
def test_a_batch_staged_inside_a_callers_transaction_still_records_its_memberships():
    receipt, queries = _resend_with_a_new_member()
    assert (receipt.accepted, receipt.duplicates) == (1, 1)
    assert _staged_statements(queries) == 1
    assert list(UserAccount.objects.values_list("user_id", "tenant_id")) == [("u2", "acme")]
