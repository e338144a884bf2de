"""What every console page shares: staff-only access and the page frame's context."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous users go to the login page; a logged-in non-staff user gets 403."""

    @wraps(view)
    @login_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise PermissionDenied("The console is for staff users.")
        return view(request, *args, **kwargs)

    return wrapper


HAS_EVENTS_KEY = "opsconsole:has_events"


def _has_events() -> bool:
    """Whether any event has arrived yet. Once one has, the answer is kept by the process:
    events are only ever added (retention keeps the recent ones), so it never goes back."""
    if cache.get(HAS_EVENTS_KEY):
        return True
    from events.models import Event

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
