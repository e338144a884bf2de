"""Fan-out: the metrics pass split by tenant shard across Celery workers.

Phase 1 folds (one transaction, as ``metrics_recompute``) and marks the rows to
recompute as stale; each shard task then recomputes its stale rows in its own
transaction, and the last one to finish stamps every row and runs the hooks once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone

from core.rows import row_as_dict
from customers.churn import churned_tenants_settle
from customers.metrics.contacts import tenant_contacts_write
from customers.metrics.recompute import (
    LOCK_SQL,
    METRICS_LOCK_KEY,
    RecomputeResult,
    metrics_recompute,
    post_recompute_hooks,
)
from customers.metrics.scope import (
    dirty_scope,
    dirty_tenants_begin,
    dirty_tenants_end,
    stale_tenants_add_sql,
    tenant_shard_sql,
)
from customers.metrics.write import COMPUTED_AT_STAMP_SQL, metrics_upsert
from customers.models import MetricsState

SHARED_LOCK_SQL = "SELECT pg_advisory_xact_lock_shared(%s)"
# Any row still to write for this day? customers_tenant and ops_tenant_metrics by primary key.
ROWS_PENDING_SQL = """
SELECT EXISTS (SELECT 1 FROM customers_tenant t LEFT JOIN ops_tenant_metrics m ON m.tenant_id = t.tenant_id
               WHERE m.tenant_id IS NULL OR m.stale OR m.as_of IS DISTINCT FROM %s) AS pending
"""


def tenant_metrics_shard_write(*, shard: int, shards: int, now: datetime) -> int:
    """Recompute the stale rows of one tenant shard, in its own transaction; returns how many.

    Shards hold the advisory lock SHARED, so they run side by side on several
    workers while a fold (which needs it exclusively) waits or skips. Each
    tenant belongs to exactly one shard, so shards never write the same row.
    """
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not in 0..{shards - 1}")
    as_of = now.astimezone(UTC).date()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(SHARED_LOCK_SQL, [METRICS_LOCK_KEY])
        dirty_tenants_begin()
        cursor.execute(
            stale_tenants_add_sql(shard=f" AND {tenant_shard_sql('t.tenant_id')}"),
            {"d": as_of, "shard": shard, "shards": shards},
        )
        written = metrics_upsert(as_of=as_of, now=now, dirty_only=True)
        # The shard's accounts' people to call, in the same transaction as their rows.
        tenant_contacts_write(as_of=as_of, now=now, scope=dirty_scope())
        dirty_tenants_end()
        return written


def metrics_fanout_finish(*, now: datetime) -> bool:
    """After the last shard: stamp every row's computed_at and run the post-recompute hooks, once.

    Every shard task calls this; only a call that finds no stale row left and
    wins the compare-and-set on the state row does the work (returns True).
    """
    as_of = now.astimezone(UTC).date()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(LOCK_SQL, [METRICS_LOCK_KEY])  # waits for running shards
        cursor.execute(ROWS_PENDING_SQL, [as_of])
        if row_as_dict(cursor)["pending"]:
            return False
        claimed = (
            MetricsState.objects.filter(id=1).exclude(last_fanout_finished_at=now).update(last_fanout_finished_at=now)
        )
        if not claimed:
            return False
        cursor.execute(COMPUTED_AT_STAMP_SQL, [now, now])
        churned_tenants_settle()  # churned customers are on no at-risk list
        # The shards' dirty sets are gone with their transactions: the hooks look at every tenant.
        for hook in post_recompute_hooks():
            hook(as_of=as_of, computed_at=now, dirty_only=False)
    return True


def metrics_recompute_fanout(
    *, shards: int, dispatch: Callable[[int, int, datetime], None], full: bool = False, now: datetime | None = None
) -> RecomputeResult:
    """Fold (one transaction, as metrics_recompute), then hand each tenant shard to ``dispatch``.

    ``dispatch(shard, shards, now)`` must eventually run
    ``tenant_metrics_shard_write`` and then ``metrics_fanout_finish`` for that
    shard (customers.tasks queues a Celery task per shard). The result is the
    same as one ``metrics_recompute`` run; readers may see shards land a few
    seconds apart (each row is consistent on its own, and ``stale`` says which
    rows are waiting).
    """
    now = now or timezone.now()
    result = metrics_recompute(full=full, now=now, defer_metrics=True)
    if not result.skipped:
        for shard in range(shards):
            dispatch(shard, shards, now)
    return result
