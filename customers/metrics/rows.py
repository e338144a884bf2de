"""Rows read by column name: every engine statement names its columns, and readers use those names."""

from __future__ import annotations

from typing import Any


def rows_as_dicts(cursor: Any) -> list[dict[str, Any]]:
    """The cursor's remaining rows as {column name: value} (cursor.description gives the names)."""
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def row_as_dict(cursor: Any) -> dict[str, Any]:
    """The cursor's next row as {column name: value}; the statement must return one."""
    names = [column.name for column in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))
