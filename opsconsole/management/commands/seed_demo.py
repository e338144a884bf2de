from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from opsconsole.demo import seed_demo


class Command(BaseCommand):
    help = "Write a realistic, deterministic demo history through the ingestion service (idempotent per --seed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenants", type=int, default=50)
        parser.add_argument("--days", type=int, default=60)
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        with tqdm(
            total=options["days"] + 1, unit="day", desc="seeding demo history", disable=options["verbosity"] == 0
        ) as bar:
            receipt = seed_demo(
                tenants=options["tenants"], days=options["days"], seed=options["seed"], progress=bar.update
            )
        self.stdout.write(
            f"Demo history: {receipt.accepted} events stored, {receipt.duplicates} already present, "
            f"{len(receipt.rejected)} rejected."
        )
        if receipt.rejected:
            self.stderr.write(f"First rejection: {receipt.rejected[0]}")
