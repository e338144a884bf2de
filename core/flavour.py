"""What differs between plain PostgreSQL and a Citus coordinator, each difference named by what it is.

Every app runs the same schema and, nearly always, the same statements on both. Where one must
differ, the app asks ``flavour()`` a named question, as Django's ORM asks ``connection.features``,
and keeps both of its statements side by side: the SQL stays with the app that owns the table, and
this module names no app and no table of one. What is the server's own business (configuring a
session, waiting for distributed commits) is done here.

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
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection as default_connection

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
# What a transaction sets for itself (SET LOCAL) is also set on the workers it touches.
SET_LOCAL_ON_WORKERS_SQL = "SET citus.propagate_set_commands TO 'local'"
RECOVER_SQL = "SELECT recover_prepared_transactions() AS recovered"


class ClusterNotSettled(RuntimeError):
    """Distributed transactions stay in doubt, or a node is unreachable: folding now could skip rows."""


@dataclass(frozen=True)
class Flavour:
    """A database's differences as facts (plain PostgreSQL's ``PLAIN``), and its own duties as methods."""

    name: str
    # One server holds every row: pg_dump of it is a whole backup, its catalog knows every table's
    # size, and a session's temp table can be joined to any table where that table's rows are.
    rows_on_one_server: bool
    # A distributed table read inside a larger statement (a CTE, a data-modifying CTE, a subquery
    # beside others) is a subplan whose rows pass through the coordinator; alone, a statement on the
    # distribution column goes straight to the shards holding it. Never so on one server.
    subplans_through_coordinator: bool
    # The CTE hint for a CTE that several parts of a statement read: none lets PostgreSQL materialize
    # it once; Citus inlines it (NOT MATERIALIZED), so each shard computes it from its own rows.
    cte_inline_hint: str
    # One statement may probe a table once per row it produces (a recursive CTE's loose index scan,
    # a LATERAL top-1 per name); Citus plans neither over a distributed table: one statement a probe.
    probes_in_one_statement: bool

    def session_configure(self, cursor: Any) -> None:
        """What each new connection runs first: nothing on one server."""

    def prepared_transactions_settle(self) -> int:
        """Call right after taking a snapshot that bounds a fold; returns how many commits it waited for.

        One server commits a transaction everywhere at once: nothing to wait for."""
        return 0


class CitusFlavour(Flavour):
    """A Citus coordinator (``CITUS``): the per-account tables' rows live in the workers' shards."""

    def session_configure(self, cursor: Any) -> None:
        """Run multi-shard writes over one connection per node. A transaction that writes several
        shards of a table and then reads or writes them again (a recompute, a playbook pass, a
        reference-table edit after a distributed read) otherwise fails when Citus opened parallel
        connections for the first statement.

        And a transaction's own settings (``SET LOCAL``: the fold's work_mem, jit off) reach the workers,
        where the shards' parts of its statements are planned and run; Citus keeps them on the
        coordinator unless told."""
        cursor.execute(SEQUENTIAL_SQL)
        cursor.execute(SET_LOCAL_ON_WORKERS_SQL)

    def prepared_transactions_settle(self) -> int:
        """Wait until every distributed transaction prepared now has committed or aborted.

        Raises ``ClusterNotSettled`` (the run fails, the watermark stays, the next run retries) when a
        node is unreachable or a prepared transaction outlives ``METRICS_CITUS_SETTLE_SECONDS`` even
        after Citus's own recovery ran.
        """
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
                with default_connection.cursor() as cursor:
                    cursor.execute(RECOVER_SQL)
                recovered = True
                deadline = time.monotonic() + settings.METRICS_CITUS_SETTLE_SECONDS
            time.sleep(0.02)
            waiting &= _prepared_now()
        return seen


PLAIN = Flavour(
    name="postgresql", rows_on_one_server=True, subplans_through_coordinator=False, cte_inline_hint="",
    probes_in_one_statement=True,
)  # fmt: skip
CITUS = CitusFlavour(
    name="citus", rows_on_one_server=False, subplans_through_coordinator=True,
    cte_inline_hint="NOT MATERIALIZED ", probes_in_one_statement=False,
)  # fmt: skip

# Where each connection keeps its flavour, with the id of the database session it was probed on.
_KEPT_ON = "_opsconsole_flavour"


def _probed(cursor: Any) -> Flavour:
    cursor.execute(CITUS_PRESENT_SQL)
    return CITUS if cursor.fetchone() is not None else PLAIN


def flavour(connection: Any = None) -> Flavour:
    """This database's flavour (``PLAIN`` or ``CITUS``), probed once per database session."""
    target = connection or default_connection
    target.ensure_connection()
    kept = getattr(target, _KEPT_ON, None)
    if kept is None or kept[0] != id(target.connection):
        with target.cursor() as cursor:
            kept = (id(target.connection), _probed(cursor))
        setattr(target, _KEPT_ON, kept)
    return kept[1]


def flavour_session_configure(sender: Any = None, connection: Any = None, **kwargs: Any) -> None:
    """On each new connection (Django's ``connection_created``): probe its flavour once and configure it."""
    target = connection or default_connection
    with target.cursor() as cursor:
        chosen = _probed(cursor)
        chosen.session_configure(cursor)
    setattr(target, _KEPT_ON, (id(target.connection), chosen))


def _prepared_now() -> set[tuple[int, str]]:
    with default_connection.cursor() as cursor:
        cursor.execute(PREPARED_ON_NODES_SQL)
        rows = rows_as_dicts(cursor)
    prepared: set[tuple[int, str]] = set()
    for row in rows:
        nodeid, success, result = row["nodeid"], row["success"], row["result"]
        if not success:
            raise ClusterNotSettled(f"Citus node {nodeid} did not answer ({result}); the fold waits for it.")
        prepared.update((nodeid, gid) for gid in result.split())
    return prepared
