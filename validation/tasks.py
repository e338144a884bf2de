"""Celery tasks of the validation app: thin wrappers around validation/services.py."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from validation.models import BacktestRun
from validation.services import BacktestBusy, backtest_run_execute


@shared_task(
    bind=True,
    name="validation.backtest_risk",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(BacktestBusy,),
    retry_backoff=60,
    max_retries=10,
)
def backtest_risk_task(self: Any, run_id: int) -> dict[str, Any]:
    """Run (or resume) a backtest; its progress is on the task's state and the run row.

    Idempotent (each date's scores are stored once and a finished run is left as it is),
    so acks_late is safe: a redelivered task resumes at the first date not stored. When
    another backtest holds the lock it retries with backoff."""
    run = BacktestRun.objects.get(pk=run_id)

    def progress(done: int, total: int) -> None:
        self.update_state(state="PROGRESS", meta={"run_id": run_id, "done": done, "total": total})

    run = backtest_run_execute(run, progress=progress)
    return {"run_id": run.pk, "status": run.status}
