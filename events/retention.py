"""Raw-event retention: delete ``ops_events`` older than EVENTS_RETENTION_MONTHS (0, the
default, keeps everything), without changing any metric.

Every metric reads days from the rollups, which keep ROLLUP_RETENTION_DAYS (90) days, and
the setting cannot be shorter than EVENTS_RETENTION_MIN_MONTHS, so no day a metric or a
rebuild reads is ever deleted. The all-history aggregates are kept exact by keeping, of the
old events, the first and the last of each (tenant, event type) (a tenant's age, "last
seen", "last investigation": ops_rollup_tenant_span) and the first and the last real one of
each user and event type (the north star's first and last interaction, whichever types
count as one: ops_real_users). So
``recompute_metrics --full`` and ``reclassify_events`` after a prune give what they gave
before it. The limit: a rule edit that later excludes a user's oldest kept event moves
that user's first interaction to the next kept one, not to an event that was deleted.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

# A month, for the cutoff: 31 days, so a retention of N months never keeps less than N months.
RETENTION_MONTH = timedelta(days=31)

# Old events (occurred before the cutoff; ops_events_occurred_brin finds them) minus the ones
# that carry an all-history aggregate: first/last per tenant and type, first/last real per user and type.
EVENTS_RETENTION_PRUNE_SQL = """
WITH old AS (
    SELECT id, tenant_id, event_type, user_id, is_real, occurred_at
    FROM ops_events WHERE occurred_at < %(cutoff)s
), keep AS (
    (SELECT DISTINCT ON (tenant_id, event_type) id FROM old ORDER BY tenant_id, event_type, occurred_at, id)
    UNION
    (SELECT DISTINCT ON (tenant_id, event_type) id FROM old ORDER BY tenant_id, event_type, occurred_at DESC, id DESC)
    UNION
    (SELECT DISTINCT ON (user_id, event_type) id FROM old WHERE is_real AND user_id <> ''
     ORDER BY user_id, event_type, occurred_at, id)
    UNION
    (SELECT DISTINCT ON (user_id, event_type) id FROM old WHERE is_real AND user_id <> ''
     ORDER BY user_id, event_type, occurred_at DESC, id DESC)
)
DELETE FROM ops_events e USING old
WHERE e.id = old.id AND NOT EXISTS (SELECT 1 FROM keep WHERE keep.id = old.id)
"""


def events_retention_cutoff(*, months: int, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - months * RETENTION_MONTH


def events_retention_prune(*, months: int | None = None, now: datetime | None = None) -> int:
    """Delete the old events the retention allows; returns how many. 0 months: nothing.

    Idempotent (a second run finds only the kept rows, which it keeps again). One statement
    in one transaction: ingestion goes on beside it (new rows are never old)."""
    months = settings.EVENTS_RETENTION_MONTHS if months is None else months
    if months == 0:
        return 0
    if months < settings.EVENTS_RETENTION_MIN_MONTHS:
        raise ValueError(
            f"a retention of {months} months is under the minimum of {settings.EVENTS_RETENTION_MIN_MONTHS}."
        )
    cutoff = events_retention_cutoff(months=months, now=now)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(EVENTS_RETENTION_PRUNE_SQL, {"cutoff": cutoff})
        deleted = cursor.rowcount
    logger.info("retention: deleted %d events that occurred before %s (%d months)", deleted, cutoff, months)
    return deleted
