"""The hook other apps use to react when events' realness changes (reclassification).

Reclassification flips ``is_real`` on stored events in place, which anything
derived from them (the customer rollups) must rebuild. The events app does not
know those apps: they register here from their ``AppConfig.ready()``, as they register
their Prometheus providers with core's exporter (core/exporter.py)::

    # customers/apps.py
    from events.realness import realness_hook_register
    from customers.tasks import tenants_realness_changed
    realness_hook_register("customers", tenants_realness_changed)

A hook is called as ``hook(tenant_ids, wait=...)`` with the tenants whose events
changed: ``wait=True`` (a management command) must do the work before returning,
``wait=False`` (a Celery task) may queue it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

logger = logging.getLogger(__name__)

RealnessHook = Callable[..., None]
_hooks: dict[str, RealnessHook] = {}


def realness_hook_register(name: str, hook: RealnessHook) -> None:
    """Add (or replace, by name) what runs when some tenants' events changed realness."""
    _hooks[name] = hook


def realness_hook_unregister(name: str) -> None:
    _hooks.pop(name, None)


def realness_changed(tenant_ids: Iterable[str], *, wait: bool) -> list[str]:
    """Tell every registered hook that these tenants' events changed realness; returns the hooks' names."""
    ids = sorted(set(tenant_ids))
    if not ids:
        return []
    for hook in _hooks.values():
        hook(ids, wait=wait)
    return list(_hooks)
