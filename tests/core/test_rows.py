"""Rows read by column name (core/rows.py): a reader names the column it wants, and a statement that
does not name it is refused with the names it has, never read by position."""

from __future__ import annotations

import pytest
from django.db import connection

from core.rows import value_of, values_of

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
