"""How an incremental fold reaches the new events: through the ``ingest_xid`` index, also on a table (or, on
Citus, a shard) whose ``ingest_xid`` has no statistics yet, as after a load that autovacuum has not analyzed.
A plan that scans the whole table would read every stored event once per fold statement; so would one that
walks ``ops_events_real_type_time`` for the window's start, which statistics taken before the load's days
arrived make look selective.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection, transaction

from core.flavour import flavour
from customers.metrics.daily import SUMMARY_PARAMS
from customers.metrics.fold import NEW_EVENTS_WHERE, fold_statements
from customers.metrics.scope import dirty_tenants_begin
from tests.customers.conftest import NOW

HISTORY_EVENTS = 20_000
# Each stored event in a day of history, then ingested one transaction later (the rows' xids are the test's).
# The same rows %(days_ago)s days earlier are what the table held when it was last analyzed.
HISTORY_SQL = """
INSERT INTO ops_events (event_id, tenant_id, user_id, session_id, event_type, occurred_at, received_at, metadata,
                        friction_signal, is_real, exclusion_reason)
SELECT gen_random_uuid(), 't' || (g %% 40), 'u' || (g %% 400), 's' || (g %% 900), 'INCIDENT_VIEWED',
       %(now)s::timestamptz - %(days_ago)s * interval '1 day' - g * interval '4 seconds', %(now)s::timestamptz, '{}',
       '', true, ''
FROM generate_series(1, %(n)s) g
"""
INGEST_XID_STATISTICS_DROP_SQL = (
    "DELETE FROM pg_statistic WHERE starelid = '{table}'::regclass AND staattnum = "
    "(SELECT attnum FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attname = 'ingest_xid')"
)


@pytest.fixture
def events_without_statistics(metrics_db) -> Iterator[None]:
    """A day of stored events, ops_events kept from autovacuum, statistics taken when it held only older
    events (before the fold's window), and none on its ingest_xid."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE ops_events SET (autovacuum_enabled = off)")
    try:
        with connection.cursor() as cursor:
            cursor.execute(HISTORY_SQL, {"now": NOW, "n": HISTORY_EVENTS, "days_ago": 200})
            cursor.execute("ANALYZE ops_events")
            cursor.execute(HISTORY_SQL, {"now": NOW, "n": HISTORY_EVENTS, "days_ago": 0})
            if flavour().rows_on_one_server:
                cursor.execute(INGEST_XID_STATISTICS_DROP_SQL.format(table="ops_events"))
            else:
                statement = INGEST_XID_STATISTICS_DROP_SQL.format(table="%1$s")  # each shard by name
                cursor.execute(
                    "SELECT bool_and(success) AS done FROM run_command_on_shards('ops_events', %s)", [statement]
                )
                assert cursor.fetchone()[0]
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE ops_events RESET (autovacuum_enabled)")


def _new_events_params() -> dict:
    with connection.cursor() as cursor:
        # As a run taken right now would see it: the stored events were folded, none came since.
        cursor.execute("SELECT pg_current_snapshot()::text, pg_snapshot_xmin(pg_current_snapshot())::text")
        snapshot, xmin = cursor.fetchone()
    return {
        "watermark": xmin,
        "snapshot": snapshot,
        "folded": [],
        "new_watermark": xmin,
        "friction_types": ["REPLAY_ABORTED"],
        "start_day": NOW.date() - timedelta(days=89),
        "start_at": NOW - timedelta(days=89),
        "tz": "UTC",
        **SUMMARY_PARAMS,
    }


def test_an_incremental_fold_reads_the_new_events_through_the_ingest_xid_index_without_statistics(
    events_without_statistics,
):
    params = _new_events_params()
    plans = {}
    with transaction.atomic(), connection.cursor() as cursor:
        dirty_tenants_begin()
        for name, sql in fold_statements(NEW_EVENTS_WHERE, track_xids=True, mark_dirty=True):
            cursor.execute("EXPLAIN (COSTS OFF) " + sql, params)
            plans[name] = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    for name, plan in plans.items():
        assert re.search(r"Index (Only )?Scan (using|on) ops_events_ingest_xid", plan), f"{name}:\n{plan}"
        assert not re.search(r"Seq Scan on ops_events", plan), f"{name}:\n{plan}"
        # The window's start filters the new events; as an access path (an index or bitmap condition) it
        # walks every event since that day, however few the statistics say there are.
        # (Another table's index may be probed with an event's day: that condition reads e.occurred_at.)
        assert not re.search(r"(Index|Recheck) Cond: .*\(occurred_at >=", plan), f"{name}:\n{plan}"
