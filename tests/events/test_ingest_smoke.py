from __future__ import annotations

import uuid

import pytest

from events.models import Event

pytestmark = pytest.mark.django_db


def test_it_stores_one_event_and_answers_a_receipt(ingest_client):
    event_id = str(uuid.uuid4())
    response = ingest_client.post(
        "/api/v1/events",
        {"event_id": event_id, "tenant_id": "acme", "event_type": "LOGIN", "user_id": "u1"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert Event.objects.get(event_id=event_id).tenant_id == "acme"
