from __future__ import annotations

from typing import Any

from core.csv_command import CsvImportCommand
from playbooks.churn_import import churns_import


class Command(CsvImportCommand):
    help = (
        "Load known churns from a CSV with the columns tenant_id, churned_at (date or ISO timestamp) and optionally "
        "reason. All rows are checked first: any bad row and nothing is written. Rerunning it records nothing twice."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = self.csv_import(options["file"], churns_import)
        self.stdout.write(f"Imported {result.created} churn(s); {result.already_recorded} already recorded.")
        if result.ignored_columns:
            self.stdout.write(f"Ignored columns: {', '.join(result.ignored_columns)}.")
