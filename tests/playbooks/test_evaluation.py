"""Playbooks are evaluated after every recompute: matches, raised risk levels, the daily risk history.

Known answers by hand; the frozen clock puts as_of on 2026-03-15 (UTC). A
"steady" tenant views one incident every day for 30 days: stickiness_delta
1.0036, no friction, risk_signal_strength 0, so the engine alone never flags it.
"""

from __future__ import annotations

from datetime import date

import pytest
import time_machine
from django.contrib.admin.models import LogEntry

from customers.metrics.recompute import metrics_recompute
from customers.models import Tenant, TenantMetrics
from playbooks.models import EvaluationState, Playbook, PlaybookMatch, TenantRiskDay, TriggerCondition
from tests.customers.conftest import NOW, Ev, days_ago
from tests.playbooks.conftest import admin_form_data, matched, side_output_only

pytestmark = pytest.mark.django_db(transaction=True)


def steady(tenant_id: str) -> list[Ev]:
    return [Ev(tenant_id, "INCIDENT_VIEWED", days_ago(d)) for d in range(30)]


def blocks(tenant_id: str, n: int) -> list[Ev]:
    # One session on one day: friction 2.0 x n capped at 5 -> 15 points, below the engine's medium (20).
    return [Ev(tenant_id, "POLICY_BLOCK_REPEAT", days_ago(1), session_id="s9") for _ in range(n)]


def level(tenant_id: str) -> str | None:
    return TenantMetrics.objects.get(tenant_id=tenant_id).risk_level


def test_it_matches_policy_friction_and_raises_the_tenant_into_the_at_risk_list(metrics_db, read_client):
    metrics_db(steady("blocked") + blocks("blocked", 4) + steady("calm"))
    metrics_recompute()

    assert matched("blocked") == ["policy_friction"]
    assert matched("calm") == []
    m = TenantMetrics.objects.get(tenant_id="blocked")
    assert m.risk_signal_strength == 15.0  # the engine alone: not at risk
    assert m.risk_level == "medium"  # raised by the playbook
    assert m.primary_risk_reason == "Playbook 'Repeatedly blocked' matched (medium): 3+ POLICY_BLOCK_REPEAT in 7 days"
    # The engine's own (sub-threshold) reason is kept as the first secondary signal.
    assert m.secondary_signals[0] == (
        "blocked ran into 4 friction events in the last 7 days, mostly Policy block repeat (friction score 5.00)"
    )
    match = PlaybookMatch.objects.get(playbook__purpose="risk", tenant_id="blocked")
    assert match.measured == [{"condition": "3+ POLICY_BLOCK_REPEAT in 7 days", "metric": "event_count", "value": 4}]
    assert match.as_of == date(2026, 3, 15)

    body = read_client.get("/ops/customers/at-risk").json()
    assert [c["tenant_id"] for c in body] == ["blocked"]
    assert [p["id"] for p in body[0]["matched_playbooks"]] == ["policy_friction"]
    assert body[0]["matched_playbooks"][0]["trigger_conditions"] == ["3+ POLICY_BLOCK_REPEAT in 7 days"]
    detail = read_client.get("/ops/customers/blocked").json()
    assert [p["id"] for p in detail["matched_playbooks"]] == ["policy_friction"]
    assert read_client.get("/ops/customers/calm").json()["matched_playbooks"] == []

    day = TenantRiskDay.objects.get(tenant_id="blocked")
    assert (day.day, day.risk_level, day.playbooks) == (date(2026, 3, 15), "medium", ["policy_friction"])
    assert not TenantRiskDay.objects.filter(tenant_id="calm").exists()


def test_editing_the_threshold_in_admin_changes_the_matches_at_the_next_recompute(metrics_db, admin_client):
    metrics_db(steady("four") + blocks("four", 4) + steady("six") + blocks("six", 6))
    metrics_recompute()
    assert (matched("four"), matched("six")) == (["policy_friction"], ["policy_friction"])

    playbook = Playbook.objects.get(pk="policy_friction")
    data = admin_form_data(playbook, conditions=[{"threshold": "5"}])
    response = admin_client.post("/admin/playbooks/playbook/policy_friction/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert TriggerCondition.objects.get(playbook_id="policy_friction").threshold == 5
    # The edit is in Django's change history.
    entry = LogEntry.objects.get(object_id="policy_friction")
    assert "threshold" in entry.get_change_message().lower() or "trigger condition" in entry.get_change_message()

    # Nothing changes until the next recompute ...
    assert matched("four") == ["policy_friction"]
    metrics_recompute()
    # ... which evaluates what was saved: 4 < 5 no longer matches, 6 still does.
    assert (matched("four"), matched("six")) == ([], ["policy_friction"])
    assert (level("four"), level("six")) == (None, "medium")
    assert str(TriggerCondition.objects.get(playbook_id="policy_friction")) == "5+ POLICY_BLOCK_REPEAT in 7 days"


def test_abandonment_counts_replay_and_export_aborts_together(metrics_db):
    events = steady("three") + steady("two")
    events += [Ev("three", "REPLAY_ABORTED", days_ago(2), session_id="a")] * 1
    events += [Ev("three", "REPLAY_ABORTED", days_ago(3), session_id="b"), Ev("three", "EXPORT_ABORTED", days_ago(6))]
    events += [Ev("two", "REPLAY_ABORTED", days_ago(2)), Ev("two", "EXPORT_ABORTED", days_ago(7))]  # 7 days ago: out
    metrics_db(events)
    metrics_recompute()
    assert matched("three") == ["abandonment"]
    assert level("three") == "high"
    assert PlaybookMatch.objects.get(playbook__purpose="risk", tenant_id="three").measured[0]["value"] == 3
    assert matched("two") == []


def test_engagement_decay_is_critical_and_a_tenant_without_baseline_never_matches_it(metrics_db):
    # 23 views on days 7..29 (4.6) and one view today (0.2): delta = 0.2 / (4.8 / 4.3) = 0.1792.
    decay = [Ev("decay", "INCIDENT_VIEWED", days_ago(d)) for d in range(7, 30)] + [
        Ev("decay", "INCIDENT_VIEWED", days_ago(0))
    ]
    api_only = [Ev("api", "API_CALL", days_ago(d)) for d in range(20)]  # no engagement: delta is NULL
    metrics_db(decay + api_only)
    metrics_recompute()
    assert TenantMetrics.objects.get(tenant_id="decay").risk_signal_strength == 36.9  # engine: medium
    assert matched("decay") == ["engagement_decay"]
    assert level("decay") == "critical"
    assert PlaybookMatch.objects.get(playbook__purpose="risk", tenant_id="decay").measured[0]["value"] == 0.1792
    assert TenantMetrics.objects.get(tenant_id="api").stickiness_delta is None
    assert matched("api") == []
    assert level("api") == "high"  # the engine's never_investigated 20 + not onboarded 25; no playbook changes it


@pytest.mark.parametrize(("last_investigation_days_ago", "expected"), [(6, []), (7, ["silent_churn"])])
def test_silent_churn_needs_seven_days_without_investigation_while_active(
    metrics_db, last_investigation_days_ago, expected
):
    # Exports keep engagement steady (no decay), so only the investigation gap can match.
    events = [Ev("quiet", "INCIDENT_VIEWED", days_ago(d)) for d in range(last_investigation_days_ago, 30)]
    events += [Ev("quiet", "EXPORT_COMPLETED", days_ago(d)) for d in range(7)]
    metrics_db(events)
    metrics_recompute()
    assert TenantMetrics.objects.get(tenant_id="quiet").days_since_investigation == last_investigation_days_ago
    assert matched("quiet") == expected


def test_legal_only_matches_certificates_without_any_investigation(metrics_db):
    metrics_db(side_output_only("legal", side_output="CERT_GENERATED", core_value="INCIDENT_VIEWED"))
    metrics_recompute()
    assert matched("legal") == ["legal_only"]
    # The roles read as the types this product sent (a certificate generated, an incident viewed);
    # the example types it never sent are measured (zero) but not named.
    assert PlaybookMatch.objects.get(playbook__purpose="risk", tenant_id="legal").measured == [
        {"condition": "1+ CERT_GENERATED in 30 days", "metric": "event_count", "value": 10},
        {
            "condition": "no INCIDENT_VIEWED in 30 days",
            "metric": "event_count",
            "value": 0,
        },
    ]
    assert matched("mixed") == []


def test_internal_tenants_and_disabled_playbooks_never_match(metrics_db):
    metrics_db(steady("ours") + blocks("ours", 5) + steady("theirs") + blocks("theirs", 5))
    Tenant.objects.filter(tenant_id="ours").update(kind="internal")
    metrics_recompute()
    assert (matched("ours"), matched("theirs")) == ([], ["policy_friction"])
    assert level("ours") is None

    Playbook.objects.filter(pk="policy_friction").update(enabled=False)
    metrics_recompute()
    assert matched("theirs") == []
    assert level("theirs") is None


def test_a_match_keeps_its_first_time_and_disappears_when_the_condition_stops_holding(metrics_db):
    metrics_db(steady("t") + blocks("t", 3))
    metrics_recompute()
    first = PlaybookMatch.objects.get(playbook__purpose="risk", tenant_id="t").first_matched_at
    assert first == NOW
    later = NOW.replace(hour=18)
    with time_machine.travel(later, tick=False):
        metrics_recompute()
    match = PlaybookMatch.objects.get(playbook__purpose="risk", tenant_id="t")
    assert (match.first_matched_at, match.matched_at) == (first, later)
    # Eight days on, the blocks (day as_of-1) are out of the 7-day window.
    with time_machine.travel(NOW.replace(day=23), tick=False):
        metrics_recompute()
    assert "policy_friction" not in matched("t")


def test_the_daily_history_keeps_the_highest_level_of_the_day_and_one_row_per_day(metrics_db):
    metrics_db(steady("t") + blocks("t", 3))
    metrics_recompute()
    assert TenantRiskDay.objects.get(tenant_id="t", day=date(2026, 3, 15)).risk_level == "medium"
    # Later the same day the playbook is disabled: the tenant is no longer at risk, but the day
    # keeps what it was flagged at.
    Playbook.objects.filter(pk="policy_friction").update(enabled=False)
    with time_machine.travel(NOW.replace(hour=20), tick=False):
        metrics_recompute()
    day = TenantRiskDay.objects.get(tenant_id="t", day=date(2026, 3, 15))
    assert (day.risk_level, day.playbooks) == ("medium", ["policy_friction"])
    # Raised the same day by a stronger playbook: the row takes the higher level and both playbooks.
    Playbook.objects.filter(pk="policy_friction").update(enabled=True, risk_level="high")
    with time_machine.travel(NOW.replace(hour=22), tick=False):
        metrics_recompute()
    day = TenantRiskDay.objects.get(tenant_id="t", day=date(2026, 3, 15))
    assert day.risk_level == "high"
    with time_machine.travel(NOW.replace(day=16), tick=False):
        metrics_recompute()
    assert list(TenantRiskDay.objects.filter(tenant_id="t").order_by("day").values_list("day", "risk_level")) == [
        (date(2026, 3, 15), "high"),
        (date(2026, 3, 16), "high"),
    ]


def test_a_raise_that_still_holds_costs_no_recompute_and_one_that_stops_is_undone_in_the_same_run(metrics_db):
    metrics_db(steady("four") + blocks("four", 4))
    metrics_recompute()
    assert level("four") == "medium"  # raised by policy_friction
    engine_reason = TenantMetrics.objects.get(tenant_id="four").unraised["primary_risk_reason"]

    idle = metrics_recompute()  # nothing new: the raise still holds
    assert idle.tenants_written == 0
    assert level("four") == "medium"

    Playbook.objects.filter(pk="policy_friction").update(enabled=False)
    metrics_recompute()  # still nothing new, but the raise no longer holds
    row = TenantMetrics.objects.get(tenant_id="four")
    assert (row.risk_level, row.primary_risk_reason, row.unraised) == (None, engine_reason, None)


def _evaluated_state() -> dict[str, list]:
    """What the hook leaves behind, without the run stamps (matched_at, computed_at)."""
    return {
        "matches": list(
            PlaybookMatch.objects.order_by("tenant_id", "playbook_id").values_list(
                "tenant_id", "playbook_id", "first_matched_at", "as_of", "measured"
            )
        ),
        "metrics": list(
            TenantMetrics.objects.order_by("tenant_id").values_list(
                "tenant_id", "risk_level", "primary_risk_reason", "secondary_signals", "interventions", "unraised"
            )
        ),
        "days": list(TenantRiskDay.objects.order_by("tenant_id", "day").values_list()),
    }


@pytest.mark.parametrize("lateral", [False, True])
def test_an_incremental_run_evaluates_only_the_tenants_it_rewrote_and_agrees_with_evaluating_everyone(
    metrics_db, monkeypatch, lateral
):
    # Both ways of reaching the rewritten tenants: one by one through primary keys, or a hash join.
    monkeypatch.setattr("customers.metrics.scope.DIRTY_LATERAL_MAX_SHARE", 1.0 if lateral else 0.0)
    metrics_db(steady("a") + blocks("a", 4) + steady("b") + blocks("b", 6) + steady("c"))
    metrics_recompute()
    assert EvaluationState.objects.get().tenants_evaluated == 3
    assert (matched("a"), matched("b"), matched("c")) == (["policy_friction"], ["policy_friction"], [])

    later = NOW.replace(hour=14)
    with time_machine.travel(later, tick=False):
        metrics_db(blocks("c", 3))  # only c has new events
        metrics_recompute()
    assert EvaluationState.objects.get().tenants_evaluated == 1
    assert (matched("a"), matched("b"), matched("c")) == (["policy_friction"], ["policy_friction"], ["policy_friction"])
    assert (level("a"), level("b"), level("c")) == ("medium", "medium", "medium")
    # The matches it did not re-measure are still confirmed by this run.
    assert set(PlaybookMatch.objects.values_list("matched_at", flat=True)) == {later}
    scoped = _evaluated_state()

    with time_machine.travel(NOW.replace(hour=15), tick=False):
        metrics_recompute(full=True)  # every tenant rewritten and evaluated
    assert EvaluationState.objects.get().tenants_evaluated == 3
    assert _evaluated_state() == scoped


def test_a_playbook_edit_or_a_new_day_makes_the_next_run_evaluate_every_tenant(metrics_db):
    metrics_db(steady("four") + blocks("four", 4) + steady("six") + blocks("six", 6))
    metrics_recompute()
    with time_machine.travel(NOW.replace(hour=13), tick=False):
        metrics_recompute()  # nothing new, same playbooks: nobody to evaluate
    assert EvaluationState.objects.get().tenants_evaluated == 0
    assert (matched("four"), matched("six")) == (["policy_friction"], ["policy_friction"])

    TriggerCondition.objects.filter(playbook_id="policy_friction").update(threshold=5)
    with time_machine.travel(NOW.replace(hour=14), tick=False):
        metrics_recompute()  # still nothing new, but the threshold moved
    assert EvaluationState.objects.get().tenants_evaluated == 2
    assert (matched("four"), matched("six")) == ([], ["policy_friction"])
    assert (level("four"), level("six")) == (None, "medium")

    with time_machine.travel(NOW.replace(day=16), tick=False):
        metrics_recompute()
    state = EvaluationState.objects.get()
    assert (state.as_of, state.tenants_evaluated) == (date(2026, 3, 16), 2)
