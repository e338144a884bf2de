"""What the console says when the recompute fails: the failing task, its message, since when.

The task's failure path calls ``recompute_failure_record`` after the run's
transaction has rolled back, so the record survives the failure; the next run
that succeeds calls ``recompute_failure_clear``. Today, the stale-metrics alert
and the Prometheus exporter read ``recompute_failure_get``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from customers.models import MetricsState

# Enough to quote the error in a page, an alert and a Slack message.
FAILURE_MESSAGE_MAX_CHARS = 2000


@dataclass(frozen=True)
class RecomputeFailure:
    task: str
    message: str
    at: datetime
    since: datetime
    in_a_row: int


def recompute_failure_record(*, task: str, error: BaseException, now: datetime | None = None) -> None:
    """Remember a failed recompute (its own transaction: the run's has rolled back)."""
    now = now or timezone.now()
    message = f"{type(error).__name__}: {error}".strip()[:FAILURE_MESSAGE_MAX_CHARS]
    with transaction.atomic():
        state, _ = MetricsState.objects.select_for_update().get_or_create(id=1)
        state.failing_since = state.failing_since or now
        state.last_failure_at = now
        state.last_failure_task = task[:200]
        state.last_failure_message = message
        state.failures_in_a_row += 1
        state.save(
            update_fields=[
                "failing_since",
                "last_failure_at",
                "last_failure_task",
                "last_failure_message",
                "failures_in_a_row",
            ]
        )


def recompute_failure_clear() -> None:
    """A run succeeded: the install is no longer failing (the last message stays for history).

    A compare-and-set, so a run that succeeds writes nothing when nothing was failing.
    """
    MetricsState.objects.filter(id=1, failing_since__isnull=False).update(failing_since=None, failures_in_a_row=0)


def recompute_failure_get() -> RecomputeFailure | None:
    """The ongoing failure, or None when the last run succeeded (or none failed). One query."""
    state = (
        MetricsState.objects.filter(id=1, failing_since__isnull=False)
        .values("last_failure_task", "last_failure_message", "last_failure_at", "failing_since", "failures_in_a_row")
        .first()
    )
    if state is None:
        return None
    return RecomputeFailure(
        task=state["last_failure_task"],
        message=state["last_failure_message"],
        at=state["last_failure_at"],
        since=state["failing_since"],
        in_a_row=state["failures_in_a_row"],
    )
