"""Celery tasks of the events app: thin wrappers around services."""

from __future__ import annotations

import logging

from celery import shared_task

from events.services import ingest_rate_windows_prune

logger = logging.getLogger(__name__)


@shared_task(name="events.prune_ingest_rate_windows", ignore_result=True)
def prune_ingest_rate_windows() -> int:
    """Idempotent: deleting finished windows twice deletes nothing the second time."""
    deleted = ingest_rate_windows_prune()
    logger.info("pruned %d ingest rate windows", deleted)
    return deleted
