"""What `recompute_metrics` says it changed, and what /playbooks/ says about its match counts (issue 17)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command

from playbooks.models import Playbook, TriggerCondition
from tests.customers.conftest import NOW, Ev, days_ago

pytestmark = pytest.mark.django_db(transaction=True)


def _recompute(*args: str) -> str:
    out = StringIO()
    call_command("recompute_metrics", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def policy(metrics_db: Any) -> None:
    metrics_db([Ev("policy", "POLICY_BLOCK_REPEAT", days_ago(d), session_id=f"p{d}") for d in range(4)])


def test_it_prints_events_folded_tenants_rewritten_and_what_the_playbooks_changed(policy: None) -> None:
    first = _recompute()
    assert "4 events folded, 1 tenant rewritten" in first
    assert "1 playbook match (1 changed)" in first
    # A playbook edit with no new event: nothing folded, nothing rewritten, yet one match went away.
    TriggerCondition.objects.filter(playbook_id="policy_friction").update(threshold=100)
    second = _recompute()
    assert "0 events folded, 0 tenants rewritten" in second
    assert "0 playbook matches (1 changed)" in second


def test_the_playbooks_page_says_its_counts_are_from_the_last_recompute(policy: None, staff_client: Any) -> None:
    Playbook.objects.update(updated_at=days_ago(30))  # seeded before the clock the tests freeze
    _recompute()
    body = staff_client.get("/playbooks/").content.decode()
    assert "Match counts are from the last recompute" in body and "edited since" not in body
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        Playbook.objects.get(pk="policy_friction").save()  # what admin's Save does
    body = staff_client.get("/playbooks/").content.decode()
    assert "a playbook was edited since</strong>, so they change at the next recompute" in body
