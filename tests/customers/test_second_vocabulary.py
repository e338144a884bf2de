"""A second product, a CI/build service, described in its own vocabulary: the engine reads its roles
and labels, never the spec's type names.

The registry holds only this product's types (the founder replaced the defaults):
build_started (0.1) and build_passed (0.3) count as engagement; deploy_shipped is the
core value (1.0); build_failed is a system issue; quota_blocked ("Build quota reached") is
the blocked signal (friction 2.5); pipeline_edited ("Pipeline edited") is a change.
Every expected value below is worked out by hand from customers/metrics/risk.py's table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from customers.integrations import at_risk_checkin_lines
from customers.metrics.recompute import metrics_recompute
from customers.metrics.weights import risk_weights_activate, risk_weights_create
from customers.models import RiskWeights, Tenant, TenantMetrics
from events.models import EventType
from tests.customers.conftest import NOW, Ev, days_ago

pytestmark = pytest.mark.django_db(transaction=True)

# The spec's vocabulary, none of which this product has: no founder-facing text may name it.
SPEC_WORDS = re.compile(r"incident|replay|export|certificate|cert_|investigat|policy|POLICY", re.IGNORECASE)
# JSON keys whose values are identifiers of the API contract, not text a founder reads.
IDENTIFIER_KEYS = {"signal", "intervention_type", "priority", "tenant_id", "kind", "risk_level", "top_friction_type"}

CI_FIELDS = ("name", "label", "category", "core_value", "friction_signal", "friction_weight", "engagement_weight")
CI_TYPES = [
    ("build_started", "", "intent", False, "intent", 0.0, 0.1),
    ("build_passed", "", "value", False, "", 0.0, 0.3),
    ("deploy_shipped", "", "value", True, "", 0.0, 1.0),
    ("build_failed", "", "friction", False, "system_issue", 2.0, 0.0),
    ("quota_blocked", "Build quota reached", "friction", False, "blocked", 2.5, 0.0),
    ("pipeline_edited", "Pipeline edited", "change", False, "", 0.0, 0.0),
    ("login", "", "lifecycle", False, "", 0.0, 0.0),
]


def _ci_registry() -> None:
    EventType.objects.all().delete()
    for row in CI_TYPES:
        EventType.objects.create(**dict(zip(CI_FIELDS, row, strict=True)))


def _daily(tenant: str, event_type: str, days: range, per_day: int) -> list[Ev]:
    # Two users take turns, so no single user is a champion who went quiet.
    return [
        Ev(tenant, event_type, days_ago(d), user_id=f"{tenant}-u{(d + i) % 2}") for d in days for i in range(per_day)
    ]


def _population(store: Any) -> None:
    events: list[Ev] = []
    # lumen: builds and a deploy every day for 30 days. 1.8/day: 7d 12.6, 30d 54 / 4.3 = 12.5581,
    # delta 1.0033 (steady); deployed today; no friction; 35 events both weeks.
    events += _daily("lumen", "build_started", range(30), 2) + _daily("lumen", "build_passed", range(30), 2)
    events += _daily("lumen", "deploy_shipped", range(30), 1)
    # quiet: builds keep arriving every day, the last deploy was 20 days ago (days 20..29).
    events += _daily("quiet", "build_started", range(30), 3) + _daily("quiet", "build_passed", range(30), 3)
    events += _daily("quiet", "deploy_shipped", range(20, 30), 1)
    events += [Ev("quiet", "pipeline_edited", days_ago(3), user_id="quiet-u0")]
    # gridlock: a build and a deploy every day; yesterday the quota stopped 4 sessions.
    events += _daily("gridlock", "build_passed", range(30), 1) + _daily("gridlock", "deploy_shipped", range(30), 1)
    events += [Ev("gridlock", "quota_blocked", days_ago(1), session_id=f"q{i}") for i in range(4)]
    # nocore: 19 days of builds, never a deploy.
    events += _daily("nocore", "build_started", range(20), 2) + _daily("nocore", "build_passed", range(20), 2)
    store(events)
    for tenant_id, name in [
        ("lumen", "Lumen Labs"),
        ("quiet", "Quiet Corp"),
        ("gridlock", "Gridlock Inc"),
        ("nocore", "Nocore Ltd"),
    ]:
        Tenant.objects.filter(tenant_id=tenant_id).update(name=name)


@pytest.fixture
def ci_product(metrics_db: Any) -> Iterator[None]:
    _ci_registry()
    _population(metrics_db)
    metrics_recompute()
    yield


def _texts(value: Any, key: str = "") -> Iterator[str]:
    """Every string a founder reads in an answer (identifier fields left out)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in IDENTIFIER_KEYS:
                yield from _texts(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v, key)
    elif isinstance(value, str):
        yield value


def _metrics(tenant_id: str) -> TenantMetrics:
    return TenantMetrics.objects.get(tenant_id=tenant_id)


def test_a_healthy_account_of_another_product_is_not_at_risk(ci_product):
    m = _metrics("lumen")
    assert (m.stickiness_7d, m.stickiness_30d, m.stickiness_delta) == (12.6, 12.5581, 1.0033)
    assert m.last_investigation == "deploy_shipped"
    assert m.days_since_investigation == 0
    assert m.risk_signal_strength == 0
    assert m.risk_level is None
    assert m.interventions == []


def test_silent_churn_is_found_from_the_products_core_value(ci_product):
    m = _metrics("quiet")
    assert m.days_since_investigation == 20
    # silent churn 25 + min(25, 3 x (20 - 7)) = 50; 7d 8.4 vs 46 / 4.3 = 10.6977 -> delta 0.7852,
    # decay 45 x (1 - 0.7852) = 9.7; 59.7 -> high
    points = {c["signal"]: c["points"] for c in m.risk_components}
    assert points["silent_churn"] == 50
    assert m.stickiness_delta == 0.7852
    assert points["engagement_decay"] == 9.7
    assert m.risk_signal_strength == 59.7
    assert m.risk_level == "high"
    assert m.primary_risk_reason == (
        "Nobody at Quiet Corp has used Deploy shipped for 20 days, though other activity keeps arriving "
        "(43 events this week)"
    )
    assert m.recent_changes == ["Pipeline edited 3 days ago"]
    assert [i["intervention_type"] for i in m.interventions] == ["feature_help"]
    help_ = m.interventions[0]
    assert help_["context"] == "The last Deploy shipped at Quiet Corp was 20 days ago"
    assert help_["triggering_signals"] == ["No Deploy shipped for 20 days (more than 7)"]


def test_it_ranks_the_silent_churn_first_and_leaves_the_healthy_out(ci_product, read_client):
    body = read_client.get("/ops/customers/at-risk?limit=10").json()
    # nocore is young and never used the core value: never-used 20 + not onboarded 25 = 45, high.
    assert [(c["tenant_id"], c["risk_level"]) for c in body] == [
        ("quiet", "high"),
        ("nocore", "high"),
        ("gridlock", "medium"),
    ]


def test_the_blocked_signal_drives_friction_and_the_technical_intervention(ci_product):
    m = _metrics("gridlock")
    # 4 sessions x 2.5 = 10 (each under the session cap of 5; the day at its cap of 10): 3 x 10 = 30
    assert m.friction_weighted_score == 10.0
    assert m.risk_signal_strength == 30
    assert m.primary_risk_reason == (
        "Gridlock Inc ran into 4 friction events in the last 7 days, mostly Build quota reached (friction score 10.00)"
    )
    technical = next(i for i in m.interventions if i["intervention_type"] == "technical")
    assert technical["triggering_signals"] == ["4 blocked attempts in the last 7 days (Build quota reached; 3 or more)"]
    # The spec's words ("policy config") were written for its own blocked type, not this one.
    assert technical["suggested_action"] == "Review what keeps blocking them (Build quota reached)"


def test_an_account_that_never_used_the_core_value_is_named_in_its_words(ci_product):
    m = _metrics("nocore")
    never = next(c for c in m.risk_components if c["signal"] == "never_investigated")
    assert never["points"] == 20
    assert never["title"] == "Never used Deploy shipped"
    # Young too: the not-onboarded component (25) leads, in the same words.
    assert m.primary_risk_reason == "Nocore Ltd started 19 days ago and has never used Deploy shipped"
    assert m.secondary_signals[0] == (
        "Nocore Ltd uses the product (80 events in 30 days) but has never used Deploy shipped"
    )
    (help_,) = m.interventions
    assert help_["expected_outcome"] == "A first Deploy shipped within 7 days"


def test_no_founder_facing_text_names_a_type_the_product_does_not_have(ci_product, read_client, staff_client):
    answers = [read_client.get("/ops/customers/at-risk?limit=10").json(), read_client.get("/ops/customers").json()]
    answers += [read_client.get(f"/ops/customers/{t}").json() for t in ("lumen", "quiet", "gridlock", "nocore")]
    texts = [t for answer in answers for t in _texts(answer)]
    texts += at_risk_checkin_lines(NOW)
    assert len(texts) > 50
    named = sorted({t for t in texts if SPEC_WORDS.search(t)})
    assert named == []
    for tenant_id in ("quiet", "nocore", "gridlock"):
        html = staff_client.get(f"/customers/{tenant_id}/").content.decode()
        # The engine's sections: where it stands, the charts, the components and the interventions (the
        # founder's forms sit among them; a playbook's id in an option's value is not shown).
        start = html.index('id="summary-title"')
        engine_part = html[start : html.index("</section>", html.index('id="interventions-title"'))]
        shown = re.sub(r'\b(id|class|value|href|action|name|for)="[^"]*"', "", engine_part)
        assert not SPEC_WORDS.search(shown), tenant_id


def test_its_reasons_and_interventions_name_no_raw_field(ci_product, read_client):
    # Issue 17: founder sentences with the numbers kept; the formulas (explanation) may name fields.
    raw = re.compile(
        r"stickiness_delta|risk_signal_strength|friction_weighted_score|days_since_investigation|events_7d"
    )
    at_risk = read_client.get("/ops/customers/at-risk?limit=10").json()
    texts = [t for c in at_risk for t in _texts([c["primary_risk_reason"], c["secondary_signals"], c["interventions"]])]
    texts += at_risk_checkin_lines(NOW)
    assert len(texts) > 10
    assert [t for t in texts if raw.search(t)] == []


def test_a_role_edit_takes_effect_at_the_next_incremental_recompute(ci_product):
    # The founder decides a passed build is value too: quiet used it today, so it is not silent.
    EventType.objects.filter(name="build_passed").update(core_value=True)
    result = metrics_recompute()
    assert (result.mode, result.events_folded) == ("incremental", 0)
    m = _metrics("quiet")
    assert m.days_since_investigation == 0
    assert next(c["points"] for c in m.risk_components if c["signal"] == "silent_churn") == 0


def test_a_weights_version_takes_effect_at_the_next_recompute_and_reverts(ci_product):
    risk_weights_create(weights={"silent_churn": 25}, source="founder", activate=True)
    metrics_recompute()
    silent = next(c for c in _metrics("quiet").risk_components if c["signal"] == "silent_churn")
    assert (silent["points"], silent["max_points"]) == (25, 25)  # 50 scaled to a maximum of 25
    assert _metrics("quiet").risk_signal_strength == 34.7  # 25 + 9.7
    default = RiskWeights.objects.get(version=1)
    risk_weights_activate(version=default.version)
    metrics_recompute()
    assert _metrics("quiet").risk_signal_strength == 59.7
