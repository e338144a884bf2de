"""Which tenants a run recomputes: the run's dirty set and how queries reach it.

Every query of a run that may be limited to some tenants goes through here, so the
hooks of other apps (playbooks) never name the engine's table themselves.

On plain PostgreSQL the dirty set is the ``metrics_dirty`` temp table (session-local, no WAL,
dropped at commit). On a Citus cluster a coordinator's temp table cannot be joined on the
workers: every scoped statement would ship its rows to every shard as an intermediate result.
There the set is ``ops_metrics_dirty``, distributed by tenant and co-located with the events
and the rollups, so "the rows of the dirty tenants" is a semi-join each shard runs on its own
and filling it from a fold or the stale rows moves nothing through the coordinator. Its rows
never outlive the run's transaction (``dirty_tenants_end``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from core.flavour import flavour
from core.rows import row_as_dict

# Up to this share of the tenants dirty, a run reaches them one by one through primary keys.
DIRTY_LATERAL_MAX_SHARE = 0.25

DIRTY_TEMP_TABLE = "metrics_dirty"
DIRTY_CLUSTER_TABLE = "ops_metrics_dirty"  # customers.models.DirtyTenant

# JIT off: the signals and playbook queries cross jit_above_cost only when the rollups are
# large, and then spend longer compiling expressions than the compiled code saves.
JIT_OFF_SQL = "SET LOCAL jit = off"
DIRTY_TABLE_CREATE_SQL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {DIRTY_TEMP_TABLE} (tenant_id text PRIMARY KEY) ON COMMIT DROP"
)
# The statements below name the set as {dirty}: dirty_table() says which table it is on this database.
# Each id to the shard of its tenant on Citus (the table's primary key either way).
DIRTY_TENANTS_ADD_SQL = "INSERT INTO {dirty} (tenant_id) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING"
# Two counts: the dirty table (its primary key) and customers_tenant (its primary key). Plain PostgreSQL only.
DIRTY_SHARE_SQL = (
    f"SELECT (SELECT count(*) FROM {DIRTY_TEMP_TABLE}) AS dirty, (SELECT count(*) FROM customers_tenant) AS tenants"
)
DIRTY_COUNT_SQL = "SELECT count(*) AS n FROM {dirty}"
# The run's rows go before its transaction commits (Citus only: the temp table drops itself).
DIRTY_CLEAR_SQL = f"DELETE FROM {DIRTY_CLUSTER_TABLE}"
# Citus only: the shards' statistics of the set as the run filled it (its own rows count as live).
DIRTY_ANALYZE_SQL = f"ANALYZE {DIRTY_CLUSTER_TABLE}"


@dataclass(frozen=True)
class DirtySet:
    """Where a run keeps its dirty tenants, and the statements it runs on the set at each step."""

    table: str
    begin: tuple[str, ...]  # as the run starts (after JIT_OFF_SQL)
    filled: tuple[str, ...]  # once the run has filled the set (dirty_tenants_analyze)
    end: tuple[str, ...]  # just before the run's transaction commits
    lateral: bool  # whether a query may reach the set one tenant at a time (dirty_scope)


# On one server: a temp table, session-local, without WAL, dropped at commit, fresh each run.
TEMP_DIRTY_SET = DirtySet(table=DIRTY_TEMP_TABLE, begin=(DIRTY_TABLE_CREATE_SQL,), filled=(), end=(), lateral=True)
# On Citus the workers cannot join the coordinator's temp table: a co-located table whose rows the
# run deletes before it commits and whose shards it analyzes once filled (dirty_tenants_analyze).
SHARED_DIRTY_SET = DirtySet(
    table=DIRTY_CLUSTER_TABLE, begin=(), filled=(DIRTY_ANALYZE_SQL,), end=(DIRTY_CLEAR_SQL,), lateral=False
)

# A tenant's row is stale, besides new events, when it is missing, was computed for another
# day (every window moved), or its tenant's kind or plan limit was edited since.
# Uses the primary keys of customers_tenant and ops_tenant_metrics (a hash join; on Citus a
# co-located join whose rows each shard inserts into its own part of the dirty set).
STALE_TENANTS_SQL = """
INSERT INTO {dirty} (tenant_id)
SELECT t.tenant_id FROM customers_tenant t LEFT JOIN ops_tenant_metrics m ON m.tenant_id = t.tenant_id
WHERE (m.tenant_id IS NULL OR m.stale OR m.as_of IS DISTINCT FROM %(d)s::date OR m.inputs_kind IS DISTINCT FROM t.kind
       OR m.inputs_monthly_event_limit IS DISTINCT FROM t.monthly_event_limit){shard}
ON CONFLICT DO NOTHING
"""


def dirty_set() -> DirtySet:
    """This database's dirty set: a temp table where one server holds every row."""
    return TEMP_DIRTY_SET if flavour().rows_on_one_server else SHARED_DIRTY_SET


def dirty_table() -> str:
    """The table holding the running recompute's dirty tenants on this database."""
    return dirty_set().table


def stale_tenants_add_sql(*, shard: str = "") -> str:
    """STALE_TENANTS_SQL into this database's dirty set; ``shard``: an extra condition on ``t``."""
    return STALE_TENANTS_SQL.format(dirty=dirty_table(), shard=shard)


def tenant_shard_sql(column: str) -> str:
    """The shard of a tenant: a stable hash of its id, modulo the number of shards."""
    return f"(hashtext({column}) & 2147483647) %% %(shards)s = %(shard)s"


def dirty_tenants_begin() -> None:
    """The run's set of tenants whose metrics must be recomputed (empty); JIT off for the run.
    A run that calls this calls ``dirty_tenants_end`` just before its transaction commits."""
    with connection.cursor() as cursor:
        cursor.execute(JIT_OFF_SQL)
        for statement in dirty_set().begin:
            cursor.execute(statement)


def dirty_tenants_end() -> None:
    """Empty the run's set before its transaction commits. On Citus its rows would otherwise be
    committed, and a concurrent run (another shard task of a fan-out) would recompute them too;
    on plain PostgreSQL the temp table drops itself at commit."""
    with connection.cursor() as cursor:
        for statement in dirty_set().end:
            cursor.execute(statement)


def dirty_tenants_analyze() -> None:
    """On Citus, once a run has filled its set: measure it, so each shard plans its joins on the set
    with its real size. Autovacuum analyzes the shards between runs, and one that runs while a run
    holds rows leaves "pages, no rows": every later run was planned for one dirty tenant per shard,
    with nested loops that rescanned a rollup per tenant. Its lock, held until commit, holds up only
    a VACUUM, an ANALYZE or DDL of the set. Nothing to do on plain PostgreSQL (a fresh temp table)."""
    with connection.cursor() as cursor:
        for statement in dirty_set().filled:
            cursor.execute(statement)


def dirty_tenants_add(tenant_ids: list[str]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(DIRTY_TENANTS_ADD_SQL.format(dirty=dirty_table()), [tenant_ids])


def dirty_tenants_count() -> int:
    """How many tenants the running recompute rewrote (for a hook called with ``dirty_only``)."""
    with connection.cursor() as cursor:
        cursor.execute(DIRTY_COUNT_SQL.format(dirty=dirty_table()))
        return int(row_as_dict(cursor)["n"])


def dirty_scope() -> str:
    """How a query should reach the run's dirty tenants (tenant_rows_sql): one by one through the
    primary keys while they are a quarter of the tenants or fewer (an incremental run's busy
    few), by one hash join over whole tables above that (a new day's run, where all are dirty).
    On Citus always the semi-join: with the dirty set co-located, each shard joins its own part."""
    if not dirty_set().lateral:
        return "dirty"
    with connection.cursor() as cursor:
        cursor.execute(DIRTY_SHARE_SQL)
        counts = row_as_dict(cursor)
    return "lateral" if counts["dirty"] <= DIRTY_LATERAL_MAX_SHARE * counts["tenants"] else "dirty"


def dirty_tenants_sql(column: str) -> str:
    """``<column> IN (the tenants whose metrics this run rewrote)``: for hooks called with ``dirty_only``.

    A semi-join on the run's dirty set (a hash join), not ``= ANY(array)``, which is
    searched linearly for every row; on Citus a co-located one when ``column`` is the
    tenant of a distributed table.
    """
    return f"{column} IN (SELECT tenant_id FROM {dirty_table()})"


def tenant_rows_sql(table: str, where: str, *, scope: str) -> str:
    """A subquery of ``table``'s rows (alias ``x`` in ``where``) for the tenants a query covers.

    ``scope``: "all" tenants; "dirty", the run's dirty tenants by a hash
    semi-join (a scan of the whole table, cheapest when many tenants are dirty); or
    "lateral", the same tenants looked up one by one through ``table``'s primary key,
    which starts with tenant_id (cost proportional to those tenants' rows, not to the
    table: an incremental run's few busy tenants no longer pay for everyone's rows).
    The semi-join is on the dirty set, never ``= ANY(array)``, which is searched
    linearly for every row. "lateral" is plain PostgreSQL's only (``dirty_scope``).
    """
    if scope == "lateral":
        # OFFSET 0 keeps the planner from pulling the subquery up into a hash join over the
        # whole table (which it does, and which is what this scope exists to avoid).
        return (
            f"(SELECT x.* FROM {DIRTY_TEMP_TABLE} m CROSS JOIN LATERAL "
            f"(SELECT * FROM {table} x WHERE x.tenant_id = m.tenant_id AND {where} OFFSET 0) x)"
        )
    if scope == "dirty":
        where = f"{where} AND {dirty_tenants_sql('x.tenant_id')}"
    return f"(SELECT * FROM {table} x WHERE {where})"
