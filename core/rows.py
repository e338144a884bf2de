"""Rows read by column name: every statement names its columns, and readers use those names.

One helper for every app, so no reader depends on a column's position (``row[17]``)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from psycopg import adapters
from psycopg.pq import Format


def _names(cursor: Any) -> list[str]:
    if cursor.description is None:
        raise ValueError("the statement returned no rows to read (no result columns)")
    return [column.name for column in cursor.description]


def rows_as_dicts(cursor: Any) -> list[dict[str, Any]]:
    """The cursor's remaining rows as {column name: value} (cursor.description gives the names)."""
    names = _names(cursor)
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def row_as_dict(cursor: Any) -> dict[str, Any]:
    """The cursor's next row as {column name: value}; the statement must return one."""
    names = _names(cursor)
    row = cursor.fetchone()
    if row is None:
        raise ValueError("the statement returned no row where one was expected")
    return dict(zip(names, row, strict=True))


def value_of(cursor: Any, column: str) -> Any:
    """The one value a statement answers: its next row's ``column``, which the statement names (``AS column``)."""
    row = row_as_dict(cursor)
    if column not in row:
        raise ValueError(f"the statement names no column {column!r} (its columns: {', '.join(row)})")
    return row[column]


def values_of(cursor: Any, column: str) -> list[Any]:
    """``column`` of each of the cursor's remaining rows, which the statement names."""
    names = _names(cursor)
    if column not in names:
        raise ValueError(f"the statement names no column {column!r} (its columns: {', '.join(names)})")
    at = names.index(column)
    return [row[at] for row in cursor.fetchall()]


def timestamps_load_natively(cursor: Any) -> None:
    """Have a Django cursor load ``timestamptz`` values with psycopg's own loader (compiled with psycopg[binary])
    instead of Django's, which parses each value in Python: a few microseconds a value, the largest part of reading
    every tenant's signals. The same aware datetimes: psycopg's loader puts them in the session's time zone, which
    Django sets to UTC, the zone Django's loader gives them; under any other zone Django's loader stays."""
    if cursor.db.timezone is not UTC or cursor.db.timezone_name != "UTC":
        return
    cursor.cursor.adapters.register_loader(
        "timestamptz", adapters.get_loader(adapters.types["timestamptz"].oid, Format.TEXT)
    )
