"""The call list predicts: on stochastic bases (tests/validation/simulation.py) the score that orders
the list beats the heuristic where the heuristic is blind, and the heuristic is no longer blind."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import time_machine

from tests.customers.conftest import NOW
from tests.validation.simulation import decay_base, quiet_base, sim_store
from validation.services import backtest_run_execute, backtest_run_prepare

TODAY = NOW.date()


def _run(accounts: list[Any], *, seed: int) -> dict[str, Any]:
    with time_machine.travel(NOW, tick=False):
        events = sim_store(accounts, seed=seed, today=TODAY)
        run = backtest_run_execute(backtest_run_prepare(days=182, step=7, horizons=[30]))
    report = run.report
    h = report["horizons"][0]
    pick = ("auc", "auc_interval", "top_decile_lift")
    print(json.dumps({
        "events": events, "accounts": len(accounts), "churns": sum(1 for a in accounts if a.churn_day),
        "heuristic": {k: h["heuristic"].get(k) for k in pick},
        "learned": {k: (h["learned"] or {}).get(k) for k in (*pick, "verdict")},
        "learned_same_dates_heuristic": (h["learned"] or {}).get("heuristic_on_same_dates", {}).get("auc"),
        "ranking": {k: report["ranking"].get(k) for k in (*pick, "as_of_dates_ordered_by_model", "lead_days", "lead_days_by_chance")},
        "components": {c["signal"]: round(c["auc"] or 0, 3) for c in report["components"]},
        "selection": (report["model"] or {}).get("selection"),
    }, default=str))
    return report


@pytest.mark.django_db(transaction=True)
def test_dev_quiet(settings):
    settings.METRICS_POST_RECOMPUTE_HOOKS = []
    _run(quiet_base(300, seed=1, today=TODAY), seed=1)


@pytest.mark.django_db(transaction=True)
def test_dev_decay(settings):
    settings.METRICS_POST_RECOMPUTE_HOOKS = []
    _run(decay_base(300, seed=2, today=TODAY), seed=2)
