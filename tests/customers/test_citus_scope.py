"""On Citus, a run's dirty tenants are a distributed table beside the rollups: a query limited to them
is a join each shard runs on its own (no coordinator rows sent to every shard), an incremental fold
is statements each shard runs on its own, and the set never outlives the run's transaction (a
fan-out's shard tasks run side by side and must not pick up each other's tenants).

The plans are read with EXPLAIN: what Citus sends through the coordinator shows there as a
distributed subplan or an intermediate result, and that is what these statements must not need.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
import time_machine
from django.db import connection, transaction

from customers.metrics.daily import SUMMARY_PARAMS
from customers.metrics.fanout import tenant_metrics_shard_write
from customers.metrics.fold import fold_statements
from customers.metrics.recompute import metrics_recompute, tenant_rollups_rebuild
from customers.metrics.scope import (
    dirty_tenants_add,
    dirty_tenants_analyze,
    dirty_tenants_begin,
    dirty_tenants_end,
    tenant_rows_sql,
)
from customers.metrics.signals import SIGNAL_TYPES_SQL, _signals_sql, tenant_signals_measure
from customers.models import TenantMetrics, TenantRevenue
from tests.customers.conftest import NOW, Ev, days_ago

pytestmark = [pytest.mark.citus, pytest.mark.django_db(transaction=True)]

THROUGH_THE_COORDINATOR = ("Distributed Subplan", "read_intermediate_result", "pull to coordinator", "repartition")
FOLD_WHERE = (
    "e.ingest_xid >= %(watermark)s::text::xid8 AND pg_visible_in_snapshot(e.ingest_xid, %(snapshot)s::pg_snapshot)"
)


def _plan(sql: str, params: dict) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (COSTS OFF) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def _dirty_rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ops_metrics_dirty")
        return cursor.fetchone()[0]


def test_a_query_limited_to_the_dirty_tenants_is_joined_on_each_shard(metrics_db):
    metrics_db([Ev("acme", "INCIDENT_VIEWED", days_ago(1)), Ev("beta", "INCIDENT_VIEWED", days_ago(2))])
    metrics_recompute()
    with transaction.atomic():
        dirty_tenants_begin()
        dirty_tenants_add(["acme"])
        rows = tenant_rows_sql("ops_rollup_tenant_day", "x.day <= %(d)s::date", scope="dirty")
        sql = f"SELECT r.tenant_id, sum(r.value) AS n FROM {rows} r GROUP BY r.tenant_id"
        plan = _plan(sql, {"d": NOW.date()})
        with connection.cursor() as cursor:
            cursor.execute(sql, {"d": NOW.date()})
            found = cursor.fetchall()
        dirty_tenants_end()
    assert "ops_metrics_dirty" in plan
    assert not [words for words in THROUGH_THE_COORDINATOR if words in plan], plan
    assert found == [("acme", 1)]


def test_an_incremental_fold_runs_on_the_shards_without_the_coordinator(metrics_db):
    metrics_db([Ev("acme", "INCIDENT_VIEWED", days_ago(1))])
    metrics_recompute()
    params = {
        "watermark": "0",
        "snapshot": "1:1:",
        "friction_types": ["REPLAY_ABORTED"],
        "start_day": NOW.date() - timedelta(days=89),
        "start_at": NOW - timedelta(days=89),
        "tz": "UTC",
        **SUMMARY_PARAMS,
    }
    with transaction.atomic():
        dirty_tenants_begin()
        statements = dict(fold_statements(FOLD_WHERE, track_xids=False, mark_dirty=True))
        plans = {
            name: _plan(statements[name], params)
            for name in ("tenant_day_counts", "tenant_span", "day_summary", "dirty", "tenant_period_rows")
        }
        transaction.set_rollback(True)
    for name, plan in plans.items():
        assert not [words for words in THROUGH_THE_COORDINATOR if words in plan], f"{name}:\n{plan}"


def test_the_signals_of_the_dirty_tenants_are_measured_on_each_shard(metrics_db):
    # acme: u1 sent 3 of the 4 events before the last 7 days (its champion), u2 1, and u2 the recent one.
    metrics_db(
        [Ev("acme", "INCIDENT_VIEWED", days_ago(d)) for d in (20, 15, 10)]
        + [
            Ev("acme", "INCIDENT_VIEWED", days_ago(12), user_id="u2"),
            Ev("acme", "INCIDENT_VIEWED", days_ago(1), user_id="u2"),
        ]
        + [Ev("beta", "INCIDENT_VIEWED", days_ago(2))]
    )
    metrics_recompute()
    with transaction.atomic():
        dirty_tenants_begin()
        dirty_tenants_add(["acme"])
        dirty_tenants_analyze()
        measured = tenant_signals_measure(as_of=NOW.date(), scope="dirty")
        with connection.cursor() as cursor:
            cursor.execute(SIGNAL_TYPES_SQL)
            types = cursor.fetchone()
        params = {
            "d": NOW.date(),
            "core_value_types": ["INCIDENT_VIEWED"],
            "friction_types": types[0],
            "change_types": types[1],
        }
        plan = _plan(_signals_sql(scope="dirty"), params)
        dirty_tenants_end()
    # Every CTE, the days and the users read twice included, is inlined and joined on each shard.
    assert not [words for words in THROUGH_THE_COORDINATOR if words in plan], plan
    [acme] = measured
    assert (acme.tenant_id, acme.events_30d, acme.users_7d, acme.users_28d) == ("acme", 5, 1, 2)
    assert (acme.champion_user_id, acme.champion_prior_events, acme.champion_prior_total) == ("u1", 3, 4)
    assert acme.champion_recent_events == 0


def test_no_run_leaves_its_dirty_tenants_behind(metrics_db):
    metrics_db([Ev("acme", "INCIDENT_VIEWED", days_ago(1)), Ev("beta", "INCIDENT_VIEWED", days_ago(2))])
    metrics_recompute()
    assert _dirty_rows() == 0
    metrics_db([Ev("acme", "INCIDENT_VIEWED", days_ago(0))])
    later = NOW + timedelta(minutes=5)
    with time_machine.travel(later, tick=False):
        assert metrics_recompute().tenants_written == 1
    assert _dirty_rows() == 0
    tenant_rollups_rebuild(tenant_ids=["beta"], now=later)
    assert _dirty_rows() == 0
    TenantMetrics.objects.filter(tenant_id="beta").update(stale=True)
    # A shard task of a fan-out: its tenants are gone from the set when its transaction commits.
    assert tenant_metrics_shard_write(shard=0, shards=1, now=later) == 1
    assert _dirty_rows() == 0
    assert not TenantMetrics.objects.filter(stale=True).exists()


def _server_connection() -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"], port=settings["PORT"], user=settings["USER"], dbname=settings["NAME"], autocommit=True
    )


def _dirty_rows_planned(sql: str) -> int:
    """What one shard's plan expects to read of the dirty set (EXPLAIN shows one task of the statement)."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    found = re.search(r"Seq Scan on ops_metrics_dirty_\d+ .*?rows=(\d+)", plan)
    assert found, plan
    return int(found.group(1))


def test_a_run_plans_with_the_dirty_sets_real_size_after_an_autovacuum_saw_it_half_filled():
    # The state an autovacuum leaves when it analyzes the shards while another run holds rows in the
    # set: pages, and no live rows. Planned with it, each shard expects one dirty tenant.
    ids = [f"t{i:03d}" for i in range(80)]
    with _server_connection() as holder, _server_connection() as autovacuum:
        with holder.transaction():
            holder.execute("INSERT INTO ops_metrics_dirty (tenant_id) SELECT unnest(%s::text[])", [ids])
            autovacuum.execute("ANALYZE ops_metrics_dirty")
            raise psycopg.Rollback()
    sql = "SELECT count(*) FROM ops_rollup_tenant_day x WHERE x.tenant_id IN (SELECT tenant_id FROM ops_metrics_dirty)"
    with transaction.atomic():
        dirty_tenants_begin()
        dirty_tenants_add(ids)
        dirty_tenants_analyze()
        planned = _dirty_rows_planned(sql)
        dirty_tenants_end()
    # 80 tenants over the 4 shards of the test cluster: ~20 a shard, never the one of a stale "empty".
    assert planned >= 5


def test_a_runs_metrics_rows_are_upserted_on_each_shard_with_the_mrr_in_force(metrics_db):
    metrics_db([Ev("acme", "INCIDENT_VIEWED", days_ago(1)), Ev("beta", "INCIDENT_VIEWED", days_ago(2))])
    TenantRevenue.objects.create(tenant_id="acme", mrr=Decimal("250.00"), currency="USD")
    written: list[tuple[str, object]] = []

    def remember(execute, sql, params, many, context):
        if sql.lstrip().startswith("INSERT INTO ops_tenant_metrics"):
            written.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(remember):
        assert metrics_recompute().tenants_written == 2
    [(sql, params)] = written
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (COSTS OFF) " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SELECT count(*) FROM ops_metrics_staged")
        staged_left = cursor.fetchone()[0]
    # The rows reach the shards without the coordinator parsing them or sending them on.
    assert "pull to coordinator" not in plan and "INSERT/SELECT method" not in plan, plan
    assert not [words for words in THROUGH_THE_COORDINATOR if words in plan], plan
    assert staged_left == 0
    acme, beta = TenantMetrics.objects.order_by("tenant_id")
    assert (acme.mrr, beta.mrr) == (Decimal("250.00"), None)
    assert acme.expected_loss == pytest.approx(acme.ranking_score * 250.0 / 100.0)
    assert beta.expected_loss is None
