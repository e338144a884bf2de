"""Celery tasks of the infra app: thin wrappers around ``infra.services``."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.db import InterfaceError, OperationalError

from infra.services import infra_snapshot_take

# A beat run that finds a snapshot younger than this (a retried or duplicated
# run) takes none, so one hour is not counted twice in the growth fit.
SNAPSHOT_MIN_INTERVAL = timedelta(minutes=10)


@shared_task(
    name="infra.snapshot_infra",
    # Only a lost database is worth retrying; a missing Redis is a reading, not an error.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=3,
    acks_late=True,  # idempotent: the advisory lock and the min interval make a redelivery a no-op
)
def snapshot_infra() -> int | None:
    """Take one infrastructure snapshot; returns its id, or None when skipped."""
    snapshot = infra_snapshot_take(min_interval=SNAPSHOT_MIN_INTERVAL)
    return snapshot.pk if snapshot is not None else None


@shared_task(name="infra.alerts_evaluate", ignore_result=True)
def infra_alerts_evaluate_task() -> dict[str, str]:
    """Idempotent: each resource's level is announced once per change."""
    from infra.integrations import infra_alerts_evaluate

    return infra_alerts_evaluate()
