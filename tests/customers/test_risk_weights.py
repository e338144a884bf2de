"""Risk component weights as founder data: validated in admin, versioned, switched in one click,
and no stored value (however extreme) ever stops a recompute."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from customers.metrics.recompute import metrics_recompute
from customers.metrics.weights import risk_weights_current
from customers.models import RiskWeights, TenantMetrics
from events.models import EventType
from tests.customers.conftest import Ev, days_ago

pytestmark = pytest.mark.django_db(transaction=True)

DEFAULTS = {
    "silent_churn": 50.0,
    "engagement_decay": 45.0,
    "never_investigated": 20.0,
    "friction": 30.0,
    "champion_silent": 20.0,
    "usage_cliff": 15.0,
    "low_usage": 30.0,
    "below_own_level": 20.0,
    "not_onboarded": 25.0,
    "early_days": 10.0,
}


@pytest.fixture
def admin_client(transactional_db: Any) -> Client:
    user = get_user_model().objects.create_superuser("owner", "owner@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def _form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"source": "founder", "note": "tuned"}
    data.update({f"max_{name}": value for name, value in DEFAULTS.items()})
    data.update({f"max_{name}": value for name, value in overrides.items()})
    return data


@pytest.mark.parametrize("bad", ["1e308", "-5", "100.5", "banana", "nan"])
def test_admin_refuses_a_maximum_outside_0_to_100(admin_client, bad):
    before = RiskWeights.objects.count()
    response = admin_client.post("/admin/customers/riskweights/add/", _form(friction=bad))
    assert response.status_code == 200  # the form again, with the error
    assert "max_friction" in response.context_data["adminform"].form.errors
    assert RiskWeights.objects.count() == before


def test_admin_adds_a_version_and_makes_it_active_in_one_click(admin_client):
    response = admin_client.post("/admin/customers/riskweights/add/", _form(silent_churn=25))
    assert response.status_code == 302
    added = RiskWeights.objects.get(version=2)
    assert (added.is_active, added.created_by, added.weights["silent_churn"]) == (False, "owner", 25.0)
    assert risk_weights_current() == DEFAULTS  # not adopted yet
    admin_client.post("/admin/customers/riskweights/", {"action": "make_active", "_selected_action": [added.pk]})
    assert list(RiskWeights.objects.filter(is_active=True).values_list("version", flat=True)) == [2]
    assert risk_weights_current() == {**DEFAULTS, "silent_churn": 25.0}
    # ... and back to the spec's defaults, one click again.
    first = RiskWeights.objects.get(version=1)
    admin_client.post("/admin/customers/riskweights/", {"action": "make_active", "_selected_action": [first.pk]})
    assert risk_weights_current() == DEFAULTS


def _population(store: Any) -> None:
    # One tenant silent for 14 days with friction: silent 25 + min(25, 3 x 7) = 46, friction 3 x 4 = 12.
    events = [Ev("acme", "EXPORT_COMPLETED", days_ago(d)) for d in range(20)]
    events += [Ev("acme", "INCIDENT_VIEWED", days_ago(14))]
    events += [Ev("acme", "REPLAY_ABORTED", days_ago(1), session_id="s1")]
    events += [Ev("acme", "EXPORT_ABORTED", days_ago(1), session_id="s2")]
    store(events)


def _active(weights: Any) -> None:
    RiskWeights.objects.update(is_active=False)
    RiskWeights.objects.create(version=RiskWeights.objects.count() + 1, weights=weights, is_active=True)


def test_the_engine_never_stops_on_an_extreme_or_corrupt_weight(metrics_db):
    _population(metrics_db)
    metrics_recompute()
    base = TenantMetrics.objects.get(tenant_id="acme")
    points = {c["signal"]: c["points"] for c in base.risk_components}
    assert (points["silent_churn"], points["friction"]) == (46, 16.5)  # friction 3 + 2.5 = 5.5 -> 3 x 5.5

    _active({name: 0 for name in DEFAULTS})  # every component switched off
    metrics_recompute()
    off = TenantMetrics.objects.get(tenant_id="acme")
    assert (off.risk_signal_strength, off.risk_level, off.primary_risk_reason) == (0, None, "")
    # The interventions follow their own rules, not the points: the silence still suggests help.
    assert [i["intervention_type"] for i in off.interventions] == ["feature_help"]

    _active({name: 100 for name in DEFAULTS})  # every component at its largest
    metrics_recompute()
    # silent 46 x 100/50 = 92, friction 16.5 x 100/30 = 55, decay... : capped at 100
    assert TenantMetrics.objects.get(tenant_id="acme").risk_signal_strength == 100

    # Written outside admin: nonsense is ignored (logged), each such component keeps its default.
    _active({"silent_churn": "banana", "friction": 1e308, "usage_cliff": -3, "nope": 5})
    metrics_recompute()
    corrupt = TenantMetrics.objects.get(tenant_id="acme")
    assert {c["signal"]: c["points"] for c in corrupt.risk_components} == points
    assert corrupt.risk_signal_strength == base.risk_signal_strength


def test_the_largest_registry_weights_still_recompute(metrics_db):
    _population(metrics_db)
    EventType.objects.filter(name="EXPORT_COMPLETED").update(engagement_weight=100)
    EventType.objects.filter(name="REPLAY_ABORTED").update(friction_weight=100)
    result = metrics_recompute()
    assert not result.skipped
    m = TenantMetrics.objects.get(tenant_id="acme")
    # The session cap holds whatever the weight: 5 for the REPLAY_ABORTED session, 2.5 for the other.
    assert m.friction_weighted_score == 7.5
    assert m.stickiness_7d == 700.0  # 7 exports x 100


def test_admin_shows_a_field_per_component_with_what_1_and_100_mean(admin_client):
    page = admin_client.get("/admin/customers/riskweights/add/").content.decode()
    for name, default in DEFAULTS.items():
        assert f'name="max_{name}" value="{default:g}"' in page
    assert "1 barely moves it, 100 lets this component alone fill the whole signal" in page


def test_admin_saves_what_its_own_form_sends_and_an_empty_field_keeps_the_default(admin_client):
    data = _form(silent_churn=30)
    data["max_usage_cliff"] = ""
    assert admin_client.post("/admin/customers/riskweights/add/", data).status_code == 302
    weights = RiskWeights.objects.get(version=2).weights
    assert weights["silent_churn"] == 30.0 and "usage_cliff" not in weights


def test_admin_refuses_a_word_in_the_services_words(admin_client):
    response = admin_client.post("/admin/customers/riskweights/add/", _form(friction="banana"))
    assert response.context_data["adminform"].form.errors["max_friction"] == ["Maximum points must be a number."]
    response = admin_client.post("/admin/customers/riskweights/add/", _form(friction="100.5"))
    assert response.context_data["adminform"].form.errors["max_friction"] == [
        "Maximum points must lie in 0-100 (got 100.5)."
    ]
