"""Celery tasks of the customers app: thin wrappers around the metrics engine (customers/metrics/)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import shared_task
from django.conf import settings

from customers.failures import recompute_failure_clear, recompute_failure_record
from customers.integrations import metrics_freshness_alert_evaluate
from customers.metrics.fanout import metrics_fanout_finish, metrics_recompute_fanout, tenant_metrics_shard_write
from customers.metrics.recompute import metrics_recompute, tenant_rollups_rebuild


@shared_task(bind=True, name="customers.metrics_recompute", acks_late=True, ignore_result=True, max_retries=5)
def metrics_recompute_task(self: Any) -> dict[str, Any]:
    """Incremental recompute (beat, every 5 minutes). Idempotent and overlap-safe
    (advisory lock: a second run skips), so acks_late is harmless.

    With METRICS_RECOMPUTE_SHARDS > 1 this run only folds, then queues one
    shard task per tenant shard so several workers compute the metrics."""
    shards = settings.METRICS_RECOMPUTE_SHARDS
    try:
        if shards > 1:
            result = metrics_recompute_fanout(
                shards=shards,
                dispatch=lambda shard, total, now: tenant_metrics_shard_write_task.delay(shard, total, now.isoformat()),
            )
        else:
            result = metrics_recompute()
    except Exception as exc:
        # Said plainly on Today and in the stale alert (the task, its message, since when),
        # then re-raised: the worker log keeps the traceback and Celery its failure.
        recompute_failure_record(task=self.name, error=exc)
        raise
    if not result.skipped:
        recompute_failure_clear()
    if result.skipped and (self.request.delivery_info or {}).get("redelivered"):
        # Redelivered because its worker died: the dead worker's database session may still hold
        # the lock for a moment (until PostgreSQL notices, DATABASE_CLIENT_CHECK_MS). Try again
        # shortly rather than leave the run to the next beat tick.
        raise self.retry(countdown=5)
    return {"skipped": result.skipped, "mode": result.mode, "events_folded": result.events_folded}


@shared_task(name="customers.tenant_rollups_rebuild", acks_late=True, ignore_result=True)
def tenant_rollups_rebuild_task(tenant_ids: list[str]) -> None:
    """Rebuild the rollups of tenants whose events were reclassified; queue it in transaction.on_commit."""
    tenant_rollups_rebuild(tenant_ids=tenant_ids)


def tenants_realness_changed(tenant_ids: list[str], *, wait: bool) -> None:
    """The customers app's realness hook (events/realness.py, registered in CustomersConfig.ready()):
    rebuild those tenants' rollups now (``wait``) or in a task."""
    if wait:
        tenant_rollups_rebuild(tenant_ids=tenant_ids)
    else:
        tenant_rollups_rebuild_task.delay(list(tenant_ids))


@shared_task(name="customers.metrics_freshness_alert", ignore_result=True)
def metrics_freshness_alert_task() -> str:
    """Idempotent: a level is announced once per change (the state row and dedupe key)."""
    return metrics_freshness_alert_evaluate()


@shared_task(name="customers.tenant_metrics_shard_write", acks_late=True, ignore_result=True)
def tenant_metrics_shard_write_task(shard: int, shards: int, now: str) -> None:
    """One shard of a fanned-out recompute; then the last shard runs the hooks. Idempotent: a
    redelivered shard finds its rows no longer stale and writes nothing."""
    moment = datetime.fromisoformat(now)
    try:
        tenant_metrics_shard_write(shard=shard, shards=shards, now=moment)
        metrics_fanout_finish(now=moment)
    except Exception as exc:
        recompute_failure_record(task=f"customers.tenant_metrics_shard_write (shard {shard} of {shards})", error=exc)
        raise
