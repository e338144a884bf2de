"""On Citus, what the store's fast path sends after its COPY (events/ingestion/store.py, ``citus_batch_upserts``)
is planned where it runs: the real-user fold by PostgreSQL alone on the coordinator, the registry and rules
check as one task on the coordinator's copy of the reference table, and the read of a batch's tenants only on
the shards holding them. A statement mixing them was planned through the coordinator, its parts written out as
intermediate results and read back for every batch.

The plans are read with EXPLAIN, as tests/customers/test_citus_scope.py reads the fold's.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from events.ingestion.store import (
    CITUS_BATCH_CHECKED_SQL,
    CITUS_REAL_USERS_UPSERT_SQL,
    CITUS_TENANTS_READ_SQL,
)

pytestmark = [pytest.mark.citus, pytest.mark.django_db]

THROUGH_THE_COORDINATOR = ("Distributed Subplan", "read_intermediate_result", "pull to coordinator", "repartition")
PARAMS = {
    "real_types": ["LOGIN"],
    "rules_version": 0,
    "users": ["u1", "u2"],
    "firsts": ["2026-03-01T10:00:00+00:00", "2026-03-01T11:00:00+00:00"],
    "lasts": ["2026-03-02T10:00:00+00:00", "2026-03-02T11:00:00+00:00"],
}


def _plan(sql: str, params: dict) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (COSTS OFF) " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


def test_the_real_user_fold_after_the_copy_is_planned_by_postgresql_alone():
    plan = _plan(CITUS_REAL_USERS_UPSERT_SQL, PARAMS)
    assert plan.startswith("Insert on ops_real_users"), plan
    assert "Citus" not in plan, plan


def test_the_registry_and_rules_check_is_one_task_on_the_coordinator():
    plan = _plan(CITUS_BATCH_CHECKED_SQL, PARAMS)
    assert "Task Count: 1" in plan, plan
    assert "events_classificationstate_pkey" in plan, plan
    assert not [words for words in THROUGH_THE_COORDINATOR if words in plan], plan


def test_a_batchs_tenants_are_read_only_on_the_shard_holding_them():
    plan = _plan(CITUS_TENANTS_READ_SQL, {"tenants": ["acme"]})
    assert "Task Count: 1" in plan, plan
    assert not [words for words in THROUGH_THE_COORDINATOR if words in plan], plan
