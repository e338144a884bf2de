"""Health endpoints for load balancers and orchestrators.

``/healthz``: the process is up (reads nothing). ``/readyz``: the process can serve, each
dependency reported on its own: the database reachable, the database writable (not a standby or
read-only, and no write refused for a full disk or read-only database on this node in the last
``READYZ_WRITE_FAILURE_SECONDS`` with nothing stored since), the disk (free space of ``var/`` and of
the embedded database's directory), every migration applied, beat's heartbeat and the last
recompute. The first three failing, or a pending migration, is a 503: the node cannot store
events, and a load balancer should send them elsewhere. A stale recompute or a silent beat is
background work: the answer stays 200, "degraded", because pulling the web servers out of rotation
would refuse ingestion (the one thing that must go on) for a problem in the worker or beat. So is
a low disk that does not hold the database.
"""

from __future__ import annotations

import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from core.rows import row_as_dict
from customers.selectors import metrics_freshness
from opsconsole.middleware import database_failure_classify, database_write_failure_read

# Beat's heartbeat: the newest last_run_at it saved. django-celery-beat writes it back at
# every sync (at most every 3 minutes) and a task runs every minute, so a live beat keeps it
# a few minutes old. A dozen rows: no index needed.
BEAT_LAST_RUN_SQL = "SELECT max(last_run_at) AS last_run_at FROM django_celery_beat_periodictask WHERE enabled"
DATABASE_PING_SQL = "SELECT 1"
# A standby, or a database whose transactions are read-only (default_transaction_read_only): every write fails.
DATABASE_READ_ONLY_SQL = (
    "SELECT pg_is_in_recovery() AS in_recovery, current_setting('transaction_read_only') = 'on' AS read_only"
)

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


def _disk_check() -> dict[str, Any]:
    """Free space where this node writes (var/: the filesystem queue, backups, state files) and, for
    the embedded server, where the database lives. ``holds_database``: a failure here stops ingestion."""
    places = {"var": Path(settings.VAR_DIR)}
    if settings.EMBEDDED_DATABASE:
        places["database"] = Path(settings.VAR_DIR) / "pgdata"
    minimum = settings.READYZ_MIN_FREE_MB * 1024 * 1024
    free = {name: shutil.disk_usage(path).free for name, path in places.items() if path.exists()}
    low = sorted(name for name, value in free.items() if value < minimum)
    return {
        "ok": not low,
        "free_mb": {name: value // (1024 * 1024) for name, value in free.items()},
        "min_free_mb": settings.READYZ_MIN_FREE_MB,
        **({"low": low} if low else {}),
        "holds_database": "database" in free,
    }


def _writable_check(cursor: Any) -> dict[str, Any]:
    cursor.execute(DATABASE_READ_ONLY_SQL)
    row = row_as_dict(cursor)
    if row["in_recovery"] or row["read_only"]:
        return {
            "ok": False,
            "reason": "read_only",
            "detail": "The database is a standby or its transactions are read-only: nothing can be stored.",
        }
    refused = database_write_failure_read()
    if refused is not None:
        age = round(time.time() - float(refused.get("at", 0)), 1)
        if age <= settings.READYZ_WRITE_FAILURE_SECONDS:
            return {
                "ok": False,
                "reason": refused.get("reason"),
                "detail": refused.get("detail"),
                "refused_seconds_ago": age,
                "retry_after_seconds": settings.READYZ_WRITE_FAILURE_SECONDS,
            }
    return {"ok": True}


def readiness_checks(*, now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of /readyz. Never raises for a database failure: that is the answer."""
    now = now or timezone.now()
    checks: dict[str, Any] = {}
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute(DATABASE_PING_SQL)
            checks["database"] = {"ok": True}
            checks["database_writable"] = _writable_check(cursor)
            checks["disk"] = _disk_check()
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
            beat_last_run = row_as_dict(cursor)["last_run_at"]
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
    disk_stops_ingestion = not checks["disk"]["ok"] and checks["disk"]["holds_database"]
    if not checks["migrations"]["ok"] or not checks["database_writable"]["ok"] or disk_stops_ingestion:
        return 503, {"status": "not_ready", "checks": checks}
    degraded = not (checks["recompute"]["ok"] and checks["beat"]["ok"] and checks["disk"]["ok"])
    return 200, {"status": "degraded" if degraded else "ready", "checks": checks}


def readyz(request: HttpRequest) -> JsonResponse:
    status, body = readiness_checks()
    response = JsonResponse(body, status=status)
    if status == 503:
        response["Retry-After"] = "5"
    response["Cache-Control"] = "no-store"
    return response
