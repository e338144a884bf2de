"""What the engine must know when the database is a Citus coordinator (nothing, on plain PostgreSQL).

The fold's watermark is the coordinator's ``ingest_xid`` read against the coordinator's snapshot.
Citus commits a distributed transaction on the coordinator first and sends ``COMMIT PREPARED`` to
the workers afterwards, so for a moment a transaction the snapshot calls finished still has rows a
worker does not show. ``prepared_transactions_settle`` closes that window by construction: it runs
after the snapshot is taken and waits until every distributed transaction then prepared on any
node has committed or aborted. A transaction finished in the snapshot committed locally after
preparing everywhere, so at that moment it was either committed on every node or prepared on one:
once those prepared are gone, every row the snapshot calls visible can be read on its worker.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection

from core.rows import rows_as_dicts

CITUS_PRESENT_SQL = "SELECT 1 FROM pg_extension WHERE extname = 'citus'"

# Citus names its prepared transactions citus_<initiator group>_<pid>_<transaction>_<connection>.
# run_command_on_all_nodes answers per node; a node it cannot reach answers success = false.
PREPARED_ON_NODES_SQL = r"""
SELECT nodeid, success, result
FROM run_command_on_all_nodes($$SELECT coalesce(string_agg(gid, ' '), '') FROM pg_prepared_xacts WHERE gid LIKE 'citus\_%'$$)
"""
# A session that writes several shards and then reads them uses one connection per node (Citus's setting).
SEQUENTIAL_SQL = "SET citus.multi_shard_modify_mode TO 'sequential'"
RECOVER_SQL = "SELECT recover_prepared_transactions() AS recovered"


class ClusterNotSettled(RuntimeError):
    """Distributed transactions stay in doubt, or a node is unreachable: folding now could skip rows."""


def citus_present() -> bool:
    """Whether this database is a Citus coordinator (remembered per connection: one probe each)."""
    if connection.vendor != "postgresql":
        return False
    connection.ensure_connection()
    key = id(connection.connection)
    cached = getattr(connection, "_opsconsole_citus", None)
    if cached is None or cached[0] != key:
        with connection.cursor() as cursor:
            cursor.execute(CITUS_PRESENT_SQL)
            cached = (key, cursor.fetchone() is not None)
        setattr(connection, "_opsconsole_citus", cached)  # noqa: B010 (per connection, not a declared attribute)
    return cached[1]


def citus_session_configure(sender=None, connection=None, **kwargs) -> None:
    """On each new connection to a coordinator: run multi-shard writes over one connection per node.

    A transaction that writes several shards of a table and then reads or writes them again (a
    recompute, a playbook pass, a reference-table edit after a distributed read) otherwise fails
    when Citus opened parallel connections for the first statement.
    """
    from django.db import connection as default

    target = connection or default
    if target.vendor != "postgresql":
        return
    with target.cursor() as cursor:
        cursor.execute(CITUS_PRESENT_SQL)
        present = cursor.fetchone() is not None
        if present:
            cursor.execute(SEQUENTIAL_SQL)
    setattr(target, "_opsconsole_citus", (id(target.connection), present))  # noqa: B010 (as above)


def _prepared_now() -> set[tuple[int, str]]:
    with connection.cursor() as cursor:
        cursor.execute(PREPARED_ON_NODES_SQL)
        rows = rows_as_dicts(cursor)
    prepared: set[tuple[int, str]] = set()
    for row in rows:
        nodeid, success, result = row["nodeid"], row["success"], row["result"]
        if not success:
            raise ClusterNotSettled(f"Citus node {nodeid} did not answer ({result}); the fold waits for it.")
        prepared.update((nodeid, gid) for gid in result.split())
    return prepared


def prepared_transactions_settle() -> int:
    """Call right after taking the fold's snapshot; returns how many in-flight commits it waited for.

    Raises ``ClusterNotSettled`` (the run fails, the watermark stays, the next run retries) when a
    node is unreachable or a prepared transaction outlives ``METRICS_CITUS_SETTLE_SECONDS`` even
    after Citus's own recovery ran.
    """
    if not citus_present():
        return 0
    waiting = _prepared_now()
    seen = len(waiting)
    deadline = time.monotonic() + settings.METRICS_CITUS_SETTLE_SECONDS
    recovered = False
    while waiting:
        if time.monotonic() >= deadline:
            if recovered:
                names = ", ".join(sorted(gid for _, gid in waiting)[:5])
                raise ClusterNotSettled(
                    f"{len(waiting)} distributed transaction(s) still prepared on the workers ({names}); "
                    "the fold did not run and its watermark did not move."
                )
            # An initiator that died between its commit and COMMIT PREPARED leaves them to recovery.
            with connection.cursor() as cursor:
                cursor.execute(RECOVER_SQL)
            recovered = True
            deadline = time.monotonic() + settings.METRICS_CITUS_SETTLE_SECONDS
        time.sleep(0.02)
        waiting &= _prepared_now()
    return seen
