"""Issue 17, "plain language, numbers kept": every reason and intervention text is a founder's
sentence with the measured numbers in it, on the seeded vocabulary and on a second product's;
the formulas stay in the components' ``explanation`` (no database: hand-built signals)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from customers.metrics.risk import TenantAssessment, tenant_assess
from customers.metrics.signals import TenantSignals
from customers.metrics.vocabulary import SPEC_VOCABULARY, Vocabulary, vocabulary_from_rows
from events.models import EventCategory, FrictionSignal

AS_OF = date(2026, 3, 15)
# The engine's field names: a founder reads sentences, the API carries these as keys.
RAW_FIELDS = re.compile(
    r"stickiness_delta|stickiness_7d|stickiness_30d|risk_signal_strength|friction_weighted_score|"
    r"days_since_investigation|events_7d|events_prev_7d|events_30d|monthly_event_limit"
)
# The CI product of tests/customers/test_second_vocabulary.py, as registry rows.
CI_VOCABULARY = vocabulary_from_rows(
    [
        {"name": n, "label": label, "category": c, "core_value": core, "friction_signal": s}
        for n, label, c, core, s in [
            ("build_passed", "", EventCategory.VALUE, False, ""),
            ("deploy_shipped", "", EventCategory.VALUE, True, ""),
            ("build_failed", "", EventCategory.FRICTION, False, FrictionSignal.SYSTEM_ISSUE),
            ("quota_blocked", "Build quota reached", EventCategory.FRICTION, False, FrictionSignal.BLOCKED),
            ("pipeline_edited", "Pipeline edited", EventCategory.CHANGE, False, ""),
        ]
    ],
    [],
)


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def _every_text_case(vocabulary: Vocabulary) -> list[TenantAssessment]:
    """Tenants that between them score every component and trigger every intervention rule."""
    core = vocabulary.core_value[0]
    # Established accounts (104 days old), and one in its first weeks for early_days.
    base = TenantSignals(tenant_id="acme", name="Acme", first_seen_at=at(date(2025, 12, 1)))
    cases = [
        # decay below half (call, email), a cliff, friction with blocks and failures, a silent champion,
        # the plan nearly used up, a recent change.
        replace(
            base,
            events_7d=4,
            events_prev_7d=40,
            events_30d=950,
            monthly_event_limit=1000,
            engagement_7d=0.4,
            engagement_30d=44.0,
            friction_weighted_score=6.0,
            friction_events_7d=7,
            top_friction_type=vocabulary.blocked[0],
            policy_blocks_7d=4,
            failures_7d=3,
            last_investigation=core,
            last_investigation_at=at(date(2026, 3, 14)),
            champion_user_id="alice",
            champion_prior_events=30,
            champion_prior_total=40,
            changes=[(vocabulary.change[0], date(2026, 3, 10))],
            stickiness_peak_day=date(2026, 3, 9),
        ),
        # silent churn (feature_help after 20 days).
        replace(
            base,
            events_7d=30,
            events_prev_7d=30,
            events_30d=120,
            engagement_7d=3.0,
            engagement_30d=12.9,
            last_investigation=core,
            last_investigation_at=at(date(2026, 2, 23)),
        ),
        # never used the core value (feature_help, never).
        replace(base, events_7d=10, events_30d=40),
        # 30 days old, using the core value: in its first weeks.
        replace(
            base,
            first_seen_at=at(date(2026, 2, 13)),
            record_start=date(2025, 6, 1),
            events_7d=30,
            events_30d=120,
            last_investigation=core,
            last_investigation_at=at(date(2026, 3, 14)),
        ),
    ]
    return [tenant_assess(c, as_of=AS_OF, vocabulary=vocabulary) for c in cases]


def _founder_texts(assessment: TenantAssessment) -> list[str]:
    texts = [assessment.primary_risk_reason, *assessment.secondary_signals]
    texts += [c["reason"] for c in assessment.risk_components]
    for intervention in assessment.interventions:
        texts += [intervention["suggested_action"], intervention["context"], intervention["expected_outcome"]]
        texts += intervention["triggering_signals"]
    return [t for t in texts if t]


@pytest.mark.parametrize("vocabulary", [SPEC_VOCABULARY, CI_VOCABULARY], ids=["spec", "ci"])
def test_no_reason_or_intervention_text_names_a_raw_field(vocabulary: Vocabulary) -> None:
    assessments = _every_text_case(vocabulary)
    scored = {c["signal"] for a in assessments for c in a.risk_components if c["points"] > 0}
    assert scored == {
        "silent_churn",
        "engagement_decay",
        "never_investigated",
        "friction",
        "champion_silent",
        "usage_cliff",
        "early_days",
    }
    triggered = {i["intervention_type"] for a in assessments for i in a.interventions}
    assert triggered == {"call", "email", "feature_help", "technical", "pricing"}
    texts = [t for a in assessments for t in _founder_texts(a)]
    assert [t for t in texts if RAW_FIELDS.search(t)] == []
    # Every scoring component says why in a sentence of its own (no "Name: ..." jargon prefix).
    reasons = [c["reason"] for a in assessments for c in a.risk_components if c["points"] > 0]
    assert all(r and not r.startswith(("Engagement decay:", "Silent churn:", "Friction:")) for r in reasons)


def test_the_decay_reason_keeps_its_numbers_and_names_the_change_before_the_fall() -> None:
    (decayed, *_) = _every_text_case(SPEC_VOCABULARY)
    # 7d 0.4 vs 44 / 4.3 = 10.2326 weekly: delta 0.0391 -> 4%; the model switch on 10 Mar came
    # the day the fall began (peak 9 Mar).
    assert decayed.stickiness_delta == 0.0391
    assert decayed.decay_correlation == (
        "model switch on 2026-03-10, on the day the 7-day stickiness began to fall (2026-03-10)"
    )
    decay = next(c for c in decayed.risk_components if c["signal"] == "engagement_decay")
    assert decay["reason"] == (
        "Usage this week is 4% of Acme's normal (weighted use 0.40 this week vs 10.23 in a usual week); "
        "it fell after the model switch on 10 Mar"
    )
    # The formula stays one click away, in the explanation.
    assert decay["explanation"].startswith("stickiness_delta 0.04 (0.40 this week vs 10.23 weekly over 30 days)")
    call = next(i for i in decayed.interventions if i["intervention_type"] == "call")
    # decay 45 x (1 - 0.0391) = 43.2 + friction min(30, 3 x 6) = 18 + champion 20 + cliff 15 = 96.2
    assert decayed.risk_signal_strength == 96.2
    assert call["triggering_signals"] == ["Risk signal 96 of 100: critical (60 or more)"]
    email = next(i for i in decayed.interventions if i["intervention_type"] == "email")
    assert email["context"] == "Usage at Acme this week is 4% of its usual weekly use"
    assert email["triggering_signals"][0] == "This week's use is 4% of normal (below 50%; ratio 0.04)"


def test_the_decay_reason_names_no_change_when_none_preceded_the_fall() -> None:
    (decayed, *_) = _every_text_case(SPEC_VOCABULARY)
    without = tenant_assess(
        TenantSignals(
            tenant_id="acme",
            name="Acme",
            first_seen_at=at(date(2025, 12, 1)),
            events_7d=4,
            engagement_7d=0.4,
            engagement_30d=44.0,
        ),
        as_of=AS_OF,
    )
    assert without.decay_correlation is None
    assert without.risk_components[1]["reason"] == (
        "Usage this week is 4% of Acme's normal (weighted use 0.40 this week vs 10.23 in a usual week)"
    )
    assert decayed.risk_components[1]["signal"] == "engagement_decay"


def test_the_other_reasons_read_as_sentences_in_the_products_words() -> None:
    decayed, silent, never, young = _every_text_case(CI_VOCABULARY)
    by_signal = {c["signal"]: c["reason"] for c in decayed.risk_components}
    assert by_signal["friction"] == (
        "Acme ran into 7 friction events in the last 7 days, mostly Build quota reached (friction score 6.00)"
    )
    assert by_signal["champion_silent"] == (
        "alice, the main user at Acme, has gone quiet: nothing in the last 7 days after 30 of 40 events in the "
        "month before"
    )
    assert by_signal["usage_cliff"] == "Activity at Acme fell to 4 events this week from 40 last week (less than half)"
    assert "Acme has used 95% of its monthly event limit (950 of 1000 events in 30 days)" in decayed.secondary_signals
    assert "Changed recently at Acme: Pipeline edited 5 days ago" in decayed.secondary_signals
    technical = next(i for i in decayed.interventions if i["intervention_type"] == "technical")
    assert technical["triggering_signals"] == [
        "4 blocked attempts in the last 7 days (Build quota reached; 3 or more)",
        "3 failures in the last 7 days (Build failed; 3 or more)",
    ]
    assert silent.primary_risk_reason == (
        "Nobody at Acme has used Deploy shipped for 20 days, though other activity keeps arriving (30 events this week)"
    )
    assert never.primary_risk_reason == "Acme uses the product (40 events in 30 days) but has never used Deploy shipped"
    # 30 days old: 10 x (90 - 30) / (90 - 7) = 7.2 points, and the only reason.
    assert young.risk_signal_strength == 7.2
    assert young.primary_risk_reason == "Acme started 30 days ago: customers leave most often in their first weeks"


def test_a_count_of_one_reads_in_the_singular() -> None:
    signals = TenantSignals(
        tenant_id="acme", name="Acme", first_seen_at=at(date(2025, 12, 1)), events_7d=1, events_prev_7d=11
    )
    cliff = next(
        c
        for c in tenant_assess(signals, as_of=AS_OF, vocabulary=SPEC_VOCABULARY).risk_components
        if c["signal"] == "usage_cliff"
    )
    assert cliff["reason"] == "Activity at Acme fell to 1 event this week from 11 last week (less than half)"
