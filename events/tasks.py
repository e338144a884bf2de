"""Celery tasks of the events app: thin, they take ids or nothing and call a service."""

from __future__ import annotations

import logging

from celery import shared_task

from events.ingestion.ratelimit import ingest_rate_windows_prune
from events.realness import realness_changed
from events.retention import events_retention_prune

logger = logging.getLogger(__name__)


@shared_task(name="events.prune_ingest_rate_windows", ignore_result=True)
def prune_ingest_rate_windows() -> int:
    """Idempotent: deleting finished windows twice deletes nothing the second time."""
    deleted = ingest_rate_windows_prune()
    logger.info("pruned %d ingest rate windows", deleted)
    return deleted


@shared_task(name="events.retention_prune", ignore_result=True)
def events_retention_prune_task() -> int:
    """Idempotent: a second run finds only the rows retention keeps (EVENTS_RETENTION_MONTHS, 0 = keep all)."""
    return events_retention_prune()


def _customer_rollups_refresh(tenant_ids: set[str]) -> None:
    """Reclassified events were folded into derived tables with their old realness: the apps
    that registered a realness hook (the customers app rebuilds those tenants) are told."""
    realness_changed(tenant_ids, wait=False)


@shared_task(acks_late=True)  # idempotent: only rows whose reason changed are written
def events_reclassify_task() -> int:
    from events.classification import events_reclassify

    result = events_reclassify()
    _customer_rollups_refresh(result.tenant_ids)
    return result.changed


@shared_task(acks_late=True)
def classification_pass_task() -> int:
    from events.classification import classification_pass

    result = classification_pass()
    _customer_rollups_refresh(result.full.tenant_ids if result.full else result.tenant_ids)
    return result.full.changed if result.full else result.changed


@shared_task
def north_star_alerts_evaluate_task() -> int:
    from events.alerts import north_star_alerts_evaluate

    return len(north_star_alerts_evaluate())


@shared_task
def alert_notification_deliver_task(notification_id: int) -> None:
    from core.notifications import alert_notification_deliver

    alert_notification_deliver(notification_id=notification_id)


@shared_task
def alert_notifications_retry_due_task() -> int:
    from core.notifications import alert_notifications_retry_due

    return alert_notifications_retry_due()
