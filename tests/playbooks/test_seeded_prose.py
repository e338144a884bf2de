"""The seeded playbooks' prose in the product's words (playbooks migration 0008) and the placeholders it is shown with."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from customers.metrics.texts import product_words, product_words_render
from events.models import EventType
from events.registry import event_type_put, event_type_registry
from playbooks.models import Playbook, PlaybookAction
from tests.customers.conftest import example_types_sent

pytestmark = pytest.mark.django_db

PROSE = importlib.import_module("playbooks.migrations.0008_seeded_prose_in_roles")
SEEDED = PROSE.SEEDED


def test_product_words_read_as_the_roles_labels_and_keep_the_tenants_placeholders():
    EventType.objects.all().delete()
    event_type_put(name="deal_won", data={"category": "value", "core_value": True, "label": "Deal won"})
    event_type_put(name="seat_limit_hit", data={"category": "friction", "friction_signal": "blocked"})
    event_type_put(
        name="sequence_paused", data={"category": "friction", "friction_signal": "friction", "friction_weight": 3}
    )
    event_type_put(
        name="email_idle", data={"category": "friction", "friction_signal": "friction", "friction_weight": 1}
    )
    words = product_words(event_type_registry())
    # No system_issue and no side value type: those read as what they are, in no product's types.
    assert words == {
        "core_action": "Deal won",
        "blocked_action": "Seat limit hit",
        "failure_action": "a failure",
        "friction_action": "Sequence paused",  # email_idle weighs under 2: not an abandoned step
        "side_action": "a side feature",
    }
    text = "Hi {first name}, {core_action} after {Blocked Action}? {link}"
    assert product_words_render(text, words) == "Hi {first name}, Deal won after Seat limit hit? {link}"


def test_the_prose_is_rewritten_only_where_the_founder_left_it_as_seeded():
    silent = Playbook.objects.get(pk="silent_churn")
    assert silent.success_metric == PROSE.IN_PRODUCT_WORDS["silent_churn"]["success_metric"]
    assert Playbook.objects.get(pk="legal_only").name == "One side feature only"
    PROSE.in_spec_words(apps, None)
    silent.refresh_from_db()
    assert silent.success_metric == SEEDED["silent_churn"]["success_metric"]
    assert Playbook.objects.get(pk="legal_only").name == "Certificates only"
    # The founder edits a note and one talk track; the rest is as 0002 seeded it.
    Playbook.objects.filter(pk="silent_churn").update(notes="My own notes.")
    PlaybookAction.objects.filter(playbook_id="silent_churn", order=1).update(talk_track="My own words.")
    PROSE.in_product_words(apps, None)
    silent.refresh_from_db()
    assert silent.notes == "My own notes."
    assert silent.success_metric == PROSE.IN_PRODUCT_WORDS["silent_churn"]["success_metric"]
    steps = {a.order: a.talk_track for a in silent.actions.all()}
    assert steps[1] == "My own words."
    assert steps[2] == PROSE.IN_PRODUCT_WORDS["silent_churn"]["actions"][2][1]
    # engagement_decay named no type: only its raw-brace step changes.
    decay = Playbook.objects.get(pk="engagement_decay")
    assert decay.notes == SEEDED["engagement_decay"]["notes"]
    assert decay.actions.get(order=4).talk_track.startswith("Here's {what you promised}, live")


def test_on_the_default_vocabulary_the_prose_reads_as_the_specs_own_types(staff_client):
    example_types_sent()
    body = staff_client.get("/ops/playbooks/silent_churn").json()
    assert body["success_metric"] == (
        "Incident viewed or Replay completed again from a named user within 14 days of the first email, and at "
        "least once a week for the 4 weeks after."
    )
    assert "{core_action}" not in str(body) and "{first name}" in body["actions"][0]["talk_track"]
