"""Property: any sequence of event batches (late, out of order, some committed
only after a recompute started, some not real) followed by an incremental
recompute leaves exactly what a full rebuild from ops_events produces."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.metrics.fold import ROLLUP_KEYS, ROLLUP_TABLES
from customers.metrics.recompute import metrics_recompute
from tests.customers.conftest import NOW, Ev, events_store

pytestmark = pytest.mark.django_db(transaction=True)

EVENT_TYPES = [
    "INCIDENT_VIEWED",
    "REPLAY_COMPLETED",
    "EXPORT_COMPLETED",
    "REPLAY_ABORTED",
    "EXPORT_ABORTED",
    "POLICY_BLOCK_REPEAT",
    "SESSION_IDLE_TIMEOUT",
    "API_CALL",
    "POLICY_CHANGED",
]

events_strategy = st.builds(
    Ev,
    tenant_id=st.sampled_from(["t1", "t2", "t3"]),
    event_type=st.sampled_from(EVENT_TYPES),
    # Anywhere in the last ~6 weeks, in any order: late and out-of-order occurred_at.
    occurred_at=st.integers(min_value=0, max_value=45 * 24 * 60).map(lambda m: NOW - timedelta(minutes=m)),
    session_id=st.sampled_from(["", "s1", "s2"]),
    user_id=st.sampled_from(["", "u1", "u2"]),
    is_real=st.sampled_from([True, True, True, False]),
)
batch_strategy = st.tuples(
    st.lists(events_strategy, min_size=1, max_size=12),
    # commit: stored and committed; recompute: stored, then a recompute; late: stored by a
    # transaction that commits only after a recompute has run.
    st.sampled_from(["commit", "recompute", "late"]),
)


def _truncate() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"TRUNCATE ops_events, ops_tenant_metrics, ops_metrics_state, customers_tenant, "
            f"{', '.join(ROLLUP_TABLES)} CASCADE"
        )


def _snapshot() -> dict[str, Any]:
    out: dict[str, Any] = {}
    with connection.cursor() as cursor:
        for table, key in ROLLUP_KEYS.items():
            cursor.execute(f"SELECT * FROM {table} ORDER BY {', '.join(key)}")
            out[table] = cursor.fetchall()
        cursor.execute("SELECT to_jsonb(m) - 'computed_at' FROM ops_tenant_metrics m ORDER BY tenant_id")
        out["ops_tenant_metrics"] = [row[0] for row in cursor.fetchall()]
    return out


def _store_late(events: list[Ev]) -> None:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params) as late:
        with late.cursor() as cursor:
            events_store(events, cursor=cursor)
        metrics_recompute()  # runs while the batch is written but not committed
        late.commit()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(batch_strategy, min_size=1, max_size=6), lateral=st.booleans())
def test_incremental_recompute_equals_a_full_rebuild(metrics_db, monkeypatch, batches, lateral):
    # Both ways an incremental run reaches its dirty tenants (one by one through the primary
    # keys, or one hash join over whole tables) must give what the full rebuild gives.
    monkeypatch.setattr("customers.metrics.scope.DIRTY_LATERAL_MAX_SHARE", 1.0 if lateral else 0.0)
    _truncate()
    metrics_recompute()  # the first run is a full one; everything after is incremental
    for events, mode in batches:
        if mode == "late":
            _store_late(events)
        else:
            events_store(events)
            if mode == "recompute":
                metrics_recompute()
    assert metrics_recompute().mode == "incremental"
    incremental = _snapshot()
    assert metrics_recompute(full=True).mode == "full"
    full = _snapshot()
    assert incremental == full
    real = sum(1 for events, _ in batches for e in events if e.is_real)
    assert sum(row[-1] for row in full["ops_rollup_tenant_day"]) == real
