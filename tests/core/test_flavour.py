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
