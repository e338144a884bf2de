"""The per-key ingest rate limit: one counter row per key and minute, in PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from events.models import ApiKey, IngestRateWindow

_RATE_SQL = """
INSERT INTO events_ingestratewindow (api_key_id, window_start, requests) VALUES (%s, %s, 1)
ON CONFLICT (api_key_id, window_start) DO UPDATE SET requests = events_ingestratewindow.requests + 1
RETURNING requests
"""


def ingest_rate_check(*, api_key: ApiKey, now: datetime | None = None) -> int | None:
    """Count one ingest request against the key's per-minute budget.

    Returns None when the request may proceed, or the seconds until the window
    resets (for ``Retry-After``). One atomic upsert: correct across any number
    of web workers, and it needs nothing but PostgreSQL (ingestion must keep
    working while Redis is down).
    """
    limit = api_key.rate_limit_per_minute
    if limit is None:
        limit = settings.INGEST_RATE_LIMIT_PER_MINUTE
    if not limit:
        return None
    now = now or timezone.now()
    window_start = now.replace(second=0, microsecond=0)
    with connection.cursor() as cursor:
        cursor.execute(_RATE_SQL, [api_key.pk, window_start])
        (requests,) = cursor.fetchone()
    if requests <= limit:
        return None
    return max(1, 60 - now.second)


def ingest_rate_windows_prune(*, older_than: timedelta = timedelta(hours=1)) -> int:
    """Delete counters of finished windows; returns how many rows went."""
    deleted, _ = IngestRateWindow.objects.filter(window_start__lt=timezone.now() - older_than).delete()
    return deleted
