"""Which types are examples (seeded, never saved by the founder) and which speak for the product."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.apps import apps
from django.test import Client

from events.models import EventType
from events.registry import event_type_put, event_type_registry, example_event_type_names
from tests.conftest import owner_login
from tests.customers.conftest import example_types_sent

pytestmark = pytest.mark.django_db
MARK = importlib.import_module("events.migrations.0016_example_types_marked")
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def admin_client(db: Any) -> Client:
    return owner_login()


def examples() -> set[str]:
    return set(EventType.objects.filter(is_example=True).values_list("name", flat=True))


def test_a_fresh_database_marks_every_seeded_type_as_an_example():
    assert examples() == set(example_event_type_names())
    assert len(examples()) == 27


def test_a_seeded_type_the_founder_edited_before_the_upgrade_is_not_marked():
    EventType.objects.update(is_example=False)
    EventType.objects.filter(name="EXPORT_FAILED").update(label="Export broke")
    MARK.examples_mark(apps, None)
    assert examples() == set(example_event_type_names()) - {"EXPORT_FAILED"}


def test_saving_a_type_through_the_api_makes_it_the_founders():
    event_type_put(name="replay_failed", data={"category": "friction", "friction_signal": "system_issue"})
    assert "REPLAY_FAILED" not in examples()
    assert "REPLAY_FAILED" in event_type_registry().speaking


def test_saving_a_type_in_admin_makes_it_the_founders(admin_client):
    url = "/admin/events/eventtype/CERT_GENERATED/change/"
    # Saved as seeded, unchanged: a save is the founder's word that the type is theirs.
    data = {
        "label": "",
        "category": "value",
        "description": "Generated a certificate",
        "friction_signal": "",
        "friction_weight": "0",
        "engagement_weight": "0",
        "north_star_role": "",
    }
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:500]
    assert "CERT_GENERATED" not in examples()


def test_an_example_speaks_only_while_sent_in_the_last_90_days(admin_client):
    event_type_put(name="deal_won", data={"category": "value", "core_value": True})
    names = {t.name for t in event_type_registry().members("core_value", speaking=True)}
    assert names == {"deal_won"}
    example_types_sent(at=NOW - timedelta(days=89))
    from events.registry import event_types_speaking

    types = list(EventType.objects.all())
    assert {"INCIDENT_VIEWED", "deal_won"} <= event_types_speaking(types, now=NOW)
    assert event_types_speaking(types, now=NOW + timedelta(days=2)) == {"deal_won"}
