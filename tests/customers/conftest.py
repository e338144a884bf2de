"""Helpers for the metrics engine tests.

The incremental fold only reads rows whose transaction has committed, so every
test that recomputes runs on a transactional database (``metrics_db``), not
inside the usual per-test transaction. tests/conftest.py re-seeds the event
type registry that the flush between such tests removes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection

# The frozen "now" of every metrics test: as_of is 2026-03-15 (UTC).
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def days_ago(days: float, *, hour: int = 12) -> datetime:
    """A moment ``days`` whole days before NOW's day, at ``hour`` UTC."""
    return NOW.replace(hour=hour) - timedelta(days=days)


@dataclass
class Ev:
    tenant_id: str
    event_type: str
    occurred_at: datetime
    session_id: str = "s1"
    user_id: str = "u1"
    is_real: bool = True


# Cached metrics as a recompute with playbooks can leave them: (tenant_id, risk_level, strength).
# A matched playbook raised "globex" to critical at strength 45 (its band is high), "umbrella" to
# high at 38 and "zeta" to medium at 12; "acme" and "bravo" tie at 55.
RANKED_TENANTS: list[tuple[str, str | None, float]] = [
    ("acme", "high", 55.0),
    ("bravo", "high", 55.0),
    ("calm", None, 15.0),
    ("globex", "critical", 45.0),
    ("hooli", "medium", 30.0),
    ("initech", "critical", 70.0),
    ("umbrella", "high", 38.0),
    ("zeta", "medium", 12.0),
]
# Whom to call first: critical, high, medium; the strongest signal first within a level; ties by id.
RANKED_AT_RISK = ["initech", "globex", "acme", "bravo", "umbrella", "hooli", "zeta"]
# The order before levels came first (strength alone): the raised "globex" below "acme" and "bravo".
RANKED_BY_STRENGTH = ["initech", "acme", "bravo", "globex", "umbrella", "hooli", "calm", "zeta"]


def metrics_rows_store(rows: list[tuple[str, str | None, float]]) -> None:
    """Write tenants and their cached metrics rows directly, without events or a recompute."""
    from customers.models import Tenant, TenantMetrics

    for tenant_id, level, strength in rows:
        Tenant.objects.create(tenant_id=tenant_id, name=tenant_id.capitalize())
        TenantMetrics.objects.create(
            tenant_id=tenant_id,
            risk_level=level,
            risk_signal_strength=strength,
            ranking_score=strength,  # the heuristic orders the list (no churn model adopted)
            primary_risk_reason=f"{tenant_id} reason" if level else "",
            computed_at=NOW,
            as_of=NOW.date(),
        )


def caches_snapshot() -> dict[str, Any]:
    """Every rollup row and every tenant's metrics row (without its ``computed_at``), in key order:
    two ways of computing the caches agree when their snapshots are equal."""
    from customers.metrics.fold import ROLLUP_KEYS

    out: dict[str, Any] = {}
    with connection.cursor() as cursor:
        for table, key in ROLLUP_KEYS.items():
            cursor.execute(f"SELECT * FROM {table} ORDER BY {', '.join(key)}")
            out[table] = cursor.fetchall()
        cursor.execute("SELECT to_jsonb(m) - 'computed_at' FROM ops_tenant_metrics m ORDER BY tenant_id")
        out["ops_tenant_metrics"] = [row[0] for row in cursor.fetchall()]
    return out


def events_store(events: list[Ev], *, cursor: Any = None) -> None:
    """Insert events directly (one transaction unless a cursor is given), creating their tenants."""
    own = cursor is None
    cur = cursor or connection.cursor()
    try:
        cur.executemany(
            "INSERT INTO customers_tenant (tenant_id, name, kind, first_seen_at, notes) "
            "VALUES (%s, '', 'customer', %s, '') ON CONFLICT DO NOTHING",
            [(t, NOW) for t in sorted({e.tenant_id for e in events})],
        )
        cur.executemany(
            "INSERT INTO ops_events (event_id, tenant_id, user_id, session_id, event_type, occurred_at, received_at,"
            " metadata, friction_signal, is_real, exclusion_reason)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, '{}', '', %s, %s)",
            [
                (
                    str(uuid.uuid4()),
                    e.tenant_id,
                    e.user_id,
                    e.session_id,
                    e.event_type,
                    e.occurred_at,
                    NOW,
                    e.is_real,
                    "" if e.is_real else "test_traffic",
                )
                for e in events
            ],
        )
    finally:
        if own:
            cur.close()


def example_types_sent(*, at: datetime | None = None) -> None:
    """As if the spec's product had sent every example type (at ``at``, else now): the metrics
    engine's per-type spans say so, and the examples speak in texts. For tests that read the
    default vocabulary as the spec's own product does, without a history of events."""
    from django.utils import timezone

    from events.registry import example_event_type_names

    when = at or timezone.now()
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO ops_rollup_tenant_span (tenant_id, event_type, first_at, last_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (tenant_id, event_type) DO UPDATE SET last_at = EXCLUDED.last_at",
            [("example-product", name, when, when) for name in sorted(example_event_type_names())],
        )


@pytest.fixture
def frozen_now() -> Iterator[datetime]:
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def metrics_db(transactional_db: Any, frozen_now: datetime, settings: Any) -> Callable[..., None]:
    # These tests hand-compute the engine's own heuristic; the playbook hook (which may
    # raise levels from the founder's editable playbooks) is tested in tests/playbooks.
    settings.METRICS_POST_RECOMPUTE_HOOKS = []
    return events_store
