"""The one write path: every event enters through ``events_ingest``.

The write path is set-based: a batch is validated in plain Python (no serializer per
event, events/ingestion/validation.py), classified (events/ingestion/classify.py), and
stored by ``events.ingestion.store.event_rows_store`` (COPY into ``ops_events``, or into a
staging table and one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` with the tenant upsert)
in one transaction. When this returns, the rows are committed; resending the batch stores
nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core.flavour import flavour
from core.models import ApiKey, ApiKeyScope
from events.ingestion.classify import Rules, classification_unconfirmed, classify_batch
from events.ingestion.event_row import EventRow
from events.ingestion.identities import (
    Identity,
    accounts_attribute,
    aliases_resolve,
    identities_apply,
    identities_touch_emails,
    memberships_of,
)
from events.ingestion.store import BatchRestage, event_rows_store, rows_copy_text
from events.ingestion.validation import METADATA_MAX_BYTES, IngestError, IngestNames, RowMaker, parking_wanted
from events.rules import classification_rules_changed


@dataclass
class IngestReceipt:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    # Valid events of unregistered types among accepted + duplicates (stored, not counted),
    # and their names as sent, so the sender learns at once which names await a description.
    parked: int = 0
    parked_types: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}
        if self.parked:
            body["parked"] = self.parked
            body["parked_types"] = self.parked_types
        return body


@dataclass
class ValidatedBatch:
    """A batch after validation: the rows to store, the events refused (with their reasons, in
    the request's order), the identities of valid events, the registry the rows were resolved
    against and the classification rules they were made with (``RowMaker.rules``)."""

    rows: list[EventRow]
    rejected: list[dict[str, Any]]
    identities: list[Identity]
    registry: IngestNames
    rules: Rules | None = None
    # Set by ``validated_classify``: the rows are attributed and classified, and this is their COPY text.
    copy_text: str | None = None


def row_maker(
    *,
    source: ApiKey | None,
    now: datetime,
    park_unregistered: bool | None = None,
    metadata_max_bytes: int = METADATA_MAX_BYTES,
    parsed: bool = False,
) -> RowMaker:
    """The ``RowMaker`` of one batch sent with ``source`` (``park_unregistered`` None means
    ``parking_wanted(source)``; ``parsed``: the body was read by ``json_load``'s fast reading)."""
    if source is not None and source.scope != ApiKeyScope.INGEST:
        raise IngestError(f"A key with scope '{source.scope}' cannot send events.", status=403)
    park = parking_wanted(source) if park_unregistered is None else park_unregistered
    return RowMaker(now=now, park=park, metadata_max_bytes=metadata_max_bytes, parsed=parsed)


def batch_validated(
    maker: RowMaker, rows: list[EventRow], rejected: list[dict[str, Any]], identities: list[Identity]
) -> ValidatedBatch:
    return ValidatedBatch(
        rows=rows, rejected=rejected, identities=identities, registry=maker.registry, rules=maker.rules
    )


def items_validated(
    maker: RowMaker,
    items: list[Any],
    *,
    identities: list[Identity] | None = None,
    item_index: list[int] | None = None,
) -> ValidatedBatch:
    """Native items made into rows (``RowMaker.item``); ``identities`` are kept when the item
    they name (``Identity.item``) is valid, and ``item_index`` maps each item to its position in
    the request (for the receipt)."""
    rejected: list[dict[str, Any]] = []
    rows: list[EventRow] = []
    valid: set[int] = set()
    make = maker.item
    for index, item in enumerate(items):
        row, errors = make(item)
        if row is None:
            given = item.get("event_id") if isinstance(item, dict) else None
            rejected.append(
                {
                    "index": item_index[index] if item_index is not None else index,
                    "event_id": given if isinstance(given, str) else None,
                    "errors": errors,
                }
            )
        else:
            rows.append(row)
            valid.add(index)
    kept = [identity for identity in identities if identity.item in valid] if identities else []
    return batch_validated(maker, rows, rejected, kept)


def events_validate(
    *,
    items: list[Any],
    source: ApiKey | None,
    now: datetime,
    park_unregistered: bool | None = None,
    identities: list[Identity] | None = None,
    metadata_max_bytes: int = METADATA_MAX_BYTES,
    item_index: list[int] | None = None,
) -> ValidatedBatch:
    """The first half of ``events_ingest``: pure Python but for a registry reload (see
    ``events_ingest`` for the arguments)."""
    maker = row_maker(
        source=source, now=now, park_unregistered=park_unregistered, metadata_max_bytes=metadata_max_bytes
    )
    return items_validated(maker, items, identities=identities, item_index=item_index)


def validated_classify(
    batch: ValidatedBatch, *, source: ApiKey | None, now: datetime, in_flight: dict[str, str] | None = None
) -> None:
    """Attribute and classify a batch ahead of its store, and prepare its COPY text.

    Correct only while nothing the outcome depends on is being written: ``import_events``
    calls it when neither this batch nor the one being stored carries an email (which can
    move a user into an internal domain), and passes the stored batch's memberships as
    ``in_flight``; this batch's own memberships win over those, as they do at its store.
    """
    assert not identities_touch_emails(batch.identities)
    aliases_resolve(batch.rows)  # ahead of the store: a link made meanwhile by live traffic is not waited for
    accounts_attribute(batch.rows, pending={**(in_flight or {}), **memberships_of(batch.identities)})
    classify_batch(batch.rows, source=source, assumed=batch.rules)
    batch.copy_text = rows_copy_text(batch.rows, source=source, now=now)


def _batch_store(batch: ValidatedBatch, *, source: ApiKey | None, now: datetime, savepoint: bool, staged: bool) -> int:
    """One transaction of ``validated_store``; returns how many rows were new."""
    rows = batch.rows
    with transaction.atomic():
        # The memberships travel in the store's statement after the COPY (one round trip fewer; on
        # Citus, whose statements there are split by table, they keep their own), and the rows are
        # attributed to them as if they were stored already, as the import attributes a batch ahead.
        later = not staged and bool(batch.identities) and not flavour().subplans_through_coordinator
        memberships = memberships_of(batch.identities) if later else None
        internal_changed = (
            identities_apply(batch.identities, now=now, memberships_stored_later=later) if batch.identities else False
        )
        unconfirmed = None
        tenants_stored = None
        if batch.copy_text is None:
            aliases_resolve(rows)
            accounts_attribute(rows, pending=memberships)
            # A web request's first attempt: the store's statement confirms the rows as made, and
            # when it cannot the batch is rolled back and stored again after the look-up.
            if not savepoint and not staged:
                unconfirmed = classification_unconfirmed(rows, source=source, assumed=batch.rules)
            if unconfirmed is None:
                tenants_stored = classify_batch(rows, source=source, assumed=batch.rules)
        inserted = event_rows_store(
            rows,
            source=source,
            now=now,
            real_interaction=batch.registry.real_interaction,
            text=batch.copy_text,
            savepoint=savepoint,
            staged=staged,
            classification=unconfirmed,
            tenants_stored=tenants_stored,
            memberships=memberships,
        )
        if internal_changed:
            # An identify call moved a user into (or out of) an internal domain: their history too.
            classification_rules_changed()
    return inserted


def validated_store(batch: ValidatedBatch, *, source: ApiKey | None, now: datetime) -> IngestReceipt:
    """The second half of ``events_ingest``: identities, accounts, classification and the
    store, in one transaction (the middle two done already by ``validated_classify``).

    As the outermost transaction (a web request), the store's COPY goes without a savepoint of
    its own (two round trips a batch): a batch holding an event stored before then rolls the
    whole transaction back and is stored again by the staged statement. Doing it again is
    safe: what the first attempt changed of the rows (their person, their account) it would
    change the same way, and each write is an upsert."""
    outermost = not connection.in_atomic_block
    try:
        inserted = _batch_store(batch, source=source, now=now, savepoint=not outermost, staged=False)
    except BatchRestage:
        inserted = _batch_store(batch, source=source, now=now, savepoint=True, staged=True)
    rows = batch.rows
    receipt = IngestReceipt(rejected=batch.rejected)
    receipt.accepted = inserted
    receipt.duplicates = len(rows) - inserted
    parked = [row.event_type for row in rows if row.parked]
    receipt.parked = len(parked)
    receipt.parked_types = sorted(set(parked))
    return receipt


def events_ingest(
    *,
    items: list[Any],
    source: ApiKey | None,
    now: datetime | None = None,
    park_unregistered: bool | None = None,
    identities: list[Identity] | None = None,
    metadata_max_bytes: int = METADATA_MAX_BYTES,
    item_index: list[int] | None = None,
) -> IngestReceipt:
    """Validate, classify and store a batch. Valid items are stored even when
    others are rejected; the receipt says which and why.

    ``identities`` (profiles, memberships, account traits from SDK calls) are applied in
    the same transaction, before the batch's group-less events are attributed to their
    users' accounts. ``park_unregistered`` None means ``parking_wanted(source)``.
    ``item_index`` maps each item to its position in the request (for the receipt).
    """
    now = now or timezone.now()
    batch = events_validate(
        items=items,
        source=source,
        now=now,
        park_unregistered=park_unregistered,
        identities=identities,
        metadata_max_bytes=metadata_max_bytes,
        item_index=item_index,
    )
    return validated_store(batch, source=source, now=now)
