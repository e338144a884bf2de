"""Admin validates event types exactly as the API does: the model's validators and constraints."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from events.models import EventType
from tests.conftest import owner_login

pytestmark = pytest.mark.django_db
ADD_URL = "/admin/events/eventtype/add/"


@pytest.fixture
def admin_client(db: Any) -> Client:
    return owner_login()


def _form(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "invoice_sent",
        "label": "Invoice sent",
        "category": "value",
        "description": "",
        "friction_signal": "",
        "friction_weight": "0",
        "engagement_weight": "1",
        "north_star_role": "",
        "core_value": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _errors(response: Any) -> str:
    assert response.status_code == 200, "the form was accepted"
    form = response.context["adminform"].form
    return " ".join(f"{field}: {' '.join(messages)}" for field, messages in form.errors.items())


def test_a_valid_type_is_added(admin_client):
    response = admin_client.post(ADD_URL, _form())
    assert response.status_code == 302
    added = EventType.objects.get(name="invoice_sent")
    assert added.core_value and added.display_label == "Invoice sent"


def test_a_name_that_exists_in_another_case_is_a_form_error(admin_client):
    errors = _errors(admin_client.post(ADD_URL, _form(name="login")))
    assert "already exists in another case" in errors
    assert list(EventType.objects.filter(name__iexact="login").values_list("name", flat=True)) == ["LOGIN"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"friction_weight": "1e308"}, "friction_weight"),
        ({"engagement_weight": "-1"}, "engagement_weight"),
        ({"engagement_weight": "nan"}, "engagement_weight"),
        ({"friction_weight": "banana"}, "friction_weight"),
        ({"friction_signal": "banana"}, "friction_signal"),
        ({"north_star_role": "banana"}, "north_star_role"),
        ({"label": "x" * 101}, "label"),
        ({"name": "x" * 65}, "name"),
        ({"name": "tab\tinside"}, "name"),
    ],
)
def test_a_bad_value_is_a_form_error_and_nothing_is_saved(admin_client, overrides, field):
    count = EventType.objects.count()
    errors = _errors(admin_client.post(ADD_URL, _form(**overrides)))
    assert errors.startswith(f"{field}:") or f" {field}:" in errors
    assert EventType.objects.count() == count


def test_a_weight_edited_in_the_list_is_checked_too(admin_client):
    login = EventType.objects.get(name="LOGIN")
    rows = list(EventType.objects.order_by("category", "name"))
    data: dict[str, Any] = {
        "form-TOTAL_FORMS": str(len(rows)),
        "form-INITIAL_FORMS": str(len(rows)),
        "_save": "Save",
    }
    for i, row in enumerate(rows):
        data[f"form-{i}-name"] = row.name
        data[f"form-{i}-friction_weight"] = "1e308" if row.pk == login.pk else str(row.friction_weight)
        data[f"form-{i}-engagement_weight"] = str(row.engagement_weight)
        if row.counts_as_real_interaction:
            data[f"form-{i}-counts_as_real_interaction"] = "on"
    response = admin_client.post("/admin/events/eventtype/", data)
    assert response.status_code == 200  # the changelist is shown again with the error
    assert EventType.objects.get(name="LOGIN").friction_weight == 0.0


def test_the_add_form_can_be_prefilled_with_a_name(admin_client):
    body = admin_client.get(ADD_URL + "?name=Order%20Completed").content.decode()
    assert 'value="Order Completed"' in body
