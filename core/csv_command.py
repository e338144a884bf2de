"""A management command that loads one CSV file through an importer that checks every row first, and
the importers' one refusal."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError


class CsvRefused(ValueError):
    """An importer refused the file, so nothing was written; ``problems`` lists each one
    ("line 4: unknown tenant 'x'", "line 4, column Amount: ...")."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class CsvImportCommand(BaseCommand):
    """``manage.py <command> FILE.csv``: read as UTF-8 (a spreadsheet's byte-order mark allowed), every
    refusal a clear error that says nothing was imported. Subclasses name the importer."""

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", help="Path of the CSV file.")

    def csv_import(self, path: str, importer: Callable[[IO[str]], Any]) -> Any:
        """The importer's result; a missing file, bytes that are not UTF-8 or bad rows (``CsvRefused``)
        become a ``CommandError``."""
        try:
            with open(path, newline="", encoding="utf-8-sig") as handle:
                return importer(handle)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text; nothing was imported.") from exc
        except CsvRefused as exc:
            raise CommandError(
                "Nothing was imported; fix these rows and run it again:\n  " + "\n  ".join(exc.problems)
            ) from exc
