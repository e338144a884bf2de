"""Turn a database failure into a 503 a client can retry and an operator can act on, never a 500.

A PostgreSQL restart or failover makes psycopg raise ``OperationalError``
(``InterfaceError`` for a connection that died between requests). Nothing was
committed for that request, so the honest answer is "try again shortly": the
emitter retries 503 with backoff, and event ids make the retry idempotent.

Each cause has its own message and log line (``DATABASE_FAILURES``), because
"the database is unavailable" for a full disk sends the operator to the wrong
place: a full disk, a read-only database (a standby after failover), a timeout
and a lost or refused connection are told apart by SQLSTATE and by the server's
message where a connection attempt has no SQLSTATE.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class DatabaseFailure:
    """One cause of a 503: ``reason`` is the JSON field clients and tests read."""

    reason: str
    detail: str  # the answer's "detail", for the client
    log: str  # the log line, for the operator: where to look
    retry_after: int = RETRY_AFTER_SECONDS
    sqlstates: tuple[str, ...] = ()
    # Lower-case fragments of the server's message (a failed connection has no SQLSTATE).
    phrases: tuple[str, ...] = ()


DATABASE_FAILURES: tuple[DatabaseFailure, ...] = (
    DatabaseFailure(
        reason="disk_full",
        detail="The database server's disk is full; nothing was stored. Retry once space has been freed.",
        log="database disk full: free space on the PostgreSQL data or tablespace volume (df -h)",
        retry_after=60,
        sqlstates=("53100",),
        phrases=("no space left on device", "could not extend file", "disk full"),
    ),
    DatabaseFailure(
        reason="read_only",
        detail="The database is read-only (a standby, or writes are switched off); nothing was stored. "
        "Retry after a few seconds.",
        log="database is read-only: DATABASE_URL points at a standby, or default_transaction_read_only is on",
        sqlstates=("25006",),
        phrases=("read-only transaction", "read only transaction"),
    ),
    DatabaseFailure(
        reason="timeout",
        detail="The database did not answer in time; nothing was stored. Retry after a few seconds.",
        log="database timeout (statement_timeout, lock_timeout or connect_timeout): the server is overloaded "
        "or a lock is held; check pg_stat_activity",
        sqlstates=("57014", "55P03"),
        phrases=("timeout expired", "timed out", "canceling statement due to statement timeout"),
    ),
    DatabaseFailure(
        reason="connection_lost",
        detail="The database connection was lost or refused; nothing was stored. Retry after a few seconds.",
        log="database connection lost or refused: is PostgreSQL running and reachable at DATABASE_URL?",
        sqlstates=("57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006", "53300"),
        # A Citus coordinator relays a worker going away as an InternalError (XX000) with these texts.
        phrases=(
            "terminating connection due to administrator command",
            "failure on connection marked as essential",
            "connection to the remote node",
        ),
    ),
)
_CONNECTION_LOST = DATABASE_FAILURES[-1]
_BY_SQLSTATE = {state: failure for failure in DATABASE_FAILURES for state in failure.sqlstates}


def database_failure_classify(exc: BaseException) -> DatabaseFailure | None:
    """The failure an exception stands for, or None if it is not a database outage (a bug: let it be a 500)."""
    if not isinstance(exc, DatabaseError | InterfaceError):
        return None
    cause = exc.__cause__ or exc
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate in _BY_SQLSTATE:
        return _BY_SQLSTATE[sqlstate]
    message = str(cause).lower()
    for failure in DATABASE_FAILURES:
        if any(phrase in message for phrase in failure.phrases):
            return failure
    if isinstance(exc, OperationalError | InterfaceError):
        return _CONNECTION_LOST
    # An InternalError or IntegrityError with another SQLSTATE is a defect, not an outage.
    return None


def _failure_body(failure: DatabaseFailure) -> dict[str, str]:
    return {"detail": failure.detail, "reason": failure.reason}


# Failures that mean "reachable but cannot store": /readyz reports them (database_writable) and fails,
# since a probe's own write cannot tell a full disk (a one-row write still fits in a page) while
# every ingest batch is refused.
WRITE_FAILURE_REASONS = frozenset({"disk_full", "read_only"})


def database_write_failure_record(failure: DatabaseFailure) -> None:
    """Remember a refused write for every process on this node (a small file: gunicorn's workers share
    no memory, and the database cannot take it). Best effort: a full local disk may refuse it too."""
    path = Path(settings.DATABASE_WRITE_FAILURE_FILE)
    try:
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({"reason": failure.reason, "detail": failure.detail, "at": time.time()}))
        partial.replace(path)
    except OSError as exc:
        logger.warning("could not record the database write failure in %s: %s", path, exc)


def database_write_failure_read() -> dict[str, Any] | None:
    """The last refused write on this node ({"reason", "detail", "at"}), None if a write succeeded since."""
    try:
        return dict(json.loads(Path(settings.DATABASE_WRITE_FAILURE_FILE).read_text()))
    except (OSError, ValueError):
        return None


def database_write_failure_clear() -> None:
    Path(settings.DATABASE_WRITE_FAILURE_FILE).unlink(missing_ok=True)


def _log_failure(failure: DatabaseFailure, path: str, exc: BaseException) -> None:
    logger.warning("%s (503 %s while serving %s): %s", failure.log, failure.reason, path, exc)
    if failure.reason in WRITE_FAILURE_REASONS:
        database_write_failure_record(failure)


def database_unavailable_response(failure: DatabaseFailure = _CONNECTION_LOST) -> JsonResponse:
    response = JsonResponse(_failure_body(failure), status=503)
    response["Retry-After"] = str(failure.retry_after)
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            response = self.get_response(request)
        except (DatabaseError, InterfaceError) as exc:
            # Raised outside a view (session or auth middleware touching the database).
            failure = database_failure_classify(exc)
            if failure is None:
                raise
            _log_failure(failure, request.path, exc)
            return database_unavailable_response(failure)
        # A stored write (an ingest answered 2xx) ends a recorded write failure: one stat per POST.
        if request.method == "POST" and 200 <= response.status_code < 300:
            database_write_failure_clear()
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        failure = database_failure_classify(exception)
        if failure is None:
            return None
        _log_failure(failure, request.path, exception)
        return database_unavailable_response(failure)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus a 503 with Retry-After naming the database failure."""
    failure = database_failure_classify(exc)
    if failure is not None:
        request = context.get("request")
        _log_failure(failure, getattr(request, "path", "API view"), exc)
        response = Response(_failure_body(failure), status=503)
        response["Retry-After"] = str(failure.retry_after)
        return response
    return exception_handler(exc, context)
