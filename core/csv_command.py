"""A management command that loads one CSV file through an importer that checks every row first."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError


class CsvImportCommand(BaseCommand):
    """``manage.py <command> FILE.csv``: read as UTF-8 (a spreadsheet's byte-order mark allowed), every
    refusal a clear error that says nothing was imported. Subclasses name the importer and its error."""

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", help="Path of the CSV file.")

    def csv_import(self, path: str, importer: Callable[[IO[str]], Any], refused: type[Exception]) -> Any:
        """The importer's result; a missing file, bytes that are not UTF-8 or bad rows (``refused``,
        with its ``problems``) become a ``CommandError``."""
        try:
            with open(path, newline="", encoding="utf-8-sig") as handle:
                return importer(handle)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text; nothing was imported.") from exc
        except refused as exc:
            problems = getattr(exc, "problems", [str(exc)])
            raise CommandError(
                "Nothing was imported; fix these rows and run it again:\n  " + "\n  ".join(problems)
            ) from exc
