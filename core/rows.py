"""Rows read by column name: every statement names its columns, and readers use those names.

One helper for every app, so no reader depends on a column's position (``row[17]``)."""

from __future__ import annotations

from typing import Any


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
