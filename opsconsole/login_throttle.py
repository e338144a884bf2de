"""The console's side of login throttling (django-axes, configured in settings.py).

Which address a login comes from, and the page a locked-out login gets: 429 with
``Retry-After`` and the time to retry in words, on the console's login and admin's alike.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone


def client_address(request: HttpRequest) -> str | None:
    """The address a login comes from. Behind the shipped nginx (a proxy on this machine, the only
    way to reach gunicorn on 127.0.0.1) it is nginx's ``X-Real-IP``, which nginx always sets from the
    connection; from anywhere else that header is the client's own word and is ignored."""
    remote = request.META.get("REMOTE_ADDR") or None
    forwarded = request.META.get("HTTP_X_REAL_IP", "").strip()
    if remote and forwarded:
        try:
            if ipaddress.ip_address(remote).is_loopback:
                return str(ipaddress.ip_address(forwarded))
        except ValueError:
            return remote
    return remote


def _minutes(delta: timedelta) -> str:
    minutes = max(1, round(delta.total_seconds() / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def lockout_response(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    """429 for a login refused while its account or address is locked out. The cool-off counts from
    the latest failure (this one), so the time to retry is the cool-off from now."""
    cool_off = settings.AXES_COOLOFF_TIME
    retry_at = timezone.localtime(timezone.now() + cool_off)
    response = render(
        request,
        "registration/locked_out.html",
        {
            "retry_in": _minutes(cool_off),
            "retry_at": retry_at,
            "failure_limit": settings.AXES_FAILURE_LIMIT,
        },
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
    response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response
