"""The page frame's context, which reads the events app: wiring, so it lives in the project package."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.http import HttpRequest

from events.models import Event

HAS_EVENTS_KEY = "opsconsole:has_events"


def _has_events() -> bool:
    """Whether any event has arrived yet. Once one has, the answer is kept by the process:
    events are only ever added (retention keeps the recent ones), so it never goes back."""
    if cache.get(HAS_EVENTS_KEY):
        return True
    found = Event.objects.only("pk").exists()
    if found:
        cache.set(HAS_EVENTS_KEY, True, timeout=None)
    return found


def console_context(request: HttpRequest) -> dict[str, Any]:
    """Context processor: whether any event has arrived yet (drives 'Getting started')
    and the host the snippets should name. One indexed query per page until the first event."""
    if not request.path.startswith(("/admin/", "/api/")) and request.user.is_authenticated:
        return {"has_events": _has_events(), "console_host": request.build_absolute_uri("/").rstrip("/")}
    return {}
