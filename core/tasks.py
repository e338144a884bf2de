"""Queueing a task by its name: how a lower module starts work that a module importing it defines
(``events.rules`` queues the reclassification that ``events.tasks`` runs), without importing it back.

The task runs as if called through its own object (``.delay``), eager mode included, because Celery
resolves a registered name to the task itself."""

from __future__ import annotations

import importlib
from typing import Any

from celery import current_app


def task_queue(name: str, *args: Any, **kwargs: Any) -> Any:
    """Queue the task ``name`` (its dotted path, e.g. ``events.tasks.events_reclassify_task``)."""
    if name not in current_app.tasks:
        # Celery discovers the apps' task modules lazily; the name says which module defines it.
        module, _, _ = name.rpartition(".")
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise LookupError(f"no Celery task is registered as {name!r}: {exc}") from exc
    if name not in current_app.tasks:
        raise LookupError(f"no Celery task is registered as {name!r}")
    return current_app.signature(name, args=args, kwargs=kwargs).delay()
