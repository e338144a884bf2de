"""`python manage.py backup [--to DIR]`: one consistent dump of the authoritative data (opsconsole/backup.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from opsconsole.backup import CACHE_TABLES, BackupError, backup_create, backup_exposure


class Command(BaseCommand):
    help = "Write a consistent pg_dump of the events and configuration (caches left out) into --to DIR."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", type=Path, default=None, help="Directory for the dump (default: BACKUP_DIR).")

    def handle(self, *args: Any, **options: Any) -> None:
        to_dir = options["to"] or Path(settings.BACKUP_DIR)
        if to_dir.exists() and not to_dir.is_dir():
            raise CommandError(f"--to must be a directory; {to_dir} is a file.")
        try:
            path = backup_create(to_dir=to_dir)
        except (BackupError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Backup written: {path} ({path.stat().st_size:,} bytes; caches left out: {len(CACHE_TABLES)})"
        )
        exposed_to = backup_exposure(path.parent)
        if exposed_to:
            self.stderr.write(
                self.style.WARNING(
                    f"Warning: {path.parent} can be listed by {exposed_to}; the backup itself is mode 0600. "
                    f"chmod 700 {path.parent} to keep even its name private."
                )
            )
        self.stdout.write(str(path))
