"""The call list predicts: on stochastic bases with mechanisms the heuristic was not designed around
(tests/validation/simulation.py), the heuristic is no longer blind to quiet churn, the score that
orders the list is judged and chosen walk-forward, and once adopted the live lists follow the model."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client

from customers.metrics.recompute import metrics_recompute
from customers.models import ChurnModel, TenantMetrics
from tests.customers.conftest import NOW
from tests.validation.simulation import decay_base, quiet_base, sim_store
from validation.models import BacktestRun, BacktestScore
from validation.services import backtest_run_execute, backtest_run_prepare

TODAY = NOW.date()
# Every test here stores a base and runs a backtest; the marker also re-seeds the registry after earlier
# transactional tests flushed it (tests/conftest.py), so each base is scored with the default vocabulary.
pytestmark = pytest.mark.django_db(transaction=True)


def _backtest(accounts: list[Any], *, seed: int) -> BacktestRun:
    with time_machine.travel(NOW, tick=False):
        sim_store(accounts, seed=seed, today=TODAY)
        return backtest_run_execute(backtest_run_prepare(days=182, step=7, horizons=[30]))


@pytest.fixture
def quiet_run(settings: Any) -> BacktestRun:
    settings.METRICS_POST_RECOMPUTE_HOOKS = []
    settings.RISK_RANKING = "learned"
    return _backtest(quiet_base(300, seed=1, today=TODAY), seed=1)


def test_on_quiet_churn_the_heuristic_sees_and_the_list_ranks_churners_high(quiet_run):
    report = quiet_run.report
    horizon = report["horizons"][0]
    # Before this engine's quiet-churn components the heuristic scored about 0.52 here (a coin toss).
    assert horizon["heuristic"]["auc"] >= 0.62
    low = next(c for c in report["components"] if c["signal"] == "low_usage")
    assert low["auc"] > 0.6  # the low-use component carries the signal by itself
    ranking = report["ranking"]
    assert ranking["auc"] >= 0.68 and ranking["top_decile_lift"] >= 3.0
    assert ranking["auc"] >= horizon["heuristic"]["auc"]  # the model took over where it was better
    assert ranking["as_of_dates_ordered_by_model"] > 0
    low_ci, high_ci = ranking["auc_interval"]
    assert low_ci < ranking["auc"] < high_ci
    # The same scores dealt at random within each date flag churners later (or never).
    assert ranking["lead_days"]["median"] >= ranking["lead_days_by_chance"]["median"]
    # Where the heuristic is near-blind, the list ordered by the model learned out of sample does clearly
    # better, and the model's probabilities (pooled over dates, each calibrated on its own past) are no worse.
    assert ranking["auc"] >= horizon["heuristic"]["auc"] + 0.03
    learned = horizon["learned"]
    assert learned["auc"] >= learned["heuristic_on_same_dates"]["auc"]
    # The training dates before the window let a model order the list from the window's first weeks on.
    assert ranking["as_of_dates_ordered_by_model"] >= 0.8 * ranking["as_of_dates_total"]


@pytest.mark.django_db(transaction=True)
def test_on_decay_and_friction_spells_the_list_ordered_by_the_model_beats_the_heuristic(settings):
    settings.METRICS_POST_RECOMPUTE_HOOKS = []
    run = _backtest(decay_base(300, seed=2, today=TODAY), seed=2)
    horizon = run.report["horizons"][0]
    assert horizon["heuristic"]["auc"] >= 0.65
    # Friction that grows with activity no longer points at the busiest, healthiest accounts.
    friction = next(c for c in run.report["components"] if c["signal"] == "friction")
    assert friction["auc"] >= 0.5
    decay = next(c for c in run.report["components"] if c["signal"] == "engagement_decay")
    assert decay["auc"] > 0.55
    # The model learned walk-forward sees a decline and a friction spell together better than the heuristic's
    # fixed points: the list it orders beats the heuristic's, a quarter of the churns being random.
    ranking = run.report["ranking"]
    assert ranking["auc"] >= 0.72 and ranking["top_decile_lift"] >= 2.5
    assert ranking["auc"] >= horizon["heuristic"]["auc"] + 0.03
    assert ranking["as_of_dates_ordered_by_model"] >= ranking["as_of_dates_total"] // 2
    assert horizon["learned"]["auc"] >= horizon["learned"]["heuristic_on_same_dates"]["auc"] + 0.03


def _probability(definition: dict[str, Any], features: dict[str, float]) -> float:
    """The model by hand: the intercept plus each coefficient times the standardised feature, calibrated."""
    z = definition["intercept"] + sum(
        c * (features.get(n, 0.0) - m) / s
        for n, m, s, c in zip(
            definition["features"], definition["mean"], definition["scale"], definition["coef"], strict=True
        )
    )
    calibration = definition.get("calibration")
    if calibration:
        z = calibration["slope"] * z + calibration["intercept"]
    return 1 / (1 + math.exp(-z))


def _staff_client() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_user("founder", is_staff=True))
    return client


def test_an_adopted_model_orders_every_list_with_the_features_the_backtest_measured(quiet_run):
    client = _staff_client()
    with time_machine.travel(NOW, tick=False):
        assert client.post("/validation/model/adopt").status_code == 302
        adopted = ChurnModel.objects.get(is_active=True)
        assert adopted.created_by == "founder" and adopted.backtest_run_id == quiet_run.pk
        metrics_recompute(full=True)
        definition = quiet_run.report["model_definition"]
        stored = {r.tenant_id: r.features for r in BacktestScore.objects.filter(run=quiet_run, as_of=quiet_run.end_day)}
        live = {m.tenant_id: m for m in TenantMetrics.objects.filter(tenant__churned_at__isnull=True)}
        alive = [t for t in live if t in stored]
        assert len(alive) > 100
        for tenant_id in alive:
            # The live engine measured today's features exactly as the backtest measured them on its last date.
            assert live[tenant_id].churn_probability_30d == pytest.approx(
                _probability(definition, stored[tenant_id]), abs=1e-6
            )
            assert live[tenant_id].ranking_model == f"learned-{adopted.version}"
        body = client.get("/ops/customers/at-risk?limit=100").json()
        assert body and all(r["ranking_model"] == f"learned-{adopted.version}" for r in body)
        rank = {"critical": 3, "high": 2, "medium": 1}
        expected = sorted(body, key=lambda r: (-rank[r["risk_level"]], -r["churn_probability_30d"], r["tenant_id"]))
        assert [r["tenant_id"] for r in body] == [r["tenant_id"] for r in expected]
        top = body[0]
        assert top["churn_drivers"] and all(d["words"] for d in top["churn_drivers"])
        page = client.get(f"/customers/{top['tenant_id']}/").content.decode()
        assert "chance of churn within 30 days: " in page.lower()
        today = client.get("/").content.decode()
        assert f'data-testid="churn-chance-{top["tenant_id"]}"' in today
        rows = list(csv.DictReader(io.StringIO(client.get("/customers/at-risk.csv").content.decode())))
        assert [r["tenant_id"] for r in rows[: len(body)]] == [r["tenant_id"] for r in body]
        assert float(rows[0]["churn_probability_30d"]) == pytest.approx(top["churn_probability_30d"])
        assert rows[0]["ranking_model"] == f"learned-{adopted.version}" and rows[0]["churn_drivers"]

        # One click back to the heuristic: the next recompute orders by the risk signal again.
        assert client.post("/validation/model/stop").status_code == 302
        stopped = ChurnModel.objects.get(version=adopted.version)
        assert not stopped.is_active and stopped.deactivated_by == "founder"
        metrics_recompute()
        rows = TenantMetrics.objects.all()
        assert all(m.ranking_model == "spec" and m.churn_probability_30d is None for m in rows)
        assert all(m.ranking_score == m.risk_signal_strength for m in rows)


@pytest.mark.django_db(transaction=True)
def test_with_ranking_auto_a_backtest_adopts_the_model_only_when_it_won(settings):
    settings.METRICS_POST_RECOMPUTE_HOOKS = []
    settings.RISK_RANKING = "auto"
    run = _backtest(quiet_base(300, seed=1, today=TODAY), seed=1)
    assert run.report["ranking_choice"] == "learned"
    active = ChurnModel.objects.get(is_active=True)
    assert active.created_by.startswith("auto") and active.backtest_run_id == run.pk


@pytest.mark.django_db(transaction=True)
def test_with_ranking_spec_nothing_is_adopted_and_the_page_says_why(settings):
    settings.METRICS_POST_RECOMPUTE_HOOKS = []
    settings.RISK_RANKING = "spec"
    _backtest(quiet_base(120, seed=3, today=TODAY), seed=3)
    assert not ChurnModel.objects.exists()
    page = _staff_client().get("/validation/").content.decode()
    assert "the heuristic always orders the list" in page
    assert 'data-testid="adopt-model"' not in page
