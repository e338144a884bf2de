"""Which tenants a run recomputes, and the fan-out of the metrics pass by tenant shard.

An incremental run recomputes only tenants with new events or a stale row
(missing, another day, kind or plan limit edited, registry edited); the result
must be what recomputing everyone gives. The fan-out splits the metrics pass
across workers and must equal one worker's run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import override_settings

from customers.metrics.fanout import metrics_fanout_finish, metrics_recompute_fanout, tenant_metrics_shard_write
from customers.metrics.fold import ROLLUP_KEYS
from customers.metrics.recompute import metrics_recompute
from customers.models import Tenant, TenantMetrics
from events.models import EventType
from tests.customers.conftest import NOW, Ev, caches_snapshot, days_ago

pytestmark = pytest.mark.django_db(transaction=True)

HOOK_CALLS: list[tuple[Any, Any]] = []


def record_hook(*, as_of: Any, computed_at: Any, dirty_only: bool) -> None:
    HOOK_CALLS.append((as_of, computed_at))


def _reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE ops_events, ops_tenant_metrics, ops_metrics_state, customers_tenant, "
            + ", ".join(ROLLUP_KEYS)
            + " CASCADE"
        )


def _history() -> list[Ev]:
    # Twelve tenants so that three shards each get some; a mix of decay, friction and steady use.
    events: list[Ev] = []
    for n in range(12):
        tenant = f"acme{n:02d}"
        events += [Ev(tenant, "INCIDENT_VIEWED", days_ago(d), user_id=f"u{d % 3}") for d in range(8, 8 + n + 3)]
        events += [Ev(tenant, "REPLAY_ABORTED", days_ago(1), session_id=f"s{n}") for _ in range(n % 4)]
    return events


def _today() -> list[Ev]:
    return [Ev(f"acme{n:02d}", "EXPORT_COMPLETED", days_ago(0)) for n in (0, 5, 7)] + [
        Ev("newco", "API_CALL", days_ago(0))
    ]


def test_it_recomputes_only_tenants_with_new_events_and_stamps_every_row(metrics_db):
    # The product has sent exports before (40 days ago), so today's export is no first: it rewords
    # no text, and only its tenant is rewritten.
    metrics_db([*_history(), Ev("acme11", "EXPORT_COMPLETED", days_ago(40))])
    assert metrics_recompute().tenants_written == 12
    metrics_db([Ev("acme03", "EXPORT_COMPLETED", days_ago(0))])
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        result = metrics_recompute()
    assert result.tenants_written == 1
    acme03 = TenantMetrics.objects.get(tenant_id="acme03")
    assert acme03.events_7d == 4  # three REPLAY_ABORTED a day ago + the new export (its views are 8+ days old)
    assert {m.computed_at for m in TenantMetrics.objects.all()} == {NOW + timedelta(minutes=5)}


def test_it_recomputes_a_tenant_whose_kind_was_edited_without_new_events(metrics_db):
    # Active this week, no investigation for 9 days: silent churn, at risk.
    metrics_db([Ev("acme", "API_CALL", days_ago(d)) for d in range(7)] + [Ev("acme", "INCIDENT_VIEWED", days_ago(9))])
    metrics_recompute()
    assert TenantMetrics.objects.get(tenant_id="acme").risk_level is not None
    Tenant.objects.filter(tenant_id="acme").update(kind="internal")
    assert metrics_recompute().tenants_written == 1
    after = TenantMetrics.objects.get(tenant_id="acme")
    assert after.risk_level is None
    assert after.risk_signal_strength == 0.0


def test_it_recomputes_every_tenant_after_a_weight_edit(metrics_db):
    metrics_db(
        [
            Ev("acme", "INCIDENT_VIEWED", days_ago(1)),
            Ev("acme", "POLICY_BLOCK_REPEAT", days_ago(1)),
            Ev("beta", "INCIDENT_VIEWED", days_ago(2)),
        ]
    )
    metrics_recompute()
    acme = TenantMetrics.objects.get(tenant_id="acme")
    assert (acme.stickiness_7d, acme.friction_weighted_score) == (0.2, 2.0)
    EventType.objects.filter(name="INCIDENT_VIEWED").update(engagement_weight=0.7)
    EventType.objects.filter(name="POLICY_BLOCK_REPEAT").update(friction_weight=4.0)  # still a friction type
    result = metrics_recompute()
    # Incremental (no new friction type), yet the day summaries were rebuilt with the new weights.
    assert (result.mode, result.tenants_written) == ("incremental", 2)
    acme = TenantMetrics.objects.get(tenant_id="acme")
    assert (acme.stickiness_7d, acme.friction_weighted_score) == (0.7, 4.0)
    assert TenantMetrics.objects.get(tenant_id="beta").stickiness_7d == 0.7


def test_it_recomputes_every_tenant_on_a_new_day(metrics_db):
    metrics_db([Ev("acme", "INCIDENT_VIEWED", days_ago(6)), Ev("beta", "INCIDENT_VIEWED", days_ago(1))])
    metrics_recompute()
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        assert metrics_recompute().tenants_written == 2
    # The view 6 days ago is now 7 days ago: out of acme's 7-day window.
    assert TenantMetrics.objects.get(tenant_id="acme").events_7d == 0
    assert TenantMetrics.objects.get(tenant_id="beta").events_7d == 1


def _fanout(shards: int, *, skip: frozenset[int] = frozenset()) -> list[bool]:
    finished: list[bool] = []

    def dispatch(shard: int, total: int, now: datetime) -> None:
        # Shards land out of order, as on several workers.
        pending.append((shard, total, now))

    pending: list[tuple[int, int, datetime]] = []
    metrics_recompute_fanout(shards=shards, dispatch=dispatch)
    for shard, total, now in reversed(pending):
        if shard in skip:
            continue
        tenant_metrics_shard_write(shard=shard, shards=total, now=now)
        finished.append(metrics_fanout_finish(now=now))
    return finished


@override_settings(METRICS_POST_RECOMPUTE_HOOKS=["tests.customers.test_recompute_scope.record_hook"])
def test_it_gives_the_same_result_fanned_out_over_three_shards_as_one_worker(metrics_db):
    metrics_db(_history())
    metrics_recompute()
    metrics_db(_today())
    metrics_recompute()
    one_worker = caches_snapshot()
    assert len(one_worker["ops_tenant_metrics"]) == 13

    _reset()
    HOOK_CALLS.clear()
    metrics_db(_history())
    assert _fanout(3) == [False, False, True]  # only the last shard to finish runs the hooks
    metrics_db(_today())
    later = NOW + timedelta(minutes=5)
    with time_machine.travel(later, tick=False):
        assert _fanout(3) == [False, False, True]
    assert caches_snapshot() == one_worker
    assert HOOK_CALLS == [(NOW.date(), NOW), (NOW.date(), later)]
    assert {m.computed_at for m in TenantMetrics.objects.all()} == {later}
    assert not TenantMetrics.objects.filter(stale=True).exists()


def test_it_repairs_a_lost_shard_on_the_next_run(metrics_db):
    metrics_db(_history())
    metrics_recompute()
    metrics_db(_today())
    metrics_recompute()
    one_worker = caches_snapshot()

    _reset()
    metrics_db(_history())
    metrics_db(_today())
    assert True not in _fanout(3, skip=frozenset({1}))  # a lost task: its rows stay stale, no hooks
    assert TenantMetrics.objects.count() < 13
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        # Only the lost shard has stale rows now; whichever call finds none left runs the hooks, once.
        assert _fanout(3).count(True) == 1
    assert caches_snapshot() == one_worker


def test_it_names_the_same_last_investigation_whatever_the_order_of_a_tie(metrics_db):
    # Both investigation types at the same instant: found by a bench run, where incremental and
    # full rebuilds disagreed. Ties go to the alphabetically first type, in every path.
    moment = days_ago(2)
    metrics_db([Ev("acme", "REPLAY_COMPLETED", moment)])
    metrics_recompute()
    metrics_db([Ev("acme", "INCIDENT_VIEWED", moment)])
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        metrics_recompute()
    assert TenantMetrics.objects.get(tenant_id="acme").last_investigation == "INCIDENT_VIEWED"
    metrics_recompute(full=True)
    assert TenantMetrics.objects.get(tenant_id="acme").last_investigation == "INCIDENT_VIEWED"


@pytest.mark.not_on_citus(
    "reads one table's physical row order (ctid); on Citus each shard has its own pages and the coordinator "
    "returns the shards one after another"
)
def test_a_rebuild_lays_the_day_rollups_out_day_by_day(metrics_db):
    # A rebuild writes the rows in (day, tenant) order, the layout of rows folded day by
    # day: a day's upserts then touch only that day's pages. Hash aggregates come out in
    # no particular order, so without the ORDER BY the physical order is scrambled.
    metrics_db(_history())
    metrics_recompute(full=True)
    with connection.cursor() as cursor:
        for table in ("ops_rollup_tenant_day", "ops_rollup_tenant_user_day", "ops_rollup_session_friction",
                      "ops_rollup_tenant_day_summary"):  # fmt: skip
            cursor.execute(f"SELECT day, tenant_id FROM {table} ORDER BY ctid")
            rows = cursor.fetchall()
            assert len(rows) >= 9, table
            assert rows == sorted(rows), table


def test_an_example_type_sent_for_the_first_time_rewords_every_tenant_in_that_run(metrics_db):
    """The texts name only the types the product sent (or the founder registered): the first
    export ever sent makes "Export completed" speak, so every tenant's texts are rewritten."""
    metrics_db(_history())
    assert metrics_recompute().tenants_written == 12
    metrics_db([Ev("acme03", "EXPORT_COMPLETED", days_ago(0))])
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        assert metrics_recompute().tenants_written == 12
    with time_machine.travel(NOW + timedelta(minutes=10), tick=False):
        assert metrics_recompute().tenants_written == 0
