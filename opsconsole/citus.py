"""Running on a Citus cluster: which table lives where, and distributing a database in place.

Every per-account table is distributed by ``tenant_id`` and co-located with ``ops_events``, so a
tenant's events, rollups, metrics and call-list rows sit on one node and every statement that
groups or joins by tenant runs there. The registries a distributed statement joins (the event
vocabulary, the playbooks) are reference tables, copied to every node. Everything else (keys,
settings, singletons, Django's own tables) stays on the coordinator.

On plain PostgreSQL nothing here runs (``core.flavour``: one server holds every row) and the schema is Django's.
``distribute`` is idempotent: a table already distributed is left alone, so ``migrate`` (which
calls it after every run when Citus is installed) and ``manage.py distribute`` can run any time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import connection, transaction

from core.flavour import flavour
from core.rows import rows_as_dicts

log = logging.getLogger(__name__)

DISTRIBUTION_COLUMN = "tenant_id"
# The first table is the co-location group's anchor; the others are placed beside it.
DISTRIBUTED = (
    "ops_events",
    "customers_tenant",
    "ops_tenant_metrics",
    "ops_rollup_tenant_day",
    "ops_rollup_tenant_span",
    "ops_rollup_session_friction",
    "ops_rollup_tenant_user_day",
    "ops_rollup_tenant_day_summary",
    "ops_rollup_tenant_period",
    "ops_tenant_lifecycle",
    "ops_tenant_risk_day",
    "ops_account_traits",
    "ops_playbook_match",
    "playbooks_interventionrecord",
    "playbooks_churnrecord",
    "ops_snooze",
    "ops_tenant_contacts",
    # A recompute's dirty set (customers/metrics/scope.py): beside the tables its queries join it to.
    "ops_metrics_dirty",
    # A recompute's metrics rows on their way to the shards (customers/metrics/staged.py).
    "ops_metrics_staged",
)
REFERENCE = (
    "events_eventtype",
    # Read by the reclassification, which runs on every node: the keys, the rules, the identify traits.
    "events_apikey",
    "events_internaluserrule",
    "events_useragentpattern",
    "ops_user_profiles",
    "playbooks_playbook",
    "playbooks_triggercondition",
    "playbooks_playbookaction",
)


@dataclass(frozen=True)
class ForeignKey:
    table: str
    name: str
    definition: str
    target: str


# pg_dist_partition: partmethod 'h' is hash-distributed, 'n' a reference (or citus local) table.
PLACED_SQL = "SELECT logicalrelid::regclass::text AS name, partmethod FROM pg_dist_partition"

FOREIGN_KEYS_SQL = """
SELECT c.conrelid::regclass::text AS table, c.conname AS name, pg_get_constraintdef(c.oid) AS definition,
       c.confrelid::regclass::text AS target
FROM pg_constraint c
WHERE c.contype = 'f' AND (c.conrelid::regclass::text = ANY(%(tables)s) OR c.confrelid::regclass::text = ANY(%(tables)s))
"""

PRIMARY_KEY_SQL = """
SELECT c.conname AS name, array_agg(a.attname::text ORDER BY a.attnum) AS columns
FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
WHERE c.contype = 'p' AND c.conrelid = %(table)s::regclass
GROUP BY c.conname
"""


# Citus's own functions over its catalogue (no table of the project is read by an index).
# Several shards are written and then read in one transaction: Citus must use one connection per node.
SEQUENTIAL_LOCAL_SQL = "SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"
REFERENCE_TABLE_CREATE_SQL = "SELECT create_reference_table(%s)"
DISTRIBUTED_TABLE_CREATE_SQL = "SELECT create_distributed_table(%s, %s, colocate_with => %s)"
LOCAL_ROWS_TRUNCATE_SQL = "SELECT truncate_local_data_after_distributing_table(%s)"


def _placement() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(PLACED_SQL)
        return {row["name"]: row["partmethod"] for row in rows_as_dicts(cursor)}


def _kind(table: str) -> str:
    if table in DISTRIBUTED:
        return "distributed"
    if table in REFERENCE:
        return "reference"
    return "local"


def foreign_key_kept(fk: ForeignKey) -> bool:
    """Whether Citus can hold this key once the tables are placed.

    It can between co-located tables on the distribution column, from a distributed or reference
    table to a reference table, and between two coordinator tables. Any other key (a distributed
    row pointing at a coordinator table, or a coordinator row at a distributed one) is dropped:
    Django enforces ``on_delete`` itself, so what is lost is the database's second check.
    """
    source, target = _kind(fk.table), _kind(fk.target)
    if source == "distributed" and target == "distributed":
        return f"({DISTRIBUTION_COLUMN})" in fk.definition.split("REFERENCES")[0]
    if target == "reference":
        return source in ("distributed", "reference")
    return source == target == "local"


def distribute(*, stdout=None) -> list[str]:
    """Place every table as the plan says; returns what it did, one line per change (empty: nothing to do)."""
    if flavour().rows_on_one_server:
        return []
    placed = _placement()
    todo_reference = [t for t in REFERENCE if t not in placed]
    todo_distributed = [t for t in DISTRIBUTED if t not in placed]
    if not todo_reference and not todo_distributed:
        return []
    done: list[str] = []
    all_tables = list(DISTRIBUTED + REFERENCE)
    with transaction.atomic(), connection.cursor() as cursor:
        # Several shards are written and then read in this one transaction.
        cursor.execute(SEQUENTIAL_LOCAL_SQL)
        cursor.execute(FOREIGN_KEYS_SQL, {"tables": all_tables})
        fks = [ForeignKey(**row) for row in rows_as_dicts(cursor)]
        # Keys first: Citus refuses to place a table that a key binds to a table of another kind.
        for fk in fks:
            cursor.execute(f'ALTER TABLE {fk.table} DROP CONSTRAINT "{fk.name}"')
        for table in todo_reference:
            cursor.execute(REFERENCE_TABLE_CREATE_SQL, [table])
            _local_rows_drop(cursor, table)
            done.append(f"{table}: reference table")
        for table in todo_distributed:
            _primary_key_with_tenant(cursor, table)
            anchor = DISTRIBUTED[0] if table != DISTRIBUTED[0] else "default"
            cursor.execute(DISTRIBUTED_TABLE_CREATE_SQL, [table, DISTRIBUTION_COLUMN, anchor])
            _local_rows_drop(cursor, table)
            done.append(f"{table}: distributed by {DISTRIBUTION_COLUMN}")
        for fk in fks:
            if foreign_key_kept(fk):
                cursor.execute(f'ALTER TABLE {fk.table} ADD CONSTRAINT "{fk.name}" {fk.definition}')
            else:
                done.append(f"{fk.table}: foreign key {fk.name} dropped ({fk.definition}; Django enforces it)")
    for line in done:
        if stdout is not None:
            stdout.write(line)
        else:
            log.info("distribute: %s", line)
    return done


def _local_rows_drop(cursor, table: str) -> None:
    # Placing a table that holds rows copies them to the shards and leaves the originals in the
    # coordinator's shell table, where they would only take disk.
    cursor.execute(LOCAL_ROWS_TRUNCATE_SQL, [table])


def _primary_key_with_tenant(cursor, table: str) -> None:
    """Citus requires the distribution column in every unique key: (id) becomes (tenant_id, id)."""
    cursor.execute(PRIMARY_KEY_SQL, {"table": table})
    rows = rows_as_dicts(cursor)
    if not rows or DISTRIBUTION_COLUMN in rows[0]["columns"]:
        return
    name, columns = rows[0]["name"], rows[0]["columns"]
    cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    cursor.execute(
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}" PRIMARY KEY ({DISTRIBUTION_COLUMN}, {", ".join(columns)})'
    )
