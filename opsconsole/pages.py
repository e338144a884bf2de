"""The page frame's context, which reads the events app: wiring, so it lives in the project package."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from events.models import Event


def console_context(request: HttpRequest) -> dict[str, Any]:
    """Context processor: whether any event has arrived yet (drives 'Getting started')
    and the host the snippets should name. One indexed query per page."""
    if not request.path.startswith(("/admin/", "/api/")) and request.user.is_authenticated:
        return {
            "has_events": Event.objects.only("pk").exists(),
            "console_host": request.build_absolute_uri("/").rstrip("/"),
        }
    return {}
