"""Celery tasks of the customers app: thin wrappers around customers/services.py."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from customers.services import metrics_recompute, tenant_rollups_rebuild


@shared_task(name="customers.metrics_recompute", acks_late=True, ignore_result=True)
def metrics_recompute_task() -> dict[str, Any]:
    """Incremental recompute (beat, every 5 minutes). Idempotent and overlap-safe
    (advisory lock: a second run skips), so acks_late is harmless."""
    result = metrics_recompute()
    return {"skipped": result.skipped, "mode": result.mode, "events_folded": result.events_folded}


@shared_task(name="customers.tenant_rollups_rebuild", acks_late=True, ignore_result=True)
def tenant_rollups_rebuild_task(tenant_ids: list[str]) -> None:
    """Rebuild the rollups of tenants whose events were reclassified; queue it in transaction.on_commit."""
    tenant_rollups_rebuild(tenant_ids=tenant_ids)


@shared_task(name="customers.metrics_freshness_alert", ignore_result=True)
def metrics_freshness_alert_task() -> str:
    """Idempotent: a level is announced once per change (the state row and dedupe key)."""
    from customers.integrations import metrics_freshness_alert_evaluate

    return metrics_freshness_alert_evaluate()
