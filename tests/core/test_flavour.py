"""The database's flavour (core/flavour.py): probed once per database session, on every new connection."""

from __future__ import annotations

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from core.flavour import CITUS, CITUS_PRESENT_SQL, PLAIN, flavour
from tests.conftest import ON_CITUS

pytestmark = pytest.mark.django_db


def _probes(queries: CaptureQueriesContext) -> int:
    return sum(1 for q in queries.captured_queries if q["sql"] == CITUS_PRESENT_SQL)


def test_it_names_the_server_it_runs_on_and_asks_it_once_per_session():
    with CaptureQueriesContext(connection) as queries:
        first = flavour()
        assert flavour() is first
    assert first is (CITUS if ON_CITUS else PLAIN)
    assert _probes(queries) == 0, "the connection's flavour was probed when it opened, not at each question"


def test_a_new_database_session_is_probed_once_when_it_opens():
    other = connections.create_connection("default")
    other.force_debug_cursor = True  # log from the first statement, the one its connection_created runs
    try:
        chosen = flavour(other)
        flavour(other)
        probes = sum(1 for q in other.queries if q["sql"] == CITUS_PRESENT_SQL)
    finally:
        other.close()
    assert chosen is (CITUS if ON_CITUS else PLAIN)
    assert probes == 1


def test_on_one_server_nothing_is_waited_for_and_the_statements_keep_one_server_shape():
    if ON_CITUS:
        pytest.skip("plain PostgreSQL's flavour")
    assert flavour().prepared_transactions_settle() == 0
    assert flavour().rows_on_one_server and flavour().probes_in_one_statement
    assert not flavour().subplans_through_coordinator and flavour().cte_inline_hint == ""


# Events of 40 accounts: on Citus, rows in every shard of ops_events.
EVENTS_OF_ACCOUNTS_SQL = """
INSERT INTO ops_events (event_id, tenant_id, user_id, session_id, event_type, occurred_at, received_at, metadata,
                        friction_signal, is_real, exclusion_reason)
SELECT gen_random_uuid(), 't' || g, 'u' || g, '', 'INCIDENT_VIEWED', now(), now(), '{}', '', true, ''
FROM generate_series(1, 40) g
"""


def test_what_a_transaction_sets_for_itself_holds_wherever_its_statements_run():
    # The fold's work_mem and jit = off are SET LOCAL; on Citus a shard's part of a statement is
    # planned and run on its worker, which kept the server's defaults before the session said otherwise.
    with connection.cursor() as cursor:
        cursor.execute(EVENTS_OF_ACCOUNTS_SQL)
        cursor.execute("SET LOCAL work_mem = '77MB'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            "SELECT DISTINCT current_setting('work_mem') AS work_mem, current_setting('jit') AS jit FROM ops_events"
        )
        settings_seen = cursor.fetchall()
    assert settings_seen == [("77MB", "off")]
