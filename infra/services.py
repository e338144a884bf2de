"""Writes of the infra app: taking snapshots and storing request counts."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import psycopg
import redis
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from core.flavour import flavour
from core.rows import row_as_dict
from events.models import Event
from infra.models import ApiRequestCount, InfraSnapshot

logger = logging.getLogger(__name__)

# pg_try_advisory_xact_lock key for snapshot_infra ("infr" in ASCII): two beat
# runs or a run and the command never take overlapping snapshots.
SNAPSHOT_LOCK_KEY = 0x696E6672
# Counter rows older than this are deleted by each snapshot; growth needs 14 days.
API_REQUEST_COUNT_RETENTION_DAYS = 90
# Below this many rows PostgreSQL's row estimate may be stale or absent (a table
# never analysed) and an exact count is cheap, so it is counted exactly.
EXACT_ROW_COUNT_BELOW = 100_000
# The window of event dates the event rate is read over, when readings are too few for a trend.
EVENT_DATES_WINDOW_DAYS = 14
# An event that arrives more than this long after it occurred was imported, not lived.
BACKFILL_AGE = timedelta(days=1)
REDIS_TIMEOUT_SECONDS = 2.0


def hour_floor(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def api_request_counts_add(*, counts: Mapping[datetime, int]) -> None:
    """Add per-hour request counts (keys are hour starts) to the hourly totals.

    Idempotent it is not: each call adds. Safe under any number of concurrent
    callers because ``count = count + EXCLUDED.count`` is applied under the row
    lock; hours are sorted so two workers flushing the same two hours lock the
    rows in the same order and cannot deadlock.
    """
    items = sorted((hour, n) for hour, n in counts.items() if n)
    if not items:
        return
    hours = [hour for hour, _ in items]
    amounts = [n for _, n in items]
    # A savepoint, so a failure inside a caller's transaction does not poison it.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(API_REQUESTS_ADD_SQL, [hours, amounts])


# Uses index: the unique index on hour (ON CONFLICT finds the hour's row by it).
API_REQUESTS_ADD_SQL = f"""
INSERT INTO {ApiRequestCount._meta.db_table} (hour, count)
SELECT * FROM unnest(%s::timestamptz[], %s::bigint[])
ON CONFLICT (hour) DO UPDATE SET count = {ApiRequestCount._meta.db_table}.count + EXCLUDED.count
"""


@dataclass(frozen=True)
class RedisMemoryReading:
    """``used_memory`` and ``maxmemory`` in bytes; both null with a reason when Redis was not read.
    ``maxmemory_bytes`` is also null when Redis answered but has no limit set."""

    used_memory_bytes: int | None
    maxmemory_bytes: int | None
    reason: str


def _redis_location(url: str) -> str:
    # Never put a password from the URL into a stored reason.
    parsed = urlparse(url)
    return f"{parsed.hostname or '?'}:{parsed.port or 6379}{parsed.path or ''}"


def redis_memory_read(*, url: str) -> RedisMemoryReading:
    """Read Redis memory use. Never raises: an absent or unreachable Redis is a reading with a reason."""
    if not url:
        return RedisMemoryReading(None, None, "Redis is not configured (set INFRA_REDIS_URL or REDIS_URL).")
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
        )
    except ValueError as exc:
        return RedisMemoryReading(None, None, f"INFRA_REDIS_URL is not a valid Redis URL: {exc}"[:255])
    try:
        info = client.info("memory")
    except redis.RedisError as exc:
        reason = f"Redis at {_redis_location(url)} did not answer: {type(exc).__name__}: {exc}"
        logger.warning("infra snapshot: %s", reason)
        return RedisMemoryReading(None, None, reason[:255])
    finally:
        client.close()
    used = info.get("used_memory")
    if used is None:
        return RedisMemoryReading(None, None, "Redis INFO memory has no used_memory field.")
    maxmemory = int(info.get("maxmemory") or 0)
    return RedisMemoryReading(int(used), maxmemory or None, "")


@dataclass(frozen=True)
class DatabaseSizes:
    db_size_bytes: int
    events_table_bytes: int
    events_row_estimate: int | None


DATABASE_SIZES_SQL = """
SELECT pg_database_size(current_database()) AS db_size,
       coalesce(pg_total_relation_size(to_regclass('ops_events')), 0) AS events_bytes,
       (SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass('ops_events')) AS estimate
"""
# On Citus the coordinator holds only the tables' shells: the sizes are the sum over every node,
# and the row estimate the sum of the shards' own (each node's catalog knows only its shards).
CITUS_DATABASE_SIZES_SQL = """
SELECT (SELECT sum(result::bigint) FROM run_command_on_all_nodes(
            $$SELECT pg_database_size(current_database())$$) WHERE success) AS db_size,
       citus_total_relation_size('ops_events') AS events_bytes,
       (SELECT sum(greatest(result::bigint, 0)) FROM run_command_on_shards('ops_events',
            $$SELECT reltuples::bigint FROM pg_class WHERE oid = '%s'::regclass$$) WHERE success) AS estimate
"""


def database_sizes_read() -> DatabaseSizes:
    """Sizes straight from PostgreSQL's catalog functions (no table scan), summed over the nodes on Citus."""
    if not flavour().rows_on_one_server:
        # Citus refuses its size functions in a transaction that has written to several shards (a
        # caller's own, say); sizes are storage, not transactional, so a short connection of their own.
        with psycopg.connect(**connection.get_connection_params(), autocommit=True) as own:
            row = row_as_dict(own.execute(CITUS_DATABASE_SIZES_SQL))
    else:
        with connection.cursor() as cursor:
            cursor.execute(DATABASE_SIZES_SQL)
            row = row_as_dict(cursor)
    estimate = row["estimate"]
    if estimate is None or estimate < EXACT_ROW_COUNT_BELOW:
        # reltuples is -1 for a table never analysed and lags on a young one.
        estimate = Event.objects.count()
    return DatabaseSizes(int(row["db_size"]), int(row["events_bytes"]), int(estimate))


# The summarisation waits at most this long for a running VACUUM's lock (see events_brin_summarize).
BRIN_LOCK_TIMEOUT_SQL = "SET LOCAL lock_timeout = '2s'"
# Summarises the block ranges of ops_events_received_brin added since its last summary (no index is read).
BRIN_SUMMARIZE_SQL = """
SELECT brin_summarize_new_values(i) FROM to_regclass('ops_events_received_brin') i WHERE i IS NOT NULL
"""


def events_brin_summarize() -> None:
    """Summarise the filled BRIN ranges of ops_events.received_at not yet summarised.

    An unsummarised range is always scanned, so without this (or autovacuum's
    autosummarize catching up) the 24 h count degrades to reading the table.
    It takes a SHARE UPDATE EXCLUSIVE lock, which does not block inserts but
    waits for a running VACUUM: the lock timeout keeps the snapshot from waiting.
    It needs to own the index; without that, autosummarize alone has to do.
    """
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(BRIN_LOCK_TIMEOUT_SQL)
            cursor.execute(BRIN_SUMMARIZE_SQL)
    except DatabaseError as exc:
        logger.info("infra snapshot: BRIN summarisation skipped (%s); relying on autosummarize", exc)


def events_received_count(*, since: datetime, until: datetime) -> int:
    """Events stored in [since, until). Uses the BRIN index on received_at
    (infra migration 0002): rows arrive in received_at order, so the last day
    is a contiguous run of block ranges."""
    return Event.objects.filter(received_at__gte=since, received_at__lt=until).count()


def events_occurred_count(*, since: datetime, until: datetime) -> int:
    """Events whose own date (occurred_at) is in [since, until): the rate a backfill cannot inflate.
    Uses the BRIN index ops_events_occurred_brin."""
    return Event.objects.filter(occurred_at__gte=since, occurred_at__lt=until).count()


# Uses index: ops_events_received_brin (the arrival window); the age test is a filter on those rows.
EVENTS_BACKFILLED_SQL = """
SELECT count(*) AS backfilled FROM ops_events
WHERE received_at >= %(since)s AND received_at < %(until)s AND occurred_at < received_at - make_interval(secs => %(age_seconds)s)
"""


def events_backfilled_count(*, since: datetime, until: datetime) -> int:
    """Events stored in [since, until) that had occurred more than BACKFILL_AGE before they arrived."""
    with connection.cursor() as cursor:
        cursor.execute(
            EVENTS_BACKFILLED_SQL, {"since": since, "until": until, "age_seconds": BACKFILL_AGE.total_seconds()}
        )
        return int(row_as_dict(cursor)["backfilled"])


def disk_free_read() -> int | None:
    """Free bytes of the disk the embedded database's data directory is on; None for a server
    elsewhere (its disk is not this machine's to measure)."""
    if not getattr(settings, "EMBEDDED_DATABASE", False):
        return None
    return shutil.disk_usage(settings.VAR_DIR).free


# Uses index: the unique index on hour (a range of at most a day's hours).
API_REQUESTS_COUNT_SQL = f"""
SELECT coalesce(sum(count), 0) AS requests FROM {ApiRequestCount._meta.db_table} WHERE hour >= %s AND hour < %s
"""


def api_requests_count(*, since: datetime, until: datetime) -> int:
    """API requests counted in the whole hours in [since, until)."""
    with connection.cursor() as cursor:
        cursor.execute(API_REQUESTS_COUNT_SQL, [since, until])
        return int(row_as_dict(cursor)["requests"])


# One snapshot at a time (an advisory lock: no table or index is read).
SNAPSHOT_LOCK_SQL = "SELECT pg_try_advisory_xact_lock(%s) AS locked"


def infra_snapshot_take(*, min_interval: timedelta | None = None) -> InfraSnapshot | None:
    """Record one ``InfraSnapshot`` now.

    Returns None (and writes nothing) when another snapshot is being taken at
    the same moment (advisory lock), or when ``min_interval`` is given and a
    snapshot is already newer than that (so a retried or duplicated beat run
    does not double-weight an hour in the fit). A missing Redis never fails it.
    """
    now = timezone.now()
    # Outside the transaction: a slow Redis must not hold the lock or a connection open in a transaction.
    redis_reading = redis_memory_read(url=settings.INFRA_REDIS_URL)
    events_brin_summarize()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(SNAPSHOT_LOCK_SQL, [SNAPSHOT_LOCK_KEY])
            if not row_as_dict(cursor)["locked"]:
                logger.info("infra snapshot skipped: another one is being taken")
                return None
        if min_interval is not None and InfraSnapshot.objects.filter(taken_at__gt=now - min_interval).exists():
            logger.info("infra snapshot skipped: one was taken less than %s ago", min_interval)
            return None
        sizes = database_sizes_read()
        this_hour = hour_floor(now)
        previous_at = InfraSnapshot.objects.order_by("-taken_at").values_list("taken_at", flat=True).first()
        snapshot = InfraSnapshot.objects.create(
            taken_at=now,
            db_size_bytes=sizes.db_size_bytes,
            events_table_bytes=sizes.events_table_bytes,
            events_row_estimate=sizes.events_row_estimate,
            redis_used_memory_bytes=redis_reading.used_memory_bytes,
            redis_maxmemory_bytes=redis_reading.maxmemory_bytes,
            redis_reason=redis_reading.reason,
            events_received_24h=events_received_count(since=now - timedelta(hours=24), until=now),
            # Whole hours only: the current hour is still being counted by the web workers.
            api_requests_24h=api_requests_count(since=this_hour - timedelta(hours=24), until=this_hour),
            events_occurred_14d=events_occurred_count(since=now - timedelta(days=EVENT_DATES_WINDOW_DAYS), until=now),
            events_backfilled=events_backfilled_count(since=previous_at or now - timedelta(hours=24), until=now),
            disk_free_bytes=disk_free_read(),
        )
        ApiRequestCount.objects.filter(hour__lt=now - timedelta(days=API_REQUEST_COUNT_RETENTION_DAYS)).delete()
    return snapshot
