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

Most batches are all new, so the staged statement is the fallback: a batch is first COPYed
straight into ``ops_events`` inside a savepoint (COPY's multi-row inserts, no staging, no
speculative insertion), with its tenants and real users upserted from per-batch aggregates.
A batch holding any event already stored fails that COPY on ``ops_events_tenant_event``; the
savepoint is rolled back and the staged statement stores the new rows and skips the rest.
A caller whose whole transaction can be done again (a web request) goes without the
savepoint and does exactly that instead (``BatchRestage``).
On a Citus coordinator the same: a worker's unique violation reaches the coordinator as an
internal error of the COPY, told apart by the shard's index it names, and the savepoint's
rollback reaches the workers. The batch's ids are not looked up before the COPY: that
statement goes to every shard, and on the three-node cluster it cost more per batch than the
failed COPY of a resend does (BENCHMARKS.md).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import psycopg.errors
from django.db import DatabaseError, IntegrityError, InternalError, connection, transaction

from core.flavour import flavour
from core.rows import rows_as_dicts, value_of
from events.classification import real_users_fold_sql, real_users_upsert_sql
from events.ingestion.event_row import EventRow
from events.ingestion.identities import MEMBERSHIPS_UPSERT_SQL, memberships_params

if TYPE_CHECKING:
    from core.models import ApiKey

# The unique index the ingest insert dedupes on (idempotency: a resent event id stores
# nothing): ops_events_tenant_event, per account, the key a table distributed by tenant_id keeps.
EVENTS_CONFLICT_TARGET = "(tenant_id, event_id)"

STAGE_TABLE = "ops_events_ingest_stage"
# The COPY text's columns, for the staging table and for ops_events alike.
_COPY_COLUMNS = (
    "event_id, tenant_id, user_id, session_id, event_type, occurred_at, friction_signal, is_real, "
    "exclusion_reason, metadata, received_at, source_id"
)
# Session-local (no WAL, no catalog bloat: created once per connection). Text, not the
# table's varchar(n): validation enforces the lengths, and the insert casts on the way in.
STAGE_CREATE_SQL = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} (
    event_id uuid NOT NULL, tenant_id text NOT NULL, user_id text NOT NULL, session_id text NOT NULL,
    event_type text NOT NULL, occurred_at timestamptz NOT NULL, friction_signal text NOT NULL,
    is_real boolean NOT NULL, exclusion_reason text NOT NULL, metadata jsonb NOT NULL,
    received_at timestamptz NOT NULL, source_id bigint
) ON COMMIT DELETE ROWS
"""
STAGE_COPY_SQL = f"COPY {STAGE_TABLE} ({_COPY_COLUMNS}) FROM STDIN"
# The fast path: every index of ops_events is maintained as by any insert; the unique one
# (ops_events_tenant_event) refuses the whole COPY when one event is already stored.
EVENTS_COPY_SQL = f"COPY ops_events ({_COPY_COLUMNS}) FROM STDIN"

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
           received_at, metadata, source_id, friction_signal, is_real, exclusion_reason
    FROM batch
    ON CONFLICT {conflict_target} DO NOTHING
    RETURNING user_id, event_type, occurred_at, is_real
), real_users AS (
    -- The north star's real-user cache (events.models.RealUser), folded in the same
    -- statement from the rows actually stored.
    {real_users_fold}
)
SELECT count(*) AS inserted FROM inserted
""".format(
    stage=STAGE_TABLE,
    columns=_COPY_COLUMNS,
    conflict_target=EVENTS_CONFLICT_TARGET,
    real_users_fold=real_users_fold_sql(source="inserted e", where="TRUE"),
)

# How a worker's unique violation on ops_events_tenant_event reads on a Citus coordinator: an
# internal error whose message names the shard's copy of the index (ops_events_tenant_event_<shard id>).
_CITUS_STORED_RE = re.compile(r'violates unique constraint "ops_events_tenant_event_\d+"')

# The real-interaction types of the registry (a few rows of events_eventtype), and whether they are
# still the web worker's cached ones (same snapshot as the statement's other parts).
_REGISTRY_NAMES_SQL = (
    "SELECT coalesce(array_agg(name::text), '{}') AS names FROM events_eventtype WHERE counts_as_real_interaction"
)
_REGISTRY_CURRENT_SQL = "names @> %(real_types)s::text[] AND names <@ %(real_types)s::text[]"
# The rules version the rows were made with still in force (events_classificationstate_pkey).
_RULES_CONFIRMED_SQL = """
        AND COALESCE((SELECT rules_version FROM events_classificationstate WHERE id = 1), 0) = %(rules_version)s"""
# Each user's first and last event of the batch of a real-interaction type, in user order (the row locks'
# order: no deadlock between concurrent batches); ``{where}`` may hold the fold back.
_BATCH_USERS_SQL = """
    SELECT u.user_id, u.first_at, u.last_at
    FROM unnest(%(users)s::text[], %(firsts)s::text[]::timestamptz[], %(lasts)s::text[]::timestamptz[])
         AS u(user_id, first_at, last_at){where}
    ORDER BY u.user_id"""

# After the fast path's COPY: the batch's tenants (customers_tenant_pkey), and the real-user
# fold (ops_real_users_pkey) from each user's first and last event of a type that counts as a
# real interaction, which is all the fold reads of the rows. The types are the web worker's
# cached registry: the statement answers whether they are still the table's (same snapshot),
# and the caller rolls the batch back to the staged statement when they are not.
_BATCH_UPSERTS_SQL = """
WITH registry AS (
    {registry_names}
), current AS (
    SELECT {registry_current}{classification} AS ok FROM registry
){new_tenants}{memberships}, real_users AS (
    {real_users_upsert}
)
SELECT ok AS registry_current FROM current
"""
_REAL_USERS_UPSERT_SQL = real_users_upsert_sql(_BATCH_USERS_SQL.format(where="\n    WHERE (SELECT ok FROM current)"))
_NEW_TENANTS_SQL = """, new_tenants AS (
    INSERT INTO customers_tenant (tenant_id, name, kind, first_seen_at, notes)
    SELECT tenant_id, '', 'customer', %(now)s, '' FROM unnest(%(tenants)s::text[]) AS t(tenant_id)
    ON CONFLICT (tenant_id) DO NOTHING
)"""
# The store's confirmation of the rows' classification as made (events/ingestion/classify.py,
# ``classification_unconfirmed``) in place of the look-up before the COPY: the rules version still
# in force and no tenant of the batch of another kind than customer (customers_tenant_pkey; the
# tenants this statement adds are customers).
_CLASSIFICATION_CONFIRMED_SQL = (
    _RULES_CONFIRMED_SQL
    + """
        AND NOT EXISTS (SELECT 1 FROM customers_tenant
                        WHERE tenant_id = ANY(%(tenants)s::text[]) AND kind <> 'customer')"""
)
# The batch's memberships (identities.MEMBERSHIPS_UPSERT_SQL, ops_user_accounts_pkey), when the caller leaves
# them to the store: in its statement, one round trip fewer than a statement of their own before the COPY.
_MEMBERSHIPS_CTE = f""", memberships AS ({MEMBERSHIPS_UPSERT_SQL})"""


def _batch_upserts_sql(*, confirmed: bool, memberships: bool) -> str:
    return _BATCH_UPSERTS_SQL.format(
        registry_names=_REGISTRY_NAMES_SQL,
        registry_current=_REGISTRY_CURRENT_SQL,
        classification=_CLASSIFICATION_CONFIRMED_SQL if confirmed else "",
        new_tenants=_NEW_TENANTS_SQL,
        memberships=_MEMBERSHIPS_CTE if memberships else "",
        real_users_upsert=_REAL_USERS_UPSERT_SQL,
    )


# (classification confirmed, memberships carried) -> the fast path's statement.
_BATCH_UPSERTS = {
    (confirmed, memberships): _batch_upserts_sql(confirmed=confirmed, memberships=memberships)
    for confirmed in (False, True)
    for memberships in (False, True)
}
BATCH_UPSERTS_SQL = _BATCH_UPSERTS[False, False]
BATCH_UPSERTS_CHECKED_SQL = _BATCH_UPSERTS[True, False]


# On Citus the fast path's statement is split in three, sent as one query (one round trip), each
# planned where it runs: inside one statement, the distributed customers_tenant is planned through the
# coordinator, and the reference table events_eventtype makes Citus plan the real-user upsert too (its
# ``current`` CTE a subplan whose result is written out and read back for every batch), while
# ops_real_users is the coordinator's own table, which PostgreSQL alone plans. ``citus_batch_upserts``.
# The registry check (and, for a web request's batch, the rules version its rows were made with):
# events_eventtype is a reference table with a copy on the coordinator, events_classificationstate_pkey.
def _citus_batch_check_sql(classification: str) -> str:
    return f"SELECT {_REGISTRY_CURRENT_SQL}{classification} AS registry_current\nFROM ({_REGISTRY_NAMES_SQL}) AS registry\n"


CITUS_BATCH_CHECK_SQL = _citus_batch_check_sql("")
CITUS_BATCH_CHECKED_SQL = _citus_batch_check_sql(_RULES_CONFIRMED_SQL)
# The real-user fold alone (ops_real_users_pkey): no distributed or reference table, so PostgreSQL plans it.
# It runs whatever the check answers: a batch the check refuses is rolled back whole.
CITUS_REAL_USERS_UPSERT_SQL = real_users_upsert_sql(_BATCH_USERS_SQL.format(where=""))
# A web request's batch whose tenants no look-up read: which of them customers_tenant holds, and their
# kinds (the confirmation that none is internal, test or demo, as BATCH_UPSERTS_CHECKED_SQL's). Alone,
# `tenant_id = ANY(...)` on the distribution column (customers_tenant_pkey) goes only to the shards
# holding the batch's tenants.
CITUS_TENANTS_READ_SQL = "SELECT tenant_id, kind FROM customers_tenant WHERE tenant_id = ANY(%(tenants)s)"


def citus_tenants_insert_sql(count: int) -> str:
    """The batch's ``count`` tenants, ``%(tenant_<i>)s``, as multi-row VALUES (customers_tenant_pkey), for Citus:
    straight to each tenant's shard (inside a larger statement Citus would plan it through the coordinator)."""
    values = ", ".join(f"(%(tenant_{i})s, '', 'customer', %(now)s, '')" for i in range(count))
    return (
        f"INSERT INTO customers_tenant (tenant_id, name, kind, first_seen_at, notes) VALUES {values} "
        "ON CONFLICT (tenant_id) DO NOTHING"
    )


def citus_batch_upserts(cursor: Any, aggregates: dict[str, Any], *, classification: int | None) -> bool:
    """On Citus, the fast path's statements after its COPY, sent as one query (client-side binding;
    each statement's answer is one result of the query); returns whether the rows stand, as
    BATCH_UPSERTS_SQL's ``registry_current``: the cached registry current and, with ``classification``,
    that rules version in force and no tenant of the batch of another kind than customer.

    With ``classification`` (a web request's batch, whose tenants no look-up read) the batch's tenants are
    read in the query (their kinds confirmed) and the few customers_tenant does not hold are inserted by a
    statement after it. Each batch reads them: a process that remembered them would miss a tenant deleted
    since (in admin, or by a restore), which the batch must register again. Without it the batch's tenants
    were read already (``classify_batch``) and ``aggregates["tenants"]`` are the new ones, inserted in the
    same query.
    """
    tenants = aggregates["tenants"]
    check = CITUS_BATCH_CHECK_SQL if classification is None else CITUS_BATCH_CHECKED_SQL
    statements = [check, CITUS_REAL_USERS_UPSERT_SQL]
    params = {**aggregates, "rules_version": classification}
    if classification is not None and tenants:
        cursor.execute(";\n".join([CITUS_TENANTS_READ_SQL, *statements]), params)  # params["tenants"]: the batch's
        kinds = {row["tenant_id"]: row["kind"] for row in rows_as_dicts(cursor)}
        cursor.nextset()
        current = bool(value_of(cursor, "registry_current"))
        if not current or any(kind != "customer" for kind in kinds.values()):
            return False
        new = [tenant for tenant in tenants if tenant not in kinds]
        if new:
            cursor.execute(citus_tenants_insert_sql(len(new)), {"now": aggregates["now"], **_tenant_params(new)})
        return True
    if tenants:
        statements.insert(0, citus_tenants_insert_sql(len(tenants)))
        params.update(_tenant_params(tenants))
    cursor.execute(";\n".join(statements), params)
    if tenants:
        cursor.nextset()  # the insert's answer comes first
    return bool(value_of(cursor, "registry_current"))


def _tenant_params(tenants: list[str]) -> dict[str, str]:
    return {f"tenant_{i}": tenant for i, tenant in enumerate(tenants)}


# COPY's text format gives a meaning to backslash, tab, newline and carriage return (tabs
# are counted instead: they separate the columns).
_HEAD_TABS = 8
NULL_TEXT = "\\N"  # COPY text's NULL
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

# Connections (psycopg's, which live as long as the PostgreSQL session) whose staging table
# exists: created once per session, not once per batch.
_staged: WeakKeyDictionary[object, bool] = WeakKeyDictionary()


def _copy_text(rows: list[EventRow], *, received_at: str, source_id: int | None) -> str:
    """The rows in COPY's text format, in ``_COPY_COLUMNS`` order.

    Validation refused NUL and invalid Unicode; the metadata is the JSON text validation
    produced (JSON escapes its own control characters, so only its backslashes need doubling).
    The other columns are checked for COPY's special characters once for the whole batch: a
    batch with none (the usual one) escapes nothing.
    """
    tail = f"\t{received_at}\t{NULL_TEXT if source_id is None else source_id}\n"
    heads = [
        f"{r.event_id}\t{r.tenant_id}\t{r.user_id}\t{r.session_id}\t{r.event_type}\t{r.occurred_text or r.occurred_at.isoformat()}"
        f"\t{r.friction_signal}\t{'t' if r.is_real else 'f'}\t{r.exclusion_reason}"
        for r in rows
    ]
    joined = "".join(heads)
    if joined.count("\t") != _HEAD_TABS * len(heads) or "\\" in joined or "\n" in joined or "\r" in joined:
        heads = [_head_escaped(r) for r in rows]  # rare: ids with a backslash or a control character
    lines = []
    for head, r in zip(heads, rows, strict=True):
        metadata = r.metadata_json
        if "\\" in metadata:
            metadata = metadata.replace("\\", "\\\\")
        lines.append(f"{head}\t{metadata}{tail}")
    return "".join(lines)


def _head_escaped(r: EventRow) -> str:
    fields = (r.event_id, r.tenant_id, r.user_id, r.session_id, r.event_type, r.occurred_text or r.occurred_at.isoformat(),
              r.friction_signal, "t" if r.is_real else "f", r.exclusion_reason)  # fmt: skip
    return "\t".join(v.translate(_COPY_ESCAPES) for v in fields)


def _batch_aggregates(rows: list[EventRow], now: datetime, real_interaction: frozenset[str]) -> dict[str, Any]:
    """The fast path's upsert parameters: the batch's tenants, and each user's first and last
    real event of a type in ``real_interaction`` (timestamps as text: psycopg adapts a list of
    datetimes element by element, measured at several times the cost of the text)."""
    spans: dict[str, list[datetime]] = {}
    for r in rows:
        if r.is_real and r.user_id and r.event_type in real_interaction:
            span = spans.get(r.user_id)
            if span is None:
                spans[r.user_id] = [r.occurred_at, r.occurred_at]
            elif r.occurred_at < span[0]:
                span[0] = r.occurred_at
            elif r.occurred_at > span[1]:
                span[1] = r.occurred_at
    users = sorted(spans)
    return {
        "now": now,
        "real_types": sorted(real_interaction),
        "tenants": sorted({r.tenant_id for r in rows if r.tenant_id}),
        "users": users,
        "firsts": [spans[user][0].isoformat() for user in users],
        "lasts": [spans[user][1].isoformat() for user in users],
    }


class BatchRestage(Exception):
    """The fast path's COPY cannot stand and had no savepoint: the caller's transaction is to be
    rolled back, and the batch stored again with ``staged=True``."""


class _RegistryMoved(Exception):
    """The cached real-interaction types are not the table's: the staged statement folds instead."""


def _already_stored(error: DatabaseError) -> bool:
    """Whether Django's error is the unique index refusing an event stored before: an
    IntegrityError on plain PostgreSQL, an InternalError naming a shard's index on Citus."""
    cause = error.__cause__
    if isinstance(cause, psycopg.errors.UniqueViolation):
        return (cause.diag.constraint_name or "") == "ops_events_tenant_event"
    return isinstance(error, InternalError) and bool(_CITUS_STORED_RE.search(str(cause or error)))


def rows_copy_text(rows: list[EventRow], *, source: ApiKey | None, now: datetime) -> str:
    """What ``event_rows_store`` sends for these rows (an import prepares it ahead of the store)."""
    return _copy_text(rows, received_at=now.isoformat(), source_id=source.pk if source else None)


def event_rows_store(
    rows: list[EventRow],
    *,
    source: ApiKey | None,
    now: datetime,
    real_interaction: frozenset[str],
    text: str | None = None,
    savepoint: bool = True,
    staged: bool = False,
    classification: int | None = None,
    tenants_stored: frozenset[str] | None = None,
    memberships: dict[str, str] | None = None,
) -> int:
    """Insert rows; returns how many were new (the rest were duplicates).

    ``real_interaction`` is the registry's names that count as a real interaction, as the
    caller's cache has them (a stale set costs the staged path, never a wrong fold). ``text``
    is ``rows_copy_text`` of the rows when the caller prepared it.
    Two identical batches racing are safe: the unique index on the conflict target makes
    the second writer wait for the first and then skip its rows (on either path).

    ``savepoint=False`` saves the fast path's savepoint (two round trips) for a caller whose
    transaction holds nothing it could not do again: when the COPY cannot stand, this raises
    ``BatchRestage`` instead of falling back, and the caller rolls back and calls again with
    ``staged=True``.

    ``classification``: the rules version the rows stand classified with, unconfirmed
    (``classify.classification_unconfirmed``); the fast path's statement confirms it (on Citus reading
    the batch's tenants too), and when it cannot this raises ``BatchRestage`` (only without a savepoint).
    ``tenants_stored``: the batch's tenants this transaction already read in customers_tenant (on
    Citus, ``classify_batch``); the fast path inserts only the others, usually none.
    ``memberships``: user -> account, to record with the rows (``identities_apply`` left them to the
    store): in the fast path's statement, else in a statement of their own before the staged one.
    """
    if not rows:
        return 0
    if text is None:
        text = rows_copy_text(rows, source=source, now=now)
    assert classification is None or not (savepoint or staged), "an unconfirmed classification needs the restage"
    if not staged and _copied(
        rows,
        text,
        now=now,
        real_interaction=real_interaction,
        savepoint=savepoint,
        classification=classification,
        tenants_stored=tenants_stored,
        memberships=memberships,
    ):
        return len(rows)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if memberships:
            cursor.execute(MEMBERSHIPS_UPSERT_SQL, {**memberships_params(memberships), "now": now})
        raw = connection.connection
        if raw not in _staged:
            cursor.execute(STAGE_CREATE_SQL)
            # Marked once the creation committed: a rolled back transaction takes the table with it.
            transaction.on_commit(lambda: _staged.__setitem__(raw, True))
        # Django's error classes (a full disk, a timeout: the 503s of opsconsole/middleware.py), as for execute.
        with connection.wrap_database_errors, cursor.cursor.copy(STAGE_COPY_SQL) as copy:
            copy.write(text)
        cursor.execute(EVENTS_INSERT_SQL, {"now": now})
        inserted = value_of(cursor, "inserted")
    return int(inserted)


def _copied(
    rows: list[EventRow],
    text: str,
    *,
    now: datetime,
    real_interaction: frozenset[str],
    savepoint: bool,
    classification: int | None,
    tenants_stored: frozenset[str] | None,
    memberships: dict[str, str] | None,
) -> bool:
    """The fast path: True when the whole batch was new and is stored; False (nothing changed)
    when an event was already stored or the cached registry is stale (``BatchRestage`` then,
    without a savepoint to return to)."""
    try:
        # A savepoint inside the caller's transaction, unless the caller does without.
        with transaction.atomic(savepoint=savepoint), connection.cursor() as cursor:
            with connection.wrap_database_errors, cursor.cursor.copy(EVENTS_COPY_SQL) as copy:
                copy.write(text)
            aggregates = _batch_aggregates(rows, now, real_interaction)
            if tenants_stored is not None:
                # Read moments ago in this transaction; a tenant an admin deletes in between is not
                # re-created by this batch, as it is not when the delete commits just after its insert.
                aggregates["tenants"] = [t for t in aggregates["tenants"] if t not in tenants_stored]
            if flavour().subplans_through_coordinator:
                assert not memberships, "on Citus the memberships are a statement of their own (identities_apply)"
                current = citus_batch_upserts(cursor, aggregates, classification=classification)
            else:
                if classification is not None:
                    aggregates["rules_version"] = classification
                if memberships:
                    aggregates.update(memberships_params(memberships))
                cursor.execute(_BATCH_UPSERTS[classification is not None, bool(memberships)], aggregates)
                current = value_of(cursor, "registry_current")
            if not current:
                raise _RegistryMoved
        return True
    except (IntegrityError, InternalError) as error:
        if not _already_stored(error):
            raise
        if not savepoint and connection.in_atomic_block:
            raise BatchRestage from error
    except _RegistryMoved:
        if not savepoint and connection.in_atomic_block:
            raise BatchRestage from None
    return False
