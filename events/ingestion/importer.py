"""History import: a PostHog export, a Segment/RudderStack archive, native JSONL or a CSV,
through the same write path as live ingestion (``events_ingest``: the same validation,
classification, parking, identities and accounts).

Streaming: the file is read line by line (CSV record by record) and stored in batches, so
a file larger than memory imports in constant memory. Idempotent: every event keeps its
id (or gets a stable UUIDv5 of its content), so a second import stores nothing. Resumable:
``ImportRun`` records the byte offset after each committed batch, in the same transaction
as the batch, so an import killed mid-way continues after the last committed batch.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import IO, Any

from django.db import connection, connections, transaction
from django.utils import timezone

from events.ingestion.collector import collector_paused
from events.ingestion.formats.common import EVENT_ID_NAMESPACE, sdk_event_id
from events.ingestion.formats.native import NATIVE
from events.ingestion.formats.posthog import POSTHOG
from events.ingestion.formats.segment import SEGMENT_BATCH
from events.ingestion.gate import json_load
from events.ingestion.identities import accounts_attribute, identities_touch_emails, memberships_of
from events.ingestion.services import (
    ValidatedBatch,
    items_validated,
    row_maker,
    validated_classify,
    validated_store,
)
from events.ingestion.validation import ALLOWED_FIELDS, IngestError
from events.models import ImportRun

FORMATS = ("native", "posthog", "segment", "csv")
# Rows per batch: one transaction each (the checkpoint moves with it). 5,000 (was 2,000) spreads
# the per-batch work (a commit, the identity and lookup statements) over more events; two
# batches are in memory at a time (one stored, one parsed ahead).
IMPORT_BATCH_ROWS = 5000
# Bytes of the file's head that, with its path and size, identify it for resuming.
FILE_KEY_HEAD_BYTES = 64 * 1024
REJECTION_SAMPLES = 5


@dataclass
class ImportOutcome:
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    parked: int = 0
    resumed_at_row: int = 0
    accounts: set[str] = field(default_factory=set)
    rows_without_account: int = 0
    unregistered: Counter[str] = field(default_factory=Counter)
    first_at: datetime | None = None
    last_at: datetime | None = None
    rejections: list[str] = field(default_factory=list)


def file_key(path: str) -> str:
    """Identifies one file's content for resuming (its path, size and first 64 KiB)."""
    digest = hashlib.sha256(os.path.abspath(path).encode())
    digest.update(str(os.path.getsize(path)).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(FILE_KEY_HEAD_BYTES))
    return digest.hexdigest()


# --- Reading records -----------------------------------------------------------------------
class _CountingLines:
    """The file's lines, decoded, counting the bytes consumed (the resume offset)."""

    def __init__(self, handle: IO[bytes], offset: int) -> None:
        self.handle = handle
        self.offset = offset

    def __iter__(self) -> Iterator[str]:
        for line in self.handle:
            self.offset += len(line)
            yield line.decode("utf-8", errors="replace")


def _jsonl_records(handle: IO[bytes], offset: int) -> Iterator[tuple[int, Any]]:
    """(offset after the record, the line's bytes): parsed a batch at a time (``_lines_parse``)."""
    for line in handle:
        offset += len(line)
        if line.strip():
            yield offset, line


def _lines_parse(lines: list[bytes]) -> tuple[list[Any], list[str], bool]:
    """A batch of JSONL lines parsed with one decoder call (as one JSON array); when that
    fails, line by line, so each unreadable line is named and the others kept. The flag:
    whether orjson read every record (``json_load``)."""
    try:
        records, parsed = json_load(b"[" + b",".join(lines) + b"]")
        if isinstance(records, list) and len(records) == len(lines):
            return records, [], parsed
    except IngestError:
        pass
    records, problems = [], []
    parsed = True
    for line in lines:
        try:
            record, fast = json_load(line)
        except IngestError as exc:
            problems.append(exc.message)
            continue
        records.append(record)
        parsed = parsed and fast
    return records, problems, parsed


def csv_columns_map(header: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """Field -> column for a CSV: ``--map FIELD=COLUMN`` pairs, else columns named like fields."""
    unknown = sorted(set(mapping) - ALLOWED_FIELDS)
    if unknown:
        raise IngestError(
            f"--map names unknown field(s) {', '.join(unknown)}; fields: {', '.join(sorted(ALLOWED_FIELDS))}."
        )
    missing = sorted(column for column in mapping.values() if column not in header)
    if missing:
        raise IngestError(f"--map names column(s) the CSV does not have: {', '.join(missing)}.")
    columns = {name: name for name in ALLOWED_FIELDS if name in header}
    columns.update(mapping)
    if "event_type" not in columns:
        raise IngestError("The CSV needs an event_type column (or --map event_type=COLUMN).")
    return columns


def _csv_record(row: dict[str, str], columns: dict[str, str]) -> dict[str, Any]:
    """A CSV row as a native item: mapped columns become fields, the others metadata."""
    used = set(columns.values())
    item: dict[str, Any] = {}
    for name, column in columns.items():
        value = row.get(column)
        if value in (None, ""):
            continue
        if name == "metadata":
            try:
                item[name] = json.loads(value)
            except ValueError:
                item[name] = {"metadata": value}
        else:
            item[name] = value
    extra = {k: v for k, v in row.items() if k not in used and k is not None and v not in (None, "")}
    if extra:
        item["metadata"] = {**extra, **(item["metadata"] if isinstance(item.get("metadata"), dict) else {})}
    if "event_id" not in item:
        # No id column: the row's content is its identity, so a second import dedupes.
        canonical = json.dumps(row, sort_keys=True, ensure_ascii=False)
        item["event_id"] = str(uuid.uuid5(EVENT_ID_NAMESPACE, f"csv:{canonical}"))
    return item


def _csv_records(
    handle: IO[bytes], offset: int, header: list[str], columns: dict[str, str]
) -> Iterator[tuple[int, Any]]:
    lines = _CountingLines(handle, offset)
    reader = csv.DictReader(iter(lines), fieldnames=header)
    for row in reader:
        yield lines.offset, _csv_record(row, columns)


# --- Translating and storing ------------------------------------------------------------------
def _metadata_max(file_format: str) -> int:
    return {"posthog": POSTHOG.limits.max_item_bytes, "segment": SEGMENT_BATCH.limits.max_item_bytes}.get(
        file_format, NATIVE.limits.max_item_bytes
    )


def _rows(file_format: str, records: list[Any], *, now: datetime, parsed: bool) -> ValidatedBatch:
    """The records made into rows through their format's adapter, one pass each (see
    events/ingestion/formats/); an import parks unregistered names."""
    maker = row_maker(
        source=None, now=now, park_unregistered=True, metadata_max_bytes=_metadata_max(file_format), parsed=parsed
    )
    if file_format == "posthog":
        return POSTHOG.rows(records, maker)
    if file_format == "segment":
        return SEGMENT_BATCH.rows({"batch": records}, maker)
    for record in records:
        if isinstance(record, dict) and record.get("event_id") is None:
            # No id on the line: its content is its identity (as a CSV row's is), so a second
            # import of the file dedupes instead of storing every such line again.
            content = {key: value for key, value in record.items() if key != "event_id"}
            record["event_id"] = sdk_event_id(None, source="native", message=content)
    return items_validated(maker, records)


def _observe(outcome: ImportOutcome, batch: ValidatedBatch) -> None:
    """What --dry-run reports, from the rows validation would store (nothing is written)."""
    memberships = memberships_of(batch.identities)
    outcome.rejected += len(batch.rejected)
    for rejection in batch.rejected[: max(0, REJECTION_SAMPLES - len(outcome.rejections))]:
        outcome.rejections.append(json.dumps(rejection["errors"])[:300])
    rows = batch.rows
    for row in rows:
        if not row.tenant_id and row.user_id in memberships:
            row.tenant_id = memberships[row.user_id]
    accounts_attribute(rows)  # a read: the accounts already remembered for these users
    for row in rows:
        outcome.accepted += 1
        if row.tenant_id:
            outcome.accounts.add(row.tenant_id)
        else:
            outcome.rows_without_account += 1
        if row.parked:
            outcome.unregistered[row.event_type] += 1
        outcome.first_at = min(outcome.first_at or row.occurred_at, row.occurred_at)
        outcome.last_at = max(outcome.last_at or row.occurred_at, row.occurred_at)


def events_import(
    *,
    path: str,
    file_format: str,
    column_map: dict[str, str] | None = None,
    dry_run: bool = False,
    batch_rows: int = IMPORT_BATCH_ROWS,
    progress: Callable[[int], None] | None = None,
) -> ImportOutcome:
    """Import one file (see the module docstring). ``progress`` is called with the bytes read
    after each batch. Raises IngestError for a file it cannot read at all."""
    if file_format not in FORMATS:
        raise IngestError(f"Unknown format '{file_format}'; use one of {', '.join(FORMATS)}.")
    outcome = ImportOutcome()
    key = file_key(path)
    run: ImportRun | None = None
    offset = 0
    if not dry_run:
        run, _ = ImportRun.objects.get_or_create(
            file_key=key, defaults={"path": os.path.abspath(path)[:1000], "file_format": file_format}
        )
        if run.finished_at is not None:
            # Imported before: run it again from the start (the ids dedupe; nothing is stored twice).
            ImportRun.objects.filter(pk=run.pk).update(
                bytes_done=0, rows_done=0, accepted=0, duplicates=0, rejected=0, finished_at=None
            )
            run.refresh_from_db()
        offset = run.bytes_done
        outcome.resumed_at_row = run.rows_done
    with open(path, "rb") as handle:
        if file_format == "csv":
            header_line = handle.readline()
            header = next(csv.reader(io.StringIO(header_line.decode("utf-8-sig"))), [])
            columns = csv_columns_map(header, column_map or {})
            handle.seek(max(offset, len(header_line)))
            records = _csv_records(handle, max(offset, len(header_line)), header, columns)
        else:
            if column_map:
                raise IngestError("--map applies to CSV files only.")
            handle.seek(offset)
            records = _jsonl_records(handle, offset)
        jsonl = file_format != "csv"
        # The thread reads on its own connection, so it sees committed rows only: inside a caller's
        # transaction (whose rules or registry it could not see) it parses and translates only.
        ahead = not dry_run and not connection.in_atomic_block
        prepare = partial(_prepare, file_format=file_format, jsonl=jsonl, validate=ahead, previous=_InFlight())
        # One batch is parsed, translated and validated (Python, in a thread) while the one before
        # it is classified and stored: the preparation runs while this thread waits for PostgreSQL.
        with collector_paused(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-parse") as pool:
            pending: _Pending | None = None
            for end, batch in _batched(records, batch_rows, outcome):
                prepared = pool.submit(prepare, batch)
                if pending is not None:
                    _batch_store(outcome, run, pending, file_format=file_format, dry_run=dry_run)
                    if progress:
                        progress(pending.end)
                pending = _Pending(prepared, end=end, rows=outcome.rows)
            if pending is None:  # nothing to read after the offset: the checkpoint still closes
                pending = _Pending(pool.submit(prepare, []), offset, 0)
            _batch_store(outcome, run, pending, file_format=file_format, dry_run=dry_run)
            if progress:
                progress(pending.end)
            # A registry reload during validation opened a connection in the thread: close it there.
            pool.submit(connections.close_all).result()
    if run is not None:
        ImportRun.objects.filter(pk=run.pk).update(finished_at=timezone.now(), updated_at=timezone.now())
    return outcome


@dataclass
class _Pending:
    """A batch read from the file: its preparation (a future), the offset after it and the
    rows read through it (the checkpoint's figures)."""

    prepared: Future[_Prepared]
    end: int
    rows: int


def _batched(
    records: Iterator[tuple[int, Any]], batch_rows: int, outcome: ImportOutcome
) -> Iterator[tuple[int, list[Any]]]:
    """(offset after the batch, its records), ``batch_rows`` at a time; counts the rows read."""
    batch: list[Any] = []
    end = 0
    for end, record in records:
        outcome.rows += 1
        batch.append(record)
        if len(batch) >= batch_rows:
            yield end, batch
            batch = []
    if batch:
        yield end, batch


@dataclass
class _Prepared:
    records: list[Any]
    parsed: bool  # orjson read every record (json_load)
    problems: list[str]  # lines that are not JSON
    now: datetime
    validated: ValidatedBatch | None  # None when not validated ahead (the store validates; a dry run, _observe)


@dataclass
class _InFlight:
    """What the batch prepared last (the one being stored while the next is prepared) writes
    that classification reads: whether it carries an email, and its memberships."""

    emails: bool = True  # before the first batch: nothing is known, so nothing is classified ahead
    memberships: dict[str, str] = field(default_factory=dict)


def _prepare(batch: list[Any], *, file_format: str, jsonl: bool, validate: bool, previous: _InFlight) -> _Prepared:
    """Parse (JSONL) and (``validate``) translate and validate one batch: no write, so it can run
    beside a store.

    Runs in the one preparation thread, batch after batch, so ``previous`` describes the batch
    being stored meanwhile. When neither carries an email, this batch's attribution (the stored
    batch's memberships over the remembered ones), classification and COPY text are prepared
    here too, with reads on this thread's connection: nothing the store in flight writes can
    change them.
    """
    now = timezone.now()
    problems: list[str] = []
    parsed = False  # a CSV's records are the reader's strings and its metadata column's json.loads
    if jsonl:
        batch, problems, parsed = _lines_parse(batch)
    validated = None
    if validate and batch:
        validated = _rows(file_format, batch, now=now, parsed=parsed)
        emails = identities_touch_emails(validated.identities)
        if not emails and not previous.emails:
            validated_classify(validated, source=None, now=now, in_flight=previous.memberships)
        previous.emails, previous.memberships = emails, memberships_of(validated.identities)
    return _Prepared(batch, parsed, problems, now, validated)


def _batch_store(
    outcome: ImportOutcome,
    run: ImportRun | None,
    pending: _Pending,
    *,
    file_format: str,
    dry_run: bool,
) -> None:
    prepared = pending.prepared.result()
    records, now = prepared.records, prepared.now
    outcome.rejected += len(prepared.problems)  # lines that are not JSON (each counted as a row)
    outcome.rejections.extend(prepared.problems[: max(0, REJECTION_SAMPLES - len(outcome.rejections))])
    if dry_run:
        if records:
            _observe(outcome, _rows(file_format, records, now=now, parsed=prepared.parsed))
        return
    assert run is not None
    with transaction.atomic():
        if records:
            validated = prepared.validated or _rows(file_format, records, now=now, parsed=prepared.parsed)
            receipt = validated_store(validated, source=None, now=now)
            rejected = len(receipt.rejected)
            for rejection in receipt.rejected[: max(0, REJECTION_SAMPLES - len(outcome.rejections))]:
                outcome.rejections.append(json.dumps(rejection["errors"])[:300])
            outcome.accepted += receipt.accepted
            outcome.duplicates += receipt.duplicates
            outcome.parked += receipt.parked
            outcome.rejected += rejected
        # The checkpoint commits with the batch: a crash after this line resumes after it.
        ImportRun.objects.filter(pk=run.pk).update(
            bytes_done=pending.end,
            rows_done=run.rows_done + pending.rows,
            accepted=run.accepted + outcome.accepted,
            duplicates=run.duplicates + outcome.duplicates,
            rejected=run.rejected + outcome.rejected,
            updated_at=now,
        )
