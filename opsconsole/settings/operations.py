"""Running it for real: the supervisor, beat's schedule reads, /readyz, backups and the retention of raw events."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from opsconsole.settings.environment import VAR_DIR, env

# --- Running it for real ---
# The supervisor's record of the children it restarted (run_console; read by Today).
SUPERVISOR_STATE_FILE = env.path("SUPERVISOR_STATE_FILE", default=str(VAR_DIR / "run_console.json"))
# Beat re-reads the schedule (admin edits) this often, and retries a failed read this often.
BEAT_SCHEDULE_REREAD_SECONDS = env.float("BEAT_SCHEDULE_REREAD_SECONDS", default=300.0)
BEAT_SCHEDULE_RETRY_SECONDS = env.float("BEAT_SCHEDULE_RETRY_SECONDS", default=5.0)
# While the database is down beat sends nothing and retries the read, doubling the wait up to this
# (opsconsole/beat.py); the first read that succeeds sends the tasks it held, the recompute included.
BEAT_SCHEDULE_RETRY_MAX_SECONDS = env.float("BEAT_SCHEDULE_RETRY_MAX_SECONDS", default=30.0)
if BEAT_SCHEDULE_REREAD_SECONDS <= 0 or BEAT_SCHEDULE_RETRY_SECONDS <= 0 or BEAT_SCHEDULE_RETRY_MAX_SECONDS <= 0:
    raise ImproperlyConfigured(
        "BEAT_SCHEDULE_REREAD_SECONDS, BEAT_SCHEDULE_RETRY_SECONDS and BEAT_SCHEDULE_RETRY_MAX_SECONDS must be positive."
    )
# /readyz calls the console degraded when beat's newest last_run_at is older than this.
BEAT_HEARTBEAT_STALE_SECONDS = env.int("BEAT_HEARTBEAT_STALE_SECONDS", default=600)
# /readyz fails (database_writable) while a write refused for a full disk or a read-only database is
# more recent than this many seconds and nothing was stored since: the load balancer takes the node
# out, and tries it again after this long without a new refusal. Recorded in this file, shared by the
# node's processes (opsconsole/middleware.py).
READYZ_WRITE_FAILURE_SECONDS = env.int("READYZ_WRITE_FAILURE_SECONDS", default=60)
DATABASE_WRITE_FAILURE_FILE = env.path(
    "DATABASE_WRITE_FAILURE_FILE", default=str(VAR_DIR / "database_write_failure.json")
)
# /readyz's disk check: free space under this on var/ (and the embedded database's disk) is a failure.
READYZ_MIN_FREE_MB = env.int("READYZ_MIN_FREE_MB", default=200)
# `manage.py backup` writes here unless --to says otherwise; pg_dump/pg_restore come from
# PG_BIN_DIR when set, else from where the server's major version has them (opsconsole/backup.py).
BACKUP_DIR = env.path("BACKUP_DIR", default=str(VAR_DIR / "backups"))
PG_BIN_DIR = env.str("PG_BIN_DIR", default="")
# Raw events older than this many months are deleted daily (events/retention.py); 0 keeps
# everything (the default). Never under EVENTS_RETENTION_MIN_MONTHS: the metrics read 90 days
# of rollups (customers.metrics.fold.ROLLUP_RETENTION_DAYS) and a rebuild must find those days.
EVENTS_RETENTION_MIN_MONTHS = 4
EVENTS_RETENTION_MONTHS = env.int("EVENTS_RETENTION_MONTHS", default=0)
if EVENTS_RETENTION_MONTHS != 0 and EVENTS_RETENTION_MONTHS < EVENTS_RETENTION_MIN_MONTHS:
    raise ImproperlyConfigured(
        f"EVENTS_RETENTION_MONTHS must be 0 (keep all) or at least {EVENTS_RETENTION_MIN_MONTHS} "
        "(the metrics and their rebuild read the last 90 days)."
    )
