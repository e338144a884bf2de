"""`python manage.py restore DUMP`: a backup into an empty database, migrated, caches rebuilt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers.metrics.recompute import metrics_recompute
from opsconsole.backup import BackupError, restore_load, restored_events_adopt


class Command(BaseCommand):
    help = "Restore a `manage.py backup` dump into the (empty) DATABASE_URL, migrate it and rebuild the caches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dump", type=Path, help="A .dump file written by `manage.py backup`.")
        parser.add_argument(
            "--accept-world-readable",
            action="store_true",
            help="Restore a dump every user of this machine can read (refused by default: it may have been replaced).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            restore_load(dump=options["dump"], accept_world_readable=options["accept_world_readable"])
        except (BackupError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write("Restored; applying the migrations of this version…")
        call_command("migrate", interactive=False, verbosity=0)
        events = restored_events_adopt()
        self.stdout.write(f"Rebuilding the caches from {events:,} events (recompute_metrics --full)…")
        result = metrics_recompute(full=True)
        self.stdout.write(
            self.style.SUCCESS(f"Restore complete: {events:,} events, {result.tenants_written:,} tenants.")
        )
