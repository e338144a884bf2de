from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from customers.failures import recompute_failure_clear, recompute_failure_record
from customers.metrics.recompute import RecomputeResult, metrics_recompute, tenant_rollups_rebuild


def recompute_summary(result: RecomputeResult, *, elapsed_seconds: float) -> str:
    """What the run changed, in one line: events folded, tenants rewritten, churned customers
    settled and what each post-recompute hook reports (the playbooks hook: matches changed,
    levels raised). A hook result is read by its fields, so any hook can report."""
    parts = [
        f"{result.events_folded} event{'s' if result.events_folded != 1 else ''} folded",
        f"{result.tenants_written} tenant{'s' if result.tenants_written != 1 else ''} rewritten",
    ]
    if result.churned_settled:
        parts.append(f"{result.churned_settled} churned customer(s) taken off the at-risk lists")
    for hook_result in result.hook_results:
        summary = getattr(hook_result, "summary", None)
        if callable(summary):
            parts.append(summary())
    return f"{result.mode}: {', '.join(parts)} (as of {result.as_of}) in {elapsed_seconds:.2f}s"


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
        try:
            if options["tenant"]:
                result = tenant_rollups_rebuild(tenant_ids=options["tenant"])
            else:
                result = metrics_recompute(full=options["full"])
        except Exception as exc:
            # The same record the Celery task keeps: Today names this failure until a run succeeds.
            recompute_failure_record(task="manage.py recompute_metrics", error=exc)
            raise
        elapsed = time.monotonic() - started
        if result.skipped:
            self.stdout.write("skipped: another recompute is running (it holds the lock); nothing was written")
            return
        recompute_failure_clear()
        self.stdout.write(recompute_summary(result, elapsed_seconds=elapsed))
