from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from playbooks.churn_import import ChurnImportError, churns_import


class Command(BaseCommand):
    help = (
        "Load known churns from a CSV with the columns tenant_id, churned_at (date or ISO timestamp) and optionally "
        "reason. All rows are checked first: any bad row and nothing is written. Rerunning it records nothing twice."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", help="Path of the CSV file.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with open(options["file"], newline="", encoding="utf-8-sig") as handle:
                result = churns_import(handle)
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}.") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{options['file']} is not UTF-8 text; nothing was imported.") from exc
        except ChurnImportError as exc:
            raise CommandError(
                "Nothing was imported; fix these rows and run it again:\n  " + "\n  ".join(exc.problems)
            ) from exc
        self.stdout.write(f"Imported {result.created} churn(s); {result.already_recorded} already recorded.")
        if result.ignored_columns:
            self.stdout.write(f"Ignored columns: {', '.join(result.ignored_columns)}.")
