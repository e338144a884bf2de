"""Rows read by column name (core/rows.py): a reader names the column it wants, and a statement that
does not name it is refused with the names it has, never read by position."""

from __future__ import annotations

from datetime import UTC

import pytest
from django.db import connection
from psycopg import adapters
from psycopg.pq import Format

from core.rows import timestamps_load_natively, value_of, values_of

pytestmark = pytest.mark.django_db


def test_it_reads_the_named_value_whatever_its_position():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'first' AS label, 42 AS answer")
        assert value_of(cursor, "answer") == 42


def test_it_refuses_a_column_the_statement_does_not_name_and_says_which_it_has():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 42, 'x' AS label")
        with pytest.raises(ValueError, match=r"no column 'answer' \(its columns: \?column\?, label\)"):
            value_of(cursor, "answer")


def test_a_statement_without_a_row_is_refused_for_a_single_value():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 AS one WHERE false")
        with pytest.raises(ValueError, match="no row"):
            value_of(cursor, "one")


def test_it_reads_one_column_of_every_row_in_order():
    with connection.cursor() as cursor:
        cursor.execute("SELECT n * 10 AS tens, n FROM generate_series(1, 3) AS n ORDER BY n")
        assert values_of(cursor, "n") == [1, 2, 3]
        cursor.execute("SELECT 1 AS n")
        with pytest.raises(ValueError, match="no column 'tens'"):
            values_of(cursor, "tens")


def test_timestamps_loaded_natively_are_the_datetimes_django_loads():
    statement = (
        "SELECT '2026-03-29 01:30:00.123456+00'::timestamptz AS a, '2026-10-25 02:59:59.5+02'::timestamptz AS b,"
        " '1969-12-31 23:59:59+00'::timestamptz AS c, NULL::timestamptz AS d"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement)
        by_django = cursor.fetchone()
    with connection.cursor() as cursor:
        timestamps_load_natively(cursor)
        oid = adapters.types["timestamptz"].oid
        # psycopg's own loader on this cursor; the connection's other cursors keep Django's.
        assert cursor.cursor.adapters.get_loader(oid, Format.TEXT) is adapters.get_loader(oid, Format.TEXT)
        assert connection.connection.adapters.get_loader(oid, Format.TEXT) is not adapters.get_loader(oid, Format.TEXT)
        cursor.execute(statement)
        native = cursor.fetchone()
    assert native == by_django
    assert [None if v is None else (v.isoformat(), v.tzinfo) for v in native] == [
        ("2026-03-29T01:30:00.123456+00:00", UTC),
        ("2026-10-25T00:59:59.500000+00:00", UTC),
        ("1969-12-31T23:59:59+00:00", UTC),
        None,
    ]
    assert all(v is None or v.tzinfo is UTC for v in native)
