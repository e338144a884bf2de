"""Expansion candidates: customers whose active users or core-value use grew strongly over 28 days
against the 28 before, matched by the seeded expansion playbooks (in roles), listed on the
Customers page, and never put on the call list.

NOW is 15 March 2026: the last 28 days are 16 Feb - 15 Mar (days_ago 0-27), the 28 before them
19 Jan - 15 Feb (days_ago 28-55).
"""

from __future__ import annotations

import pytest

from customers.metrics.recompute import metrics_recompute
from customers.models import TenantMetrics
from playbooks.conditions import condition_problems, condition_text
from playbooks.models import Playbook, PlaybookMatch, TriggerCondition
from playbooks.selectors import expansion_candidates, tenant_matched_playbooks
from tests.customers.conftest import Ev, days_ago

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE, LAST = range(28, 56), range(0, 28)


def _users(tenant: str, users: int, days: range) -> list[Ev]:
    """One API call per user on three days of the window."""
    picked = [days[0], days[len(days) // 2], days[-1]]
    return [
        Ev(tenant, "API_CALL", days_ago(d), user_id=f"u{u}", session_id=f"s{u}") for u in range(users) for d in picked
    ]


def _core(tenant: str, events: int, days: range) -> list[Ev]:
    """INCIDENT_VIEWED (a core_value type of the default registry) ``events`` times, spread over the window."""
    return [Ev(tenant, "INCIDENT_VIEWED", days_ago(days[i % len(days)])) for i in range(events)]


@pytest.fixture
def history(metrics_db) -> None:
    events = []
    # growing: 4 active users before, 6 now (1.5x, and 6 >= 5); core-value use flat.
    events += (
        _users("growing", 4, BEFORE)
        + _users("growing", 6, LAST)
        + _core("growing", 10, BEFORE)
        + _core("growing", 10, LAST)
    )
    # deepening: one user throughout; core-value use 10 -> 25 (2.5x, and 25 >= 20).
    events += _users("deepening", 1, BEFORE) + _users("deepening", 1, LAST)
    events += _core("deepening", 10, BEFORE) + _core("deepening", 25, LAST)
    # small: 2 users -> 4 (2x) but under 5 users; core-value 4 -> 12 (3x) but under 20 events.
    events += (
        _users("small", 2, BEFORE) + _users("small", 4, LAST) + _core("small", 4, BEFORE) + _core("small", 12, LAST)
    )
    # newcomer: nothing before, 9 users now: new, not expanding (nothing to grow from).
    events += _users("newcomer", 9, LAST) + _core("newcomer", 30, LAST)
    metrics_db(events)


def test_growth_matches_the_seeded_expansion_playbooks_and_is_listed(history):
    metrics_recompute()
    matched = sorted(
        PlaybookMatch.objects.filter(playbook__purpose="expansion").values_list("tenant_id", "playbook_id")
    )
    assert matched == [("deepening", "expansion_core_value"), ("growing", "expansion_users")]
    measured = PlaybookMatch.objects.get(tenant_id="growing", playbook_id="expansion_users").measured
    assert [m["value"] for m in measured] == [1.5, 6]  # 6 users / 4, and 6 users
    measured = PlaybookMatch.objects.get(tenant_id="deepening", playbook_id="expansion_core_value").measured
    assert [m["value"] for m in measured] == [2.5, 25]
    listed = {c["tenant_id"]: c for c in expansion_candidates(limit=10)}
    assert set(listed) == {"growing", "deepening"}
    assert [p["id"] for p in listed["growing"]["playbooks"]] == ["expansion_users"]
    assert listed["growing"]["first_step"].step == "Congratulate the champion and ask what changed"


def test_an_expansion_match_raises_no_level_and_is_no_reason_to_call(history):
    Playbook.objects.filter(purpose="expansion").update(enabled=False)
    metrics_recompute()
    levels = dict(TenantMetrics.objects.values_list("tenant_id", "risk_level"))
    Playbook.objects.filter(purpose="expansion").update(enabled=True)
    metrics_recompute(full=True)
    assert PlaybookMatch.objects.filter(playbook__purpose="expansion").count() == 2
    assert dict(TenantMetrics.objects.values_list("tenant_id", "risk_level")) == levels
    matched = tenant_matched_playbooks(tenant_ids=["growing", "deepening"])
    assert all(p["id"] not in ("expansion_users", "expansion_core_value") for ps in matched.values() for p in ps)


def test_the_customers_page_lists_the_candidates_with_why(history, staff_client):
    metrics_recompute()
    body = staff_client.get("/customers/").content.decode()
    assert 'data-testid="expansion-growing"' in body and 'data-testid="expansion-deepening"' in body
    section = body.split('data-testid="expansion-growing"')[1].split("</li>")[0]
    assert "active users in 28 days at least 1.5x the 28 days before (1.5); 5+ active users in 28 days (6)" in section
    assert 'data-testid="expansion-small"' not in body and 'data-testid="expansion-newcomer"' not in body


def test_growth_conditions_read_in_words_and_keep_both_windows_in_the_rollups():
    condition = TriggerCondition(metric="active_users_growth", operator=">=", threshold=1.5, window_days=28)
    assert condition_text(condition) == "active users in 28 days at least 1.5x the 28 days before"
    problems = condition_problems(
        metric="event_count_growth", operator=">=", threshold=1.5, window_days=46,
        event_types=["core_value events"], known_event_types=[],
    )  # fmt: skip
    assert problems == {
        "window_days": "window_days must be between 1 and 45 (the rollups keep 90 days, and a growth reads the "
        "window before it too)."
    }
    assert condition_problems(
        metric="event_count_growth", operator=">=", threshold=1.5, window_days=28, event_types=[], known_event_types=[]
    ) == {
        "event_types": "event_count_growth needs at least one event type or role, e.g. invoice_sent or blocked events."
    }


@pytest.mark.django_db(transaction=False)
def test_a_fresh_database_holds_the_expansion_playbooks_as_defined():
    from playbooks.defaults import EXPANSION_PLAYBOOKS

    for spec in EXPANSION_PLAYBOOKS:
        playbook = Playbook.objects.get(pk=spec["id"])
        assert (playbook.name, playbook.purpose, playbook.enabled) == (spec["name"], "expansion", True)
        conditions = [
            (c.metric, c.event_types, c.operator, c.threshold, c.window_days)
            for c in playbook.conditions.order_by("order")
        ]
        assert conditions == [tuple(c) for c in spec["conditions"]]
        assert [a.step for a in playbook.actions.order_by("order")] == [a[0] for a in spec["actions"]]
