"""Turn a lost database connection into a 503 a client can retry, never a 500.

A PostgreSQL restart or failover makes psycopg raise ``OperationalError``
(``InterfaceError`` for a connection that died between requests). Nothing was
committed for that request, so the honest answer is "try again shortly": the
emitter retries 503 with backoff, and event ids make the retry idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
DATABASE_ERRORS = (OperationalError, InterfaceError)


def database_unavailable_response() -> JsonResponse:
    response = JsonResponse(
        {"detail": "The database is unavailable; nothing was stored. Retry after a few seconds."},
        status=503,
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        except DATABASE_ERRORS:
            # Raised outside a view (session or auth middleware touching the database).
            logger.warning("database unavailable while serving %s", request.path, exc_info=True)
            return database_unavailable_response()

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_ERRORS):
            logger.warning("database unavailable while serving %s", request.path, exc_info=True)
            return database_unavailable_response()
        return None


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus a 503 with Retry-After for a lost database."""
    if isinstance(exc, DATABASE_ERRORS):
        logger.warning("database unavailable in API view", exc_info=True)
        response = Response(
            {"detail": "The database is unavailable; nothing was stored. Retry after a few seconds."},
            status=503,
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return exception_handler(exc, context)
