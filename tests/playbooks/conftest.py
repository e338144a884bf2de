"""Helpers for the playbooks tests.

Matching runs inside the metrics recompute, which only folds committed events,
so tests that recompute use a transactional database (``metrics_db``) and the
metrics tests' frozen clock: as_of is 2026-03-15 (UTC).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client

from customers.metrics.recompute import metrics_recompute
from playbooks.models import Playbook
from tests.conftest import owner_login
from tests.customers.conftest import NOW, Ev, days_ago, events_store


@pytest.fixture
def frozen_now() -> Iterator[datetime]:
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def metrics_db(transactional_db: Any, frozen_now: datetime) -> Callable[..., None]:
    return events_store


@pytest.fixture
def at_risk(metrics_db: Any) -> None:
    """Two customers at risk after a recompute: "decay" (Engagement decay, critical; last real
    activity on the 13th) and "policy" (Policy friction; active every day to the 15th)."""
    events = [Ev("decay", "EXPORT_COMPLETED", days_ago(d)) for d in range(7, 30) for _ in range(2)]
    events += [Ev("decay", "EXPORT_COMPLETED", days_ago(2)), Ev("decay", "INCIDENT_VIEWED", days_ago(2))]
    events += [Ev("policy", "POLICY_BLOCK_REPEAT", days_ago(d), session_id=f"p{d}") for d in range(4)]
    events += [Ev("policy", "INCIDENT_VIEWED", days_ago(d)) for d in range(0, 28)]
    metrics_db(events)
    metrics_recompute()
    cache.clear()


@pytest.fixture
def admin_client(db: Any) -> Client:
    return owner_login()


def admin_form_data(playbook: Playbook, *, conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The POST body of the playbook's admin change form, as the browser would send it unchanged.

    ``conditions`` replaces the condition rows' values (by position); a dict
    without ``id`` adds a new row.
    """
    existing = list(playbook.conditions.all())
    rows = conditions if conditions is not None else [{} for _ in existing]
    actions = list(playbook.actions.all())
    data: dict[str, Any] = {
        "name": playbook.name,
        "risk_level": playbook.risk_level,
        "purpose": playbook.purpose,
        "success_metric": playbook.success_metric,
        "notes": playbook.notes,
        "conditions-TOTAL_FORMS": str(len(rows)),
        "conditions-INITIAL_FORMS": str(len(existing)),
        "conditions-MIN_NUM_FORMS": "1",
        "conditions-MAX_NUM_FORMS": "1000",
        "actions-TOTAL_FORMS": str(len(actions)),
        "actions-INITIAL_FORMS": str(len(actions)),
        "actions-MIN_NUM_FORMS": "0",
        "actions-MAX_NUM_FORMS": "1000",
    }
    if playbook.enabled:
        data["enabled"] = "on"
    for i, row in enumerate(rows):
        base = existing[i] if i < len(existing) else None
        values = {
            "id": base.pk if base else "",
            "playbook": playbook.pk,
            "order": base.order if base else i + 1,
            "metric": base.metric if base else "",
            "event_types": base.event_types if base else "",
            "operator": base.operator if base else "",
            "threshold": base.threshold if base else "",
            "window_days": (base.window_days if base and base.window_days is not None else ""),
        }
        values.update(row)
        for key, value in values.items():
            data[f"conditions-{i}-{key}"] = "" if value is None else str(value)
    for i, action in enumerate(actions):
        for key in ("id", "order", "timing", "channel", "step", "talk_track"):
            data[f"actions-{i}-{key}"] = str(getattr(action, key))
        data[f"actions-{i}-playbook"] = playbook.pk
    return data


def matched(tenant_id: str) -> list[str]:
    """The risk playbooks a tenant matches (the seeded expansion playbooks are tested in test_expansion.py)."""
    from playbooks.models import PlaybookMatch

    return sorted(
        PlaybookMatch.objects.filter(tenant_id=tenant_id, playbook__purpose="risk").values_list(
            "playbook_id", flat=True
        )
    )


def side_output_only(tenant_id: str, *, side_output: str, core_value: str) -> list[Ev]:
    """``tenant_id`` sends only ``side_output`` (every other day for 20 days); "mixed" sends the same and
    one ``core_value`` event today."""
    side = [Ev(tenant, side_output, days_ago(d)) for tenant in (tenant_id, "mixed") for d in range(0, 20, 2)]
    return [*side, Ev("mixed", core_value, days_ago(0))]
