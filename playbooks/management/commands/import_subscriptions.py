from __future__ import annotations

from typing import Any

from core.csv_command import CsvImportCommand
from playbooks.subscription_import import subscriptions_import


class Command(CsvImportCommand):
    help = (
        "Load customers' MRR from a Stripe subscriptions export (Dashboard -> Subscriptions -> Export). All rows are "
        "checked first: any bad row and nothing is written. Rerunning it records nothing twice. See "
        "playbooks/subscription_import.py for the columns read."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = self.csv_import(options["file"], subscriptions_import)
        self.stdout.write(
            f"Recorded {result.recorded} subscription(s) for {len(result.tenants)} customer(s); "
            f"{result.already_recorded} already recorded."
        )
        for note in result.notes:
            self.stdout.write(f"Note: {note}.")
        if result.ignored_columns:
            self.stdout.write(f"Ignored columns: {', '.join(result.ignored_columns)}.")
