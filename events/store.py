"""Storing a validated batch: the one write of the ingest path (``events_ingest`` calls it
for every format, and ``import_events`` through it).

A batch is COPYed into a session-local staging table and moved into ``ops_events`` by one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING`` that also upserts the batch's
tenants and folds the stored rows into the real-user cache. Measured against the previous
form (the batch as two JSON documents unpacked by ``jsonb_array_elements``): COPY's text
parser costs PostgreSQL a fraction of what parsing and picking apart a jsonb document did,
and the web worker no longer JSON-encodes the columns nor has psycopg quote a ~200 KB
literal into the query (client-side binding); both were among the largest costs per event.

The staging table is ``ON COMMIT DELETE ROWS`` and the insert empties it as it reads it
(``DELETE ... RETURNING``), so two batches in one transaction (a test, an import) never see
each other's rows, and nothing survives a rollback.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from django.db import connection, transaction

from events.classification import real_users_fold_sql

if TYPE_CHECKING:
    from events.models import ApiKey
    from events.services import EventRow

# The unique index the ingest insert dedupes on (idempotency: a resent event id stores
# nothing): ops_events_tenant_event, per account, the key a table distributed by tenant_id keeps.
EVENTS_CONFLICT_TARGET = "(tenant_id, event_id)"

STAGE_TABLE = "ops_events_ingest_stage"
_STAGE_COLUMNS = (
    "event_id, tenant_id, user_id, session_id, event_type, occurred_at, friction_signal, is_real, "
    "exclusion_reason, metadata"
)
# Session-local (no WAL, no catalog bloat: created once per connection). Text, not the
# table's varchar(n): validation enforces the lengths, and the insert casts on the way in.
STAGE_CREATE_SQL = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} (
    event_id uuid NOT NULL, tenant_id text NOT NULL, user_id text NOT NULL, session_id text NOT NULL,
    event_type text NOT NULL, occurred_at timestamptz NOT NULL, friction_signal text NOT NULL,
    is_real boolean NOT NULL, exclusion_reason text NOT NULL, metadata jsonb NOT NULL
) ON COMMIT DELETE ROWS
"""
STAGE_COPY_SQL = f"COPY {STAGE_TABLE} ({_STAGE_COLUMNS}) FROM STDIN"

# Uses the unique index of EVENTS_CONFLICT_TARGET (ops_events_tenant_event) for the dedupe,
# customers_tenant_pkey for the tenants, ops_real_users_pkey for the fold.
EVENTS_INSERT_SQL = """
WITH batch AS (
    DELETE FROM {stage} RETURNING {columns}
), new_tenants AS (
    INSERT INTO customers_tenant (tenant_id, name, kind, first_seen_at, notes)
    SELECT DISTINCT tenant_id, '', 'customer', %(now)s, '' FROM batch WHERE tenant_id <> ''
    ON CONFLICT (tenant_id) DO NOTHING
), inserted AS (
    INSERT INTO ops_events (event_id, tenant_id, user_id, session_id, event_type, occurred_at,
                            received_at, metadata, source_id, friction_signal, is_real, exclusion_reason)
    SELECT event_id, tenant_id, user_id, session_id, event_type, occurred_at,
           %(now)s, metadata, %(source_id)s, friction_signal, is_real, exclusion_reason
    FROM batch
    ON CONFLICT {conflict_target} DO NOTHING
    RETURNING user_id, event_type, occurred_at, is_real
), real_users AS (
    -- The north star's real-user cache (events.models.RealUser), folded in the same
    -- statement from the rows actually stored.
    {real_users_fold}
)
SELECT count(*) FROM inserted
""".format(
    stage=STAGE_TABLE,
    columns=_STAGE_COLUMNS,
    conflict_target=EVENTS_CONFLICT_TARGET,
    real_users_fold=real_users_fold_sql(source="inserted e", where="TRUE"),
)

# COPY's text format gives a meaning to backslash, tab, newline and carriage return (tabs
# are counted instead: they separate the columns).
_COPY_SPECIAL_RE = re.compile(r"[\\\n\r]")
_HEAD_TABS = 8
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

# Connections (psycopg's, which live as long as the PostgreSQL session) whose staging table
# exists: created once per session, not once per batch.
_staged: WeakKeyDictionary[object, bool] = WeakKeyDictionary()


def _copy_text(rows: list[EventRow]) -> str:
    """The rows in COPY's text format, in ``_STAGE_COLUMNS`` order.

    Validation refused NUL and invalid Unicode; the metadata is the JSON text validation
    produced (JSON escapes its own control characters, so only its backslashes need doubling).
    """
    lines = []
    for r in rows:
        fields = (r.event_id, r.tenant_id, r.user_id, r.session_id, r.event_type, r.occurred_at.isoformat(),
                  r.friction_signal, "t" if r.is_real else "f", r.exclusion_reason)  # fmt: skip
        head = "\t".join(fields)
        # Rare: ids with a backslash or a control character.
        if head.count("\t") != _HEAD_TABS or _COPY_SPECIAL_RE.search(head):
            head = "\t".join(v.translate(_COPY_ESCAPES) for v in fields)
        metadata = r.metadata_json
        if "\\" in metadata:
            metadata = metadata.replace("\\", "\\\\")
        lines.append(f"{head}\t{metadata}\n")
    return "".join(lines)


def event_rows_store(rows: list[EventRow], *, source: ApiKey | None, now: datetime) -> int:
    """Insert rows; returns how many were new (the rest were duplicates).

    Two identical batches racing are safe: the unique index on the conflict target makes
    the second insert wait for the first and then skip its rows.
    """
    if not rows:
        return 0
    text = _copy_text(rows)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        raw = connection.connection
        if raw not in _staged:
            cursor.execute(STAGE_CREATE_SQL)
            # Marked once the creation committed: a rolled back transaction takes the table with it.
            transaction.on_commit(lambda: _staged.__setitem__(raw, True))
        with cursor.cursor.copy(STAGE_COPY_SQL) as copy:
            copy.write(text)
        cursor.execute(EVENTS_INSERT_SQL, {"now": now, "source_id": source.pk if source else None})
        (inserted,) = cursor.fetchone()
    return int(inserted)
