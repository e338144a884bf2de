from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from core.models import ApiKey
from customers.models import Tenant
from events.models import Event
from opsconsole.demo import seed_demo

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_the_raw_key_last_and_stores_only_its_hash():
    out = StringIO()
    call_command("create_api_key", "backend-prod", "--scope", "ingest", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    key = ApiKey.objects.get(name="backend-prod")
    assert raw.startswith("oc_") and len(raw) > 40
    assert key.key_hash == ApiKey.hash_raw_key(raw)
    assert key.scope == "ingest"


def test_create_api_key_refuses_an_unknown_scope():
    with pytest.raises(CommandError):
        call_command("create_api_key", "x", "--scope", "admin")


def test_seed_demo_is_deterministic_and_idempotent():
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    first = seed_demo(tenants=10, days=20, seed=7, now=now)
    stored = Event.objects.count()
    second = seed_demo(tenants=10, days=20, seed=7, now=now)
    assert first.accepted == stored > 1000
    assert first.rejected == []
    assert (second.accepted, second.duplicates) == (0, stored)
    kinds = dict(Tenant.objects.values_list("tenant_id", "kind"))
    assert kinds["internal-cyberdyne"] == "internal"
    notes = set(Tenant.objects.values_list("notes", flat=True))
    assert {
        f"demo: {a}"
        for a in (
            "healthy",
            "decaying",
            "silent_churn",
            "policy_friction",
            "abandonment",
            "legal_only",
            "new",
            "internal",
        )
    } <= notes


def test_seed_demo_silent_churn_keeps_api_traffic_but_stops_investigating():
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    seed_demo(tenants=10, days=30, seed=1, now=now)
    recent = Event.objects.filter(tenant_id="umbrella", occurred_at__gte=datetime(2026, 2, 16, tzinfo=UTC))
    assert recent.filter(event_type="API_CALL").exists()
    assert not recent.filter(event_type__in=["INCIDENT_VIEWED", "REPLAY_COMPLETED"]).exists()
