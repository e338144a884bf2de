"""Raw-event retention (issue 19): old events go, no metric moves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection

from customers.metrics.recompute import metrics_recompute
from customers.models import TenantMetrics
from events.classification import events_reclassify
from events.models import Event
from events.retention import events_retention_prune

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TYPES = ["LOGIN", "CORE_ACTION", "EXPORT_FAILED", "INCIDENT_VIEWED", "REPLAY_ABORTED"]


def _history(days: int = 300) -> list[dict[str, Any]]:
    """Three tenants over ``days`` days: each type every few days, users coming and going."""
    events = []
    for day in range(days):
        for tenant_index, tenant in enumerate(("acme", "bravo", "calm")):
            for type_index, event_type in enumerate(TYPES):
                if (day + tenant_index + type_index) % (type_index + 2):
                    continue
                events.append(
                    {
                        "event_id": str(uuid.uuid4()),
                        "tenant_id": tenant,
                        "user_id": f"{tenant}-u{(day // 40 + type_index) % 5}",
                        "session_id": f"{tenant}-s{day}",
                        "event_type": event_type,
                        "occurred_at": (NOW - timedelta(days=day, hours=type_index)).isoformat(),
                        "metadata": {"user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"},
                    }
                )
    return events


def _table(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def _everything_derived() -> dict[str, list[tuple]]:
    columns = [field.column for field in TenantMetrics._meta.concrete_fields]
    metrics_columns = ", ".join(c for c in columns if c != "computed_at")
    return {
        "metrics": _table(f"SELECT {metrics_columns} FROM ops_tenant_metrics ORDER BY tenant_id"),
        "spans": _table("SELECT * FROM ops_rollup_tenant_span ORDER BY tenant_id, event_type"),
        "days": _table("SELECT * FROM ops_rollup_tenant_day ORDER BY 1, 2, 3"),
        "real_users": _table("SELECT * FROM ops_real_users ORDER BY user_id"),
    }


def test_pruning_old_events_changes_no_metric_after_a_full_rebuild(ingest):
    history = _history()
    with time_machine.travel(NOW, tick=False):
        for start in range(0, len(history), 1000):
            ingest(*history[start : start + 1000], now=NOW)
        metrics_recompute(full=True)
        before = _everything_derived()
        recent_before = Event.objects.filter(occurred_at__gte=NOW - timedelta(days=4 * 31)).count()

        deleted = events_retention_prune(months=4)
        assert deleted > 0.4 * len(history)
        assert Event.objects.filter(occurred_at__gte=NOW - timedelta(days=4 * 31)).count() == recent_before
        assert events_retention_prune(months=4) == 0  # idempotent

        metrics_recompute(full=True)
        events_reclassify()
        assert _everything_derived() == before


def test_the_default_keeps_everything(ingest):
    history = _history(days=200)
    with time_machine.travel(NOW, tick=False):
        ingest(*history[:1000], now=NOW)
        stored = Event.objects.count()
        assert events_retention_prune() == 0
    assert Event.objects.count() == stored > 0


def test_a_retention_under_the_minimum_is_refused():
    with pytest.raises(ValueError, match="under the minimum of 4"):
        events_retention_prune(months=2)
