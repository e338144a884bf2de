from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from events.ingestion.importer import FORMATS, IMPORT_BATCH_ROWS, events_import
from events.ingestion.validation import IngestError


class Command(BaseCommand):
    help = (
        "Import event history from a file through the ingestion write path: JSONL (a PostHog export, a Segment "
        "or RudderStack archive, or native events) or CSV with a column map. Idempotent (event ids dedupe), "
        "resumable after a crash, streaming. Unregistered names are parked. --dry-run changes nothing."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", help="The JSONL or CSV file.")
        parser.add_argument("--format", choices=FORMATS, default=None, help="Default: csv for *.csv, else native.")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="FIELD=COLUMN",
            help="CSV only: the column that holds a field (event_type, user_id, tenant_id, occurred_at, ...).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Print what would be imported; store nothing.")
        parser.add_argument("--batch-rows", type=int, default=IMPORT_BATCH_ROWS, help="Rows per transaction.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        file_format = options["format"] or ("csv" if path.lower().endswith(".csv") else "native")
        column_map: dict[str, str] = {}
        for pair in options["map"]:
            field, sep, column = pair.partition("=")
            if not sep or not field.strip() or not column.strip():
                raise CommandError(f"--map takes FIELD=COLUMN, not '{pair}'.")
            column_map[field.strip()] = column.strip()
        if options["batch_rows"] < 1:
            raise CommandError("--batch-rows must be at least 1.")
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
        bar = tqdm(total=size, unit="B", unit_scale=True, file=sys.stderr, disable=options["no_progress"])
        done = [0]

        def progress(offset: int) -> None:
            bar.update(max(0, offset - done[0]))
            done[0] = offset

        try:
            outcome = events_import(
                path=path,
                file_format=file_format,
                column_map=column_map,
                dry_run=options["dry_run"],
                batch_rows=options["batch_rows"],
                progress=progress,
            )
        except IngestError as exc:
            raise CommandError(exc.message) from exc
        finally:
            bar.close()
        write = self.stdout.write
        if outcome.resumed_at_row:
            write(f"Resumed after row {outcome.resumed_at_row} (the last committed batch of an earlier run).")
        if options["dry_run"]:
            write(f"Dry run: nothing was stored. Rows: {outcome.rows}.")
            write(f"Valid events: {outcome.accepted}; rejected: {outcome.rejected}.")
        else:
            write(
                f"Rows: {outcome.rows}; stored {outcome.accepted}, already there {outcome.duplicates}, "
                f"rejected {outcome.rejected}, of them parked {outcome.parked}."
            )
        for rejection in outcome.rejections:
            write(f"Rejected: {rejection}")
        if not options["dry_run"]:
            return
        write(f"Accounts found: {len(outcome.accounts)}; rows with no account: {outcome.rows_without_account}.")
        if outcome.first_at and outcome.last_at:
            write(f"First event: {outcome.first_at.isoformat()}; last event: {outcome.last_at.isoformat()}.")
        if outcome.unregistered:
            write("Names not registered (would be parked):")
            for name, count in outcome.unregistered.most_common():
                write(f"  {name}: {count}")
