"""Health endpoints for load balancers and orchestrators.

``/healthz``: the process is up (reads nothing). ``/readyz``: the process can serve:
the database answers and every migration is applied (otherwise 503, so a load balancer
sends no traffic to it), with the last recompute's age and beat's heartbeat reported
beside them. Those two are background work: a stale one marks the answer "degraded"
and keeps it 200, because pulling the web servers out of rotation would refuse
ingestion (the one thing that must go on) for a problem in the worker or beat.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from customers.selectors import metrics_freshness
from opsconsole.middleware import database_failure_classify

# Beat's heartbeat: the newest last_run_at it saved. django-celery-beat writes it back at
# every sync (at most every 3 minutes) and a task runs every minute, so a live beat keeps it
# a few minutes old. A dozen rows: no index needed.
BEAT_LAST_RUN_SQL = "SELECT max(last_run_at) AS last_run_at FROM django_celery_beat_periodictask WHERE enabled"
DATABASE_PING_SQL = "SELECT 1"

# Once every migration is applied a process remembers it: a deploy restarts the processes.
_migrations_applied = False


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for load balancers and the bench's framework floor: no database, no session."""
    return HttpResponse("ok", content_type="text/plain")


def _migrations_pending() -> list[str]:
    global _migrations_applied
    if _migrations_applied:
        return []
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    pending = [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]
    _migrations_applied = not pending
    return pending


def _age_seconds(then: datetime | None, now: datetime) -> float | None:
    return None if then is None else round((now - then).total_seconds(), 1)


def readiness_checks(*, now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of /readyz. Never raises for a database failure: that is the answer."""
    now = now or timezone.now()
    checks: dict[str, Any] = {}
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute(DATABASE_PING_SQL)
            checks["database"] = {"ok": True}
            pending = _migrations_pending()
            checks["migrations"] = {"ok": not pending, "pending": pending}
            freshness = metrics_freshness(now=now)
            recompute_age = _age_seconds(freshness.computed_at, now)
            checks["recompute"] = {
                "ok": freshness.computed_at is not None and not freshness.is_stale,
                "age_seconds": recompute_age,
                "stale_after_seconds": settings.METRICS_STALE_AFTER_MINUTES * 60,
            }
            cursor.execute(BEAT_LAST_RUN_SQL)
            names = [column.name for column in cursor.description]
            beat_last_run = dict(zip(names, cursor.fetchone(), strict=True))["last_run_at"]
            beat_age = _age_seconds(beat_last_run, now)
            checks["beat"] = {
                "ok": beat_age is not None and beat_age <= settings.BEAT_HEARTBEAT_STALE_SECONDS,
                "last_run_age_seconds": beat_age,
                "stale_after_seconds": settings.BEAT_HEARTBEAT_STALE_SECONDS,
            }
    except (DatabaseError, InterfaceError) as exc:
        failure = database_failure_classify(exc)
        if failure is None:
            raise
        checks["database"] = {"ok": False, "reason": failure.reason, "detail": failure.detail}
        connections[DEFAULT_DB_ALIAS].close()  # the next probe opens a fresh connection
        return 503, {"status": "not_ready", "checks": checks}
    if not checks["migrations"]["ok"]:
        return 503, {"status": "not_ready", "checks": checks}
    degraded = not (checks["recompute"]["ok"] and checks["beat"]["ok"])
    return 200, {"status": "degraded" if degraded else "ready", "checks": checks}


def readyz(request: HttpRequest) -> JsonResponse:
    status, body = readiness_checks()
    response = JsonResponse(body, status=status)
    if status == 503:
        response["Retry-After"] = "5"
    response["Cache-Control"] = "no-store"
    return response
