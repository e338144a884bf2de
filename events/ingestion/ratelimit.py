"""The per-key ingest rate limit: one counter per key and minute, in Redis when one is
configured (``INGEST_RATE_LIMIT_REDIS_URL``, by default ``REDIS_URL``), else in PostgreSQL.

Both counters have the same semantics: the n-th request of a key in a UTC minute is let
through while n <= the key's limit, and refused with the seconds left in that minute.
Redis keeps the count off the database's write path (the PostgreSQL counter is an upsert
committed on its own, before the batch's transaction); ingestion never depends on Redis:
while Redis does not answer, the count is taken in PostgreSQL, and Redis is asked again
after ``REDIS_RETRY_SECONDS``. During the minute of a switch a key may be let through up to
its limit in each counter (the two do not add up): the limit protects the console, and a
Redis outage is no time to refuse traffic the database would take.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone
from redis.commands.core import Script

from core.models import ApiKey
from core.rows import value_of
from events.models import IngestRateWindow

logger = logging.getLogger(__name__)

# Uses the unique constraint (api_key_id, window_start) of events_ingestratewindow.
_RATE_SQL = """
INSERT INTO events_ingestratewindow (api_key_id, window_start, requests) VALUES (%(key)s, %(window)s, 1)
ON CONFLICT (api_key_id, window_start) DO UPDATE SET requests = events_ingestratewindow.requests + 1
RETURNING requests AS requests
"""
# The counter as a transaction of its own that does not wait for its WAL to reach the disk: a
# count lost in a crash only lets a few more requests through that minute, and the flush was
# the larger part of the count's time. Both statements travel as one query, hence one implicit
# transaction, so SET LOCAL ends with it.
_RATE_ALONE_SQL = "SET LOCAL synchronous_commit TO OFF;\n" + _RATE_SQL

# A counter outlives its minute by this much, then Redis drops it (nothing to prune).
REDIS_COUNTER_TTL_SECONDS = 120
# How long a web process counts in PostgreSQL after Redis failed to answer, before asking
# Redis again: a Redis that is down costs one connection timeout per process per interval,
# not one per request.
REDIS_RETRY_SECONDS = 5.0
# A request must not wait long on a Redis that does not answer: past this it is counted in PostgreSQL.
REDIS_TIMEOUT_SECONDS = 0.25

# INCR and EXPIRE as one command with one reply: a MULTI/EXEC pipeline is four commands and as
# many replies to pack and read, more of a small request's CPU than the rest of the count.
_COUNT_SCRIPT = """
local requests = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return requests
"""

# The process's client (a connection pool) and its counting script, made on first use in each
# process (gunicorn forks after importing the app, and a pool must not cross a fork), for the URL
# it was made for.
_client: tuple[int, str, redis.Redis, Script] | None = None
_redis_failed_at = float("-inf")


def _redis() -> Script | None:
    """The Redis script to count with, or None (none configured, or it failed lately)."""
    global _client
    url = settings.INGEST_RATE_LIMIT_REDIS_URL
    if not url or time.monotonic() - _redis_failed_at < REDIS_RETRY_SECONDS:
        return None
    pid = os.getpid()
    if _client is None or _client[0] != pid or _client[1] != url:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
        )
        _client = (pid, url, client, client.register_script(_COUNT_SCRIPT))
    return _client[3]


def redis_counter_key(api_key: ApiKey, window_start: datetime) -> str:
    """The Redis key of a key's counter for the minute starting at ``window_start``. The key's
    prefix keeps two consoles (or two test databases) sharing a Redis apart; its id keeps two
    keys apart."""
    return f"opsconsole:ingest-rate:{api_key.prefix}:{api_key.pk}:{int(window_start.timestamp())}"


def _count_in_redis(count: Script, api_key: ApiKey, window_start: datetime) -> int | None:
    """This request's number in its minute, counted in Redis (one round trip: INCR and EXPIRE
    in one script, sent by its digest), or None when Redis did not answer."""
    global _redis_failed_at
    try:
        requests = count(keys=[redis_counter_key(api_key, window_start)], args=[REDIS_COUNTER_TTL_SECONDS])
    except redis.RedisError as exc:
        _redis_failed_at = time.monotonic()
        logger.warning("ingest rate limit: Redis did not answer (%s); counting in PostgreSQL for now", exc)
        return None
    return int(requests)


def _count_in_postgres(api_key: ApiKey, window_start: datetime) -> int:
    # Inside a caller's transaction the count commits with it, durably, as the caller's rows do.
    alone = connection.get_autocommit() and not connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute(_RATE_ALONE_SQL if alone else _RATE_SQL, {"key": api_key.pk, "window": window_start})
        if alone:
            cursor.nextset()
        requests = value_of(cursor, "requests")
    return int(requests)


def ingest_rate_check(*, api_key: ApiKey, now: datetime | None = None) -> int | None:
    """Count one ingest request against the key's per-minute budget.

    Returns None when the request may proceed, or the seconds until the window
    resets (for ``Retry-After``). One atomic increment (Redis's INCR, or an upsert):
    correct across any number of web workers.
    """
    limit = api_key.rate_limit_per_minute
    if limit is None:
        limit = settings.INGEST_RATE_LIMIT_PER_MINUTE
    if not limit:
        return None
    now = now or timezone.now()
    window_start = now.replace(second=0, microsecond=0)
    count = _redis()
    requests = _count_in_redis(count, api_key, window_start) if count is not None else None
    if requests is None:
        requests = _count_in_postgres(api_key, window_start)
    if requests <= limit:
        return None
    return max(1, 60 - now.second)


def ingest_rate_windows_prune(*, older_than: timedelta = timedelta(hours=1)) -> int:
    """Delete PostgreSQL counters of finished windows; returns how many rows went."""
    deleted, _ = IngestRateWindow.objects.filter(window_start__lt=timezone.now() - older_than).delete()
    return deleted
