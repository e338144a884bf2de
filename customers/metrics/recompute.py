"""The engine's entry points: ``metrics_recompute`` (incremental or full) and ``tenant_rollups_rebuild``.

Flow (one direction): ``ops_events`` (authoritative) is folded into the rollup
tables by fold.py; the same run then computes one ``ops_tenant_metrics`` row per
tenant (write.py: signals.py measures, risk.py assesses) and writes every row with
one statement. Everything happens in ONE transaction, so a page never sees half a
run and a crash leaves the previous state, which the next run simply continues from.

Hooks: settings.METRICS_POST_RECOMPUTE_HOOKS (dotted paths) run after the
metrics are written, inside the same transaction, as
hook(as_of=, computed_at=, dirty_only=). With ``dirty_only`` the run rewrote
only the rows of the tenants in its dirty set (scope.py); every other tenant's
rollups, row and settings are as the previous run left them, so a hook may limit
its work to the dirty ones (scope.dirty_tenants_sql). Playbook matching plugs in
there and may raise a tenant's level through write.tenant_levels_raise.

Overlap: every writer takes the same transaction-scoped advisory lock. The
periodic run uses ``pg_try_advisory_xact_lock`` and skips (logged) when another
run holds it; rebuilds wait for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from core.rows import row_as_dict
from customers.churn import churned_tenants_settle
from customers.metrics.contacts import tenant_contacts_write
from customers.metrics.daily import summary_rebuild
from customers.metrics.fold import (
    friction_types_current,
    rollups_fold_all,
    rollups_fold_new,
    rollups_prune,
    rollups_refold_tenants,
    rollups_start_day,
    state_lock,
)
from customers.metrics.lifecycle import lifecycle_refresh
from customers.metrics.scope import dirty_scope, dirty_tenants_begin, dirty_tenants_end
from customers.metrics.vocabulary import fold_registry_key_current, registry_key_current
from customers.metrics.write import tenant_metrics_write, tenants_mark_stale
from customers.revenue import revenue_traits_apply

logger = logging.getLogger(__name__)

# Advisory lock key shared by every writer of the rollups and ops_tenant_metrics
# (an arbitrary constant; it only has to be unique within this database).
METRICS_LOCK_KEY = 7_104_202_604
TRY_LOCK_SQL = "SELECT pg_try_advisory_xact_lock(%s) AS locked"
LOCK_SQL = "SELECT pg_advisory_xact_lock(%s)"


@dataclass
class RecomputeResult:
    skipped: bool = False
    mode: str = "incremental"
    events_folded: int = 0
    tenants_written: int = 0
    watermark_xid: int = 0
    as_of: date | None = None
    # What the run changed beyond the rows it wrote, for `recompute_metrics` to print:
    # churned customers settled to "not at risk", and what each post-recompute hook returned.
    churned_settled: int = 0
    # Accounts' mrr traits read (customers/revenue.py) and those skipped, with why.
    revenue_traits_applied: int = 0
    revenue_traits_skipped: list[str] = field(default_factory=list)
    # Lifecycle rows the run wrote (customers/metrics/lifecycle.py::lifecycle_refresh).
    lifecycle_stages_written: int = 0
    hook_results: list[Any] = field(default_factory=list)


def post_recompute_hooks() -> list[Callable[..., Any]]:
    return [import_string(path) for path in getattr(settings, "METRICS_POST_RECOMPUTE_HOOKS", [])]


def _metrics_finish(result: RecomputeResult, *, now: datetime, dirty_only: bool) -> None:
    as_of = now.astimezone(UTC).date()
    result.as_of = as_of
    # Before the write: each row written carries the MRR in force (expected_loss follows it).
    result.revenue_traits_applied, result.revenue_traits_skipped = revenue_traits_apply(
        default_currency=settings.REVENUE_DEFAULT_CURRENCY
    )
    result.tenants_written = tenant_metrics_write(as_of=as_of, now=now, dirty_only=dirty_only)
    # The person to call at each rewritten account, in the same transaction as its row.
    tenant_contacts_write(as_of=as_of, now=now, scope=dirty_scope() if dirty_only else "all")
    result.churned_settled = churned_tenants_settle()  # churned customers are on no at-risk list
    # Still inside the run's transaction: a hook (e.g. playbook matching, which may raise a
    # tenant's risk_level) commits together with the metrics, so readers never see the gap.
    for hook in post_recompute_hooks():
        result.hook_results.append(hook(as_of=as_of, computed_at=now, dirty_only=dirty_only))


def metrics_recompute(
    *, full: bool = False, now: datetime | None = None, defer_metrics: bool = False
) -> RecomputeResult:
    """Fold new events into the rollups (or rebuild them with ``full``) and rewrite ops_tenant_metrics.

    Idempotent and safe to run from several workers: a run that finds another
    one in progress returns ``skipped=True`` at once (logged) without writing.
    A new friction event type (weight edited from 0) makes the run a full
    rebuild, because the session rollup only keeps friction types.

    With ``defer_metrics`` (phase 1 of ``metrics_recompute_fanout``) the run
    only folds and marks the tenants to recompute as stale; shard tasks write
    their metrics.
    """
    now = now or timezone.now()
    result = RecomputeResult(mode="full" if full else "incremental")
    with transaction.atomic(), connection.cursor() as cursor:
        # The lock comes first: the state row read below must be the last committed one.
        cursor.execute(TRY_LOCK_SQL, [METRICS_LOCK_KEY])
        if not row_as_dict(cursor)["locked"]:
            logger.info("metrics recompute skipped: another run holds the lock")
            result.skipped = True
            return result
        state = state_lock()
        dirty_tenants_begin()
        friction_types = friction_types_current()
        fold_key = fold_registry_key_current()
        if not full and not set(friction_types) <= set(state.friction_types) and state.last_full_at is not None:
            logger.info("friction types changed (%s); rebuilding the rollups", friction_types)
            full = True
        start_day = rollups_start_day(now.astimezone(UTC).date())
        dirty_only = True
        fold_changes: dict[str, Any] = {}
        if full or state.last_full_at is None:
            state.rollups_start_day = start_day
            result.mode = "full"
            result.events_folded = rollups_fold_all(state, friction_types=friction_types)
            state.last_full_at = now
            dirty_only = False
        else:
            rollups_prune(state, start_day=start_day)
            result.events_folded = rollups_fold_new(
                state, friction_types=list(state.friction_types), changes=fold_changes
            )
            state.last_incremental_at = now
            if fold_key != state.fold_registry_key:
                # The registry's weights or signals changed: the day summaries carry them.
                summary_rebuild()
        # A weight, role, label, wording or risk-weight edit changes every tenant's numbers or
        # texts: recompute them all. Read after the fold, so an example type this run's events
        # first sent (it now speaks in the texts) rewords every tenant in this same run.
        # The stages follow the weekly activity just folded (or the week that turned); before the
        # deferred return, so a fanned-out run writes them too.
        result.lifecycle_stages_written = lifecycle_refresh(
            state, now=now, rebuild=not dirty_only, first_day=fold_changes.get("first_day")
        )
        registry_key = registry_key_current(now=now)
        dirty_only = dirty_only and registry_key == state.registry_key
        state.last_events_folded = result.events_folded
        state.registry_key = registry_key
        state.fold_registry_key = fold_key
        state.save()
        result.watermark_xid = state.watermark_xid
        if defer_metrics:
            result.as_of = now.astimezone(UTC).date()
            result.tenants_written = tenants_mark_stale(as_of=result.as_of, dirty_only=dirty_only)
        else:
            _metrics_finish(result, now=now, dirty_only=dirty_only)
        dirty_tenants_end()
    logger.info(
        "metrics recompute (%s): %d events folded, %d tenants written",
        result.mode,
        result.events_folded,
        result.tenants_written,
    )
    return result


def tenant_rollups_rebuild(*, tenant_ids: Iterable[str], now: datetime | None = None) -> RecomputeResult:
    """Rebuild the rollups of these tenants from ops_events, then rewrite ops_tenant_metrics.

    Call after anything changes already-folded events in place, above all a
    reclassification that flips ``is_real``. Waits for a running recompute
    (the same advisory lock) instead of skipping: the rebuild must happen.
    Only events the incremental path had already folded are refolded, so the
    watermark stays valid and newer events are still picked up by the next run.
    """
    now = now or timezone.now()
    ids = sorted({str(t) for t in tenant_ids})
    result = RecomputeResult(mode="tenants")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(LOCK_SQL, [METRICS_LOCK_KEY])
        state = state_lock()
        dirty_tenants_begin()
        if ids:
            result.events_folded = rollups_refold_tenants(state, ids)
        result.lifecycle_stages_written = lifecycle_refresh(state, now=now, rebuild=False)
        result.watermark_xid = state.watermark_xid
        registry_key = registry_key_current(now=now)
        fold_key = fold_registry_key_current()
        if fold_key != state.fold_registry_key:
            summary_rebuild()  # the day summaries carry the registry's weights and signals
        _metrics_finish(result, now=now, dirty_only=registry_key == state.registry_key)
        state.registry_key = registry_key
        state.fold_registry_key = fold_key
        # Moves metrics_version(): the cached API answers and pages are rebuilt on the next read.
        state.last_tenants_rebuilt_at = now
        state.save(update_fields=["registry_key", "fold_registry_key", "last_tenants_rebuilt_at", "lifecycle_week"])
        dirty_tenants_end()
    return result
