"""Property: any sequence of event batches (late, out of order, some committed
only after a recompute started, some not real, some recomputed a week later)
followed by an incremental recompute leaves exactly what a full rebuild from
ops_events produces: the rollups, ops_tenant_metrics, and the lifecycle stages
and their weekly counts, whatever TIME_ZONE the weeks are counted in."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.metrics.fold import ROLLUP_TABLES
from customers.metrics.lifecycle import COUNT_TABLE, LIFECYCLE_TABLE
from customers.metrics.recompute import metrics_recompute
from tests.customers.conftest import NOW, Ev, caches_snapshot, events_store

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
    # Anywhere in the last ~6 weeks, in any order: late and out-of-order occurred_at; often in the
    # last week, so that a week turning finds accounts to turn dormant.
    occurred_at=st.one_of(
        st.integers(min_value=0, max_value=7 * 24 * 60), st.integers(min_value=0, max_value=45 * 24 * 60)
    ).map(lambda m: NOW - timedelta(minutes=m)),
    session_id=st.sampled_from(["", "s1", "s2"]),
    user_id=st.sampled_from(["", "u1", "u2"]),
    is_real=st.sampled_from([True, True, True, False]),
)
batch_strategy = st.tuples(
    st.lists(events_strategy, min_size=1, max_size=12),
    # commit: stored and committed; recompute: stored, then a recompute; late: stored by a
    # transaction that commits only after a recompute has run; next_week: the clock moves on a
    # week and a recompute runs (last week's active accounts turn dormant), then the batch is stored.
    st.sampled_from(["commit", "recompute", "late", "next_week"]),
)


def _truncate() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"TRUNCATE ops_events, ops_tenant_metrics, ops_metrics_state, customers_tenant, "
            f"{LIFECYCLE_TABLE}, {COUNT_TABLE}, {', '.join(ROLLUP_TABLES)} CASCADE"
        )


def _snapshot() -> dict[str, Any]:
    """The caches, and the lifecycle stages and their weekly counts the same runs write."""
    out = caches_snapshot()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tenant_id, week, stage, counted FROM {LIFECYCLE_TABLE} ORDER BY tenant_id, week")
        out[LIFECYCLE_TABLE] = cursor.fetchall()
        cursor.execute(f"SELECT week, stage, accounts FROM {COUNT_TABLE} ORDER BY week, stage")
        out[COUNT_TABLE] = cursor.fetchall()
    return out


def _store_late(events: list[Ev], *, now: datetime) -> None:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params) as late:
        with late.cursor() as cursor:
            events_store(events, cursor=cursor)
        metrics_recompute(now=now)  # runs while the batch is written but not committed
        late.commit()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(batch_strategy, min_size=1, max_size=6),
    lateral=st.booleans(),
    # Weeks start on local Mondays: UTC, a zone behind it, and one 13+ hours ahead (quarter hours).
    time_zone=st.sampled_from(["UTC", "America/Los_Angeles", "Pacific/Chatham"]),
)
def test_incremental_recompute_equals_a_full_rebuild(metrics_db, monkeypatch, settings, batches, lateral, time_zone):
    # Both ways an incremental run reaches its dirty tenants (one by one through the primary
    # keys, or one hash join over whole tables) must give what the full rebuild gives.
    monkeypatch.setattr("customers.metrics.scope.DIRTY_LATERAL_MAX_SHARE", 1.0 if lateral else 0.0)
    settings.TIME_ZONE = time_zone
    _truncate()
    now = NOW
    metrics_recompute(now=now)  # the first run is a full one; everything after is incremental
    for batch, mode in batches:
        if mode == "next_week":
            now += timedelta(days=7)
            metrics_recompute(now=now)
        # The batch's times are as generated, relative to the clock.
        events = [dataclasses.replace(e, occurred_at=e.occurred_at + (now - NOW)) for e in batch]
        if mode == "late":
            _store_late(events, now=now)
        else:
            events_store(events)
            if mode == "recompute":
                metrics_recompute(now=now)
    assert metrics_recompute(now=now).mode == "incremental"
    incremental = _snapshot()
    assert metrics_recompute(full=True, now=now).mode == "full"
    full = _snapshot()
    assert incremental == full
    real = sum(1 for events, _ in batches for e in events if e.is_real)
    assert sum(row[-1] for row in full["ops_rollup_tenant_day"]) == real
    assert sum(row[-1] for row in full["ops_rollup_tenant_period"] if row[1] == "week") == real
    assert sum(row[-1] for row in full["ops_rollup_tenant_period"] if row[1] == "month") == real
