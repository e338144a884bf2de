from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from events.classification import RECLASSIFY_CHUNK_ROWS, events_reclassify
from events.realness import realness_changed


class Command(BaseCommand):
    help = (
        "Re-apply the real-user rules to every stored event (set-based, in id chunks; only changed rows are "
        "written) and rebuild the real-user cache. Safe to rerun."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--chunk-rows", type=int, default=RECLASSIFY_CHUNK_ROWS, help="Rows per UPDATE.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["chunk_rows"] < 1:
            raise CommandError("--chunk-rows must be at least 1.")
        result = events_reclassify(chunk_rows=options["chunk_rows"])
        if result.skipped_locked:
            raise CommandError("Another reclassification is running; try again when it has finished.")
        self.stdout.write(f"Reclassified history: {result.changed} event(s) changed in {result.chunks} chunk(s).")
        if result.tenant_ids and realness_changed(result.tenant_ids, wait=True):
            self.stdout.write(f"Rebuilt what derives from the events of {len(result.tenant_ids)} tenant(s).")
