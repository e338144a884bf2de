"""Adopting the learned weights into the engine, and going back to the spec's, from the Validation page."""

from __future__ import annotations

from typing import Any

import pytest

from customers.metrics.weights import risk_weights_current
from customers.models import RiskWeights, RiskWeightsSource
from validation.engine import weights_in_force
from validation.models import BacktestRun


def test_without_a_learned_model_adoption_is_refused_and_nothing_changes(staff_client, db):
    before = list(RiskWeights.objects.values_list("version", "is_active"))
    page = staff_client.post("/validation/weights/adopt", follow=True).content.decode()
    assert "No learned weights yet" in page
    assert list(RiskWeights.objects.values_list("version", "is_active")) == before
    assert weights_in_force() == "spec"


@pytest.mark.django_db(transaction=True)
def test_the_founder_adopts_the_learned_weights_and_goes_back_in_one_click(staff_client, staff_user, run: Any):
    learned = run.report["learned_component_weights"]
    assert learned, "the simulated base has enough churns for a model"
    page = staff_client.post("/validation/weights/adopt", follow=True).content.decode()
    assert "Learned weights adopted as version" in page

    adopted = RiskWeights.objects.get(is_active=True)
    assert adopted.source == RiskWeightsSource.LEARNED and adopted.created_by == staff_user.username
    assert adopted.weights == {signal: row["max_points"] for signal, row in learned.items()}
    # The engine reads them at its next run, and the report says which weights are in force.
    assert risk_weights_current() == adopted.weights
    assert weights_in_force() == f"learned-{adopted.version}"
    assert staff_client.get("/ops/validation/backtest").json()["weights_in_force"] == f"learned-{adopted.version}"

    staff_client.post("/validation/weights/spec", follow=True)
    active = RiskWeights.objects.get(is_active=True)
    assert active.source == RiskWeightsSource.DEFAULT and weights_in_force() == "spec"
    assert RiskWeights.objects.filter(version=adopted.version).exists()  # kept in admin's history


def test_the_adoption_urls_take_no_get_and_no_anonymous(client, staff_client, db):
    assert staff_client.get("/validation/weights/adopt").status_code == 405
    assert client.post("/validation/weights/adopt").status_code in (302, 401, 403)
    assert BacktestRun.objects.count() == 0
