from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from validation.services import (
    BACKTEST_DEFAULT_DAYS,
    BACKTEST_DEFAULT_HORIZONS,
    BACKTEST_DEFAULT_STEP,
    BacktestBusy,
    BacktestInputError,
    backtest_run_execute,
    backtest_run_prepare,
)
from validation.tasks import backtest_risk_task


def _horizons(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise CommandError(f"--horizons must be whole days separated by commas, e.g. 30,60 (got {text!r}).") from exc


class Command(BaseCommand):
    help = (
        "Walk-forward backtest of the risk signal: every --step days over the last --days days (ending today), "
        "each customer's risk exactly as the engine would have computed it that day from the events that had "
        "occurred by then. Resumes an unfinished run with the same parameters; never touches the live metrics."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--days", type=int, default=BACKTEST_DEFAULT_DAYS, help="How far back the first as-of date is."
        )
        parser.add_argument("--step", type=int, default=BACKTEST_DEFAULT_STEP, help="Days between as-of dates.")
        parser.add_argument(
            "--horizons",
            default=",".join(map(str, BACKTEST_DEFAULT_HORIZONS)),
            help="Churn horizons in days, e.g. 30,60.",
        )
        parser.add_argument(
            "--background", action="store_true", help="Queue it as a Celery task instead of running it here."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = backtest_run_prepare(
                days=options["days"], step=options["step"], horizons=_horizons(options["horizons"])
            )
        except BacktestInputError as exc:
            raise CommandError(str(exc)) from exc
        if options["background"]:
            transaction.on_commit(lambda: backtest_risk_task.delay(run.pk))
            self.stdout.write(f"Queued backtest {run.pk} ({run.dates_total} dates).")
            return
        bar = tqdm(total=run.dates_total, unit="date", desc=f"backtest {run.pk}", disable=None)

        def progress(done: int, total: int) -> None:
            bar.n = done
            bar.refresh()

        try:
            run = backtest_run_execute(run, progress=progress)
        except BacktestBusy as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        report = run.report or {}
        self.stdout.write(
            f"Backtest {run.pk}: {len(report.get('as_of_dates', []))} dates, {report.get('churns_used', 0)} churns."
        )
        for horizon in report.get("horizons", []):
            h = horizon["heuristic"]
            self.stdout.write(
                f"  {horizon['days']} days: AUC {h['auc']}, top-decile lift {h['top_decile_lift']}, "
                f"precision {h['precision_at_threshold']}, recall {h['recall_at_threshold']}"
            )
        if report.get("warning"):
            self.stdout.write(report["warning"])
