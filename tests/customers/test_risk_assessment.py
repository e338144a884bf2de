"""The risk heuristic and the intervention table, on hand-built signals (no database).

Every expected number below is worked out by hand from the formulas in
customers.metrics.risk's docstring.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from customers.metrics.risk import tenant_assess
from customers.metrics.signals import TenantSignals

AS_OF = date(2026, 3, 15)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def signals(**kwargs: object) -> TenantSignals:
    # An established account (104 days old): past its first weeks, so early_days adds nothing unless a test says so.
    base = TenantSignals(tenant_id="acme", first_seen_at=at(date(2025, 12, 1)))
    return replace(base, **kwargs)


def types(assessment: object) -> list[str]:
    return [i["intervention_type"] for i in assessment.interventions]  # type: ignore[attr-defined]


def points(assessment: object, name: str) -> float:
    return next(c["points"] for c in assessment.risk_components if c["signal"] == name)  # type: ignore[attr-defined]


def test_it_computes_stickiness_and_delta_from_the_weighted_sums():
    # 7d: 5 views (1.0) + 2 replays (0.6) + 1 export (0.5) = 2.1; 30d raw 6.8 -> 6.8 / 4.3 = 1.5814
    result = tenant_assess(signals(engagement_7d=2.1, engagement_30d=6.8, events_7d=8), as_of=AS_OF)
    assert result.stickiness_7d == 2.1
    assert result.stickiness_30d == 1.5814
    assert result.stickiness_delta == 1.3279  # 2.1 / 1.5814, accelerating
    assert result.has_baseline is True
    assert points(result, "engagement_decay") == 0


def test_it_reports_no_baseline_instead_of_dividing_by_zero():
    result = tenant_assess(signals(engagement_7d=0.0, engagement_30d=0.0, events_7d=3), as_of=AS_OF)
    assert result.stickiness_delta is None
    assert result.has_baseline is False
    assert "email" not in types(result)


def test_it_suggests_an_email_only_below_half_the_baseline():
    # 30d raw 21.5 -> 5.0 weekly; 7d 2.5 -> delta exactly 0.5: not a drop of more than 50%.
    at_boundary = tenant_assess(signals(engagement_7d=2.5, engagement_30d=21.5, events_7d=5), as_of=AS_OF)
    assert at_boundary.stickiness_delta == 0.5
    assert "email" not in types(at_boundary)

    below = tenant_assess(signals(engagement_7d=2.4, engagement_30d=21.5, events_7d=5), as_of=AS_OF)
    assert below.stickiness_delta == 0.48
    email = next(i for i in below.interventions if i["intervention_type"] == "email")
    assert email["priority"] == "today"
    assert email["triggering_signals"] == [
        "This week's use is 48% of normal (below 50%; ratio 0.48)",
        "Weighted use 2.40 this week vs 5.00 in a usual week (30-day average)",
    ]
    # 45 x (1 - 0.48) = 23.4 -> medium, primary reason is the decay.
    assert points(below, "engagement_decay") == 23.4
    assert below.risk_level == "medium"
    assert below.primary_risk_reason.startswith(
        "Usage this week is 48% of acme's normal (weighted use 2.40 this week vs 5.00"
    )


def test_it_suggests_feature_help_after_more_than_seven_days_without_investigation():
    seven = tenant_assess(
        signals(events_7d=4, last_investigation="REPLAY_COMPLETED", last_investigation_at=at(date(2026, 3, 8))),
        as_of=AS_OF,
    )
    assert seven.days_since_investigation == 7
    assert "feature_help" not in types(seven)
    assert points(seven, "silent_churn") == 0

    nine = tenant_assess(
        signals(events_7d=4, last_investigation="REPLAY_COMPLETED", last_investigation_at=at(date(2026, 3, 6), 23)),
        as_of=AS_OF,
    )
    assert nine.days_since_investigation == 9
    help_ = next(i for i in nine.interventions if i["intervention_type"] == "feature_help")
    assert help_["priority"] == "this_week"
    assert help_["triggering_signals"] == ["No Incident viewed or Replay completed for 9 days (more than 7)"]
    # silent churn: 25 + min(25, 3 x (9 - 7)) = 31 -> medium, and it is the primary reason.
    assert points(nine, "silent_churn") == 31
    assert nine.risk_signal_strength == 31
    assert nine.risk_level == "medium"
    assert nine.primary_risk_reason.startswith("Nobody at acme has investigated for 9 days")


def test_it_counts_stopped_engagement_once_as_silent_churn():
    # Baseline 4.3 raw -> 1.0 weekly, nothing this week: delta 0, but the decay is the silence itself.
    result = tenant_assess(
        signals(
            events_7d=50,
            engagement_7d=0.0,
            engagement_30d=4.3,
            last_investigation="INCIDENT_VIEWED",
            last_investigation_at=at(date(2026, 3, 1)),
        ),
        as_of=AS_OF,
    )
    assert result.stickiness_delta == 0
    assert points(result, "engagement_decay") == 0
    assert result.days_since_investigation == 14
    assert points(result, "silent_churn") == 46  # 25 + min(25, 3 x (14 - 7))
    assert result.risk_level == "high"
    assert types(result) == ["email", "feature_help"]


def test_it_suggests_a_technical_review_from_three_policy_blocks():
    two = tenant_assess(signals(events_7d=2, policy_blocks_7d=2), as_of=AS_OF)
    assert "technical" not in types(two)
    three = tenant_assess(signals(events_7d=3, policy_blocks_7d=3), as_of=AS_OF)
    technical = next(i for i in three.interventions if i["intervention_type"] == "technical")
    assert technical["triggering_signals"] == ["3 blocked attempts in the last 7 days (Policy block repeat; 3 or more)"]
    assert technical["suggested_action"] == "Review and adjust policy config"


def test_it_suggests_pricing_at_ninety_percent_of_the_plan():
    below = tenant_assess(signals(events_30d=899, monthly_event_limit=1000), as_of=AS_OF)
    assert below.plan_usage_pct == 89.9
    assert "pricing" not in types(below)
    at_limit = tenant_assess(signals(events_30d=900, monthly_event_limit=1000), as_of=AS_OF)
    pricing = next(i for i in at_limit.interventions if i["intervention_type"] == "pricing")
    assert pricing["triggering_signals"] == [
        "90% of the monthly plan used: 900 of 1000 events in 30 days (90% or more)"
    ]
    no_limit = tenant_assess(signals(events_30d=10**6), as_of=AS_OF)
    assert no_limit.plan_usage_pct is None


@pytest.mark.parametrize(
    ("friction", "expected_strength", "expected_level", "calls"),
    [
        # silent churn 8 days = 28, champion 20, friction 3 x score
        (4.0, 60.0, "critical", True),
        (3.9, 59.7, "high", False),
    ],
)
def test_it_calls_a_critical_tenant_immediately_from_sixty_points(friction, expected_strength, expected_level, calls):
    result = tenant_assess(
        signals(
            events_7d=12,
            friction_weighted_score=friction,
            last_investigation="INCIDENT_VIEWED",
            last_investigation_at=at(date(2026, 3, 7)),
            champion_user_id="alice",
            champion_prior_events=30,
            champion_prior_total=40,
            champion_recent_events=0,
        ),
        as_of=AS_OF,
    )
    assert result.champion_risk is True
    assert result.risk_signal_strength == expected_strength
    assert result.risk_level == expected_level
    assert ("call" in types(result)) is calls
    if calls:
        assert result.interventions[0]["intervention_type"] == "call"
        assert result.interventions[0]["priority"] == "immediate"
        assert result.interventions[0]["triggering_signals"] == ["Risk signal 60 of 100: critical (60 or more)"]


@pytest.mark.parametrize(
    ("friction", "level"), [(40 / 3, "high"), (6.6666, None), (6.67, "medium"), (20 / 3 - 0.01, None)]
)
def test_it_draws_the_level_thresholds_at_twenty_and_forty(friction, level):
    # Friction alone: min(30, 3 x score); 40/3 caps at 30 (-> not high on its own: 30 < 40)...
    result = tenant_assess(signals(events_7d=5, friction_weighted_score=friction), as_of=AS_OF)
    expected_points = round(min(30.0, 3 * friction), 1)
    assert result.risk_signal_strength == expected_points
    expected = "high" if expected_points >= 40 else "medium" if expected_points >= 20 else None
    assert result.risk_level == expected


def test_it_sets_high_at_exactly_forty_points():
    # champion 20 + cliff 15 + friction 3 x 5/3 = 5 -> 40
    result = tenant_assess(
        signals(
            events_7d=4,
            events_prev_7d=10,
            friction_weighted_score=5 / 3,
            champion_user_id="bob",
            champion_prior_events=6,
            champion_prior_total=10,
        ),
        as_of=AS_OF,
    )
    assert result.cliff is True
    assert result.risk_signal_strength == 40.0
    assert result.risk_level == "high"


def test_it_needs_a_real_champion_and_a_real_cliff():
    # exactly half is not "more than half"; 9 events last week is below the noise guard.
    result = tenant_assess(
        signals(
            events_7d=1, events_prev_7d=9, champion_user_id="bob", champion_prior_events=5, champion_prior_total=10
        ),
        as_of=AS_OF,
    )
    assert result.champion_risk is False
    assert result.cliff is False
    assert result.risk_signal_strength == 0
    assert result.risk_level is None
    assert result.primary_risk_reason == ""


def test_it_flags_an_active_tenant_that_never_investigated_once_it_is_a_week_old():
    young = tenant_assess(signals(events_30d=40, events_7d=10, first_seen_at=at(date(2026, 3, 8))), as_of=AS_OF)
    assert points(young, "never_investigated") == 0
    legal_only = tenant_assess(signals(events_30d=40, events_7d=10, first_seen_at=at(date(2026, 3, 7))), as_of=AS_OF)
    assert points(legal_only, "never_investigated") == 20
    assert legal_only.risk_level == "medium"
    assert legal_only.primary_risk_reason == ("acme uses the product (40 events in 30 days) but has never investigated")
    assert types(legal_only) == ["feature_help"]


@pytest.mark.parametrize(
    ("first_seen", "expected"),
    [
        (date(2026, 3, 9), 0.0),  # 6 days old: too new to say anything
        (date(2026, 3, 8), 10.0),  # 7 days: in full
        (date(2026, 2, 13), 7.2),  # 30 days: 10 x (90 - 30) / (90 - 7) = 7.23
        (date(2025, 12, 16), 0.1),  # 89 days: 10 x 1 / 83 = 0.12
        (date(2025, 12, 15), 0.0),  # 90 days: past its first weeks
    ],
)
def test_an_account_in_its_first_weeks_ranks_higher_the_younger_it_is_but_is_never_flagged_for_it(first_seen, expected):
    active = signals(
        events_30d=120,
        events_7d=30,
        first_seen_at=at(first_seen),
        last_investigation="INCIDENT_VIEWED",
        last_investigation_at=at(date(2026, 3, 14)),
        record_start=date(2025, 6, 1),  # the console has watched since June: these accounts arrived since
    )
    result = tenant_assess(active, as_of=AS_OF)
    assert points(result, "early_days") == pytest.approx(expected, abs=0.05)
    assert result.risk_signal_strength == pytest.approx(expected, abs=0.05)
    assert result.risk_level is None


def test_an_account_on_record_since_the_consoles_first_weeks_has_no_known_age():
    # The console's first event on 20 Feb: an account first seen 13 days later may have been a customer for
    # years; one first seen 14 days later arrived while the console watched.
    def on(first_seen: date) -> TenantSignals:
        return signals(
            events_30d=120,
            events_7d=30,
            first_seen_at=at(first_seen),
            last_investigation="INCIDENT_VIEWED",
            last_investigation_at=at(date(2026, 3, 14)),
            record_start=date(2026, 2, 20),
        )

    assert points(tenant_assess(on(date(2026, 3, 5)), as_of=AS_OF), "early_days") == 0
    # 14 days after the start, 9 days old: 10 x 81 / 83 = 9.8
    assert points(tenant_assess(on(date(2026, 3, 6)), as_of=AS_OF), "early_days") == pytest.approx(9.8, abs=0.05)
    unmeasured = replace(on(date(2026, 3, 6)), record_start=None)
    assert points(tenant_assess(unmeasured, as_of=AS_OF), "early_days") == 0


def test_it_never_puts_internal_test_or_demo_tenants_at_risk():
    result = tenant_assess(
        signals(kind="internal", events_7d=5, friction_weighted_score=10, policy_blocks_7d=9), as_of=AS_OF
    )
    assert result.risk_signal_strength == 0
    assert result.risk_level is None
    assert result.interventions == []


def test_it_names_recent_changes_and_the_change_before_the_decay():
    result = tenant_assess(
        signals(
            events_7d=5,
            engagement_7d=1.0,
            engagement_30d=8.6,  # 2.0 weekly -> delta 0.5
            changes=[
                ("POLICY_CHANGED", date(2026, 3, 12)),
                ("MODEL_SWITCHED", date(2026, 3, 15)),
                ("PLAN_CHANGED", date(2026, 2, 1)),  # older than 14 days: not recent
            ],
            stickiness_peak_day=date(2026, 3, 11),
        ),
        as_of=AS_OF,
    )
    assert result.recent_changes == ["model switch today", "policy change 3 days ago"]
    # Decline began 2026-03-12; the policy change that day is the closest before (the switch came after).
    assert result.decay_correlation == (
        "policy change on 2026-03-12, on the day the 7-day stickiness began to fall (2026-03-12)"
    )


def test_it_leaves_decay_correlation_null_when_nothing_changed_or_nothing_decays():
    steady = tenant_assess(
        signals(
            engagement_7d=3.0,
            engagement_30d=8.6,
            changes=[("POLICY_CHANGED", date(2026, 3, 12))],
            stickiness_peak_day=date(2026, 3, 14),
        ),
        as_of=AS_OF,
    )
    assert steady.decay_correlation is None  # delta 1.5: accelerating
    unexplained = tenant_assess(
        signals(engagement_7d=1.0, engagement_30d=8.6, changes=[], stickiness_peak_day=date(2026, 3, 10)), as_of=AS_OF
    )
    assert unexplained.decay_correlation is None
