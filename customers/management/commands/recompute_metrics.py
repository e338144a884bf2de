from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from customers.metrics.recompute import metrics_recompute, tenant_rollups_rebuild


class Command(BaseCommand):
    help = (
        "Fold the events committed since the last run into the rollups and rewrite ops_tenant_metrics. "
        "--full rebuilds every rollup from ops_events; --tenant rebuilds only those tenants (after a reclassification)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--full", action="store_true", help="Rebuild the rollups from the events.")
        parser.add_argument(
            "--tenant", action="append", default=[], metavar="TENANT_ID", help="Rebuild this tenant (repeatable)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        if options["tenant"]:
            result = tenant_rollups_rebuild(tenant_ids=options["tenant"])
        else:
            result = metrics_recompute(full=options["full"])
        elapsed = time.monotonic() - started
        if result.skipped:
            self.stdout.write("skipped: another recompute is running (it holds the lock); nothing was written")
            return
        self.stdout.write(
            f"{result.mode}: {result.events_folded} events folded, {result.tenants_written} tenants written "
            f"(as of {result.as_of}) in {elapsed:.2f}s"
        )
