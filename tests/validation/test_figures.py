"""The figures as pure functions, against examples worked out by hand."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from validation.figures import (
    Scored,
    auc,
    auc_difference_interval,
    lead_days,
    matching_threshold,
    quartiles,
    ranking_figures,
)
from validation.model_words import coefficient_words

D = date(2026, 1, 1)


def test_auc_counts_each_pair_and_ties_as_half():
    # Positives 0.9 and 0.4; negatives 0.4 and 0.1: pairs (0.9>0.4, 0.9>0.1, 0.4=0.4, 0.4>0.1) = 3.5 of 4.
    assert auc([0.9, 0.4, 0.4, 0.1], [True, True, False, False]) == pytest.approx(0.875)
    assert auc([1, 2], [True, True]) is None


def test_the_lead_of_one_score_over_another_is_an_interval_over_resampled_customers():
    truth = np.array([True, True, False, False, False, False])
    customers = np.array(["a", "a", "b", "c", "c", "d"])
    perfect = np.array([0.9, 0.8, 0.3, 0.2, 0.1, 0.4])  # every churner above every other: AUC 1
    backwards = -perfect  # every churner below: AUC 0
    low, high = auc_difference_interval(perfect, backwards, truth, customers, rounds=50, low=5, seed=1)
    # Whichever customers a resample draws (with both kinds), the lead is 1 - 0 = 1.
    assert low == pytest.approx(1.0) and high == pytest.approx(1.0)
    # A score against itself leads by nothing in every resample.
    assert auc_difference_interval(perfect, perfect, truth, customers, rounds=20, low=5, seed=1) == (0.0, 0.0)
    # Without non-churners there is no AUC, so no interval.
    assert auc_difference_interval(perfect, backwards, np.ones(6, bool), customers, rounds=5, low=5, seed=1) is None


def test_quartiles_use_the_inclusive_method():
    assert quartiles([3, 7, 14, 21]) == {"median": 10.5, "p25": 6.0, "p75": 15.75}
    assert quartiles([]) == {"median": None, "p25": None, "p75": None}


def test_lead_time_is_from_the_first_flag_in_the_horizon_before_the_churn():
    scored = [Scored(D + timedelta(days=7 * k), "a", s) for k, s in enumerate([0, 25, 10, 30])]
    churns = {"a": [D + timedelta(days=25)], "b": [D + timedelta(days=10)]}
    scored.append(Scored(D + timedelta(days=7), "b", 5))
    leads, blind = lead_days(scored, churns, horizon=30, threshold=20)
    assert leads == [18]  # first flagged on D+7, churned on D+25
    assert blind == [("b", D + timedelta(days=10))]


def test_ranking_figures_on_a_small_case_worked_by_hand():
    # One date, 12 customers alive; c0 and c1 churn within 30 days. Scores: c0 50, c1 10, others 0..9.
    scored = [Scored(D, "c0", 50.0), Scored(D, "c1", 10.0)] + [Scored(D, f"n{i:02d}", float(i)) for i in range(10)]
    churns = {"c0": [D + timedelta(days=5)], "c1": [D + timedelta(days=29)], "n09": [D + timedelta(days=40)]}
    f = ranking_figures(scored, churns, horizon=30, threshold=20, observed_through=D + timedelta(days=60))
    # c0 beats all 10 negatives; c1 (10) beats all 10 (max negative 9): AUC 1.
    assert f["auc"] == 1.0
    # Top decile: ceil(1.2) = 2 customers (c0, c1), both churned: rate 1 over base 2/12 = 6.
    assert f["top_decile_lift"] == pytest.approx(6.0)
    assert (f["precision_at_threshold"], f["recall_at_threshold"]) == (1.0, 0.5)
    assert f["precision_at_10"] == pytest.approx(0.2)
    assert f["lead_days"]["median"] == 5.0
    # Not yet observable: the 30-day window after D must have closed.
    early = ranking_figures(scored, churns, horizon=30, threshold=20, observed_through=D + timedelta(days=29))
    assert early["observations"] == 0 and early["auc"] is None


def test_matching_threshold_flags_as_many_as_asked():
    scores = [0.9, 0.1, 0.5, 0.7]
    assert matching_threshold(scores, flags=2) == 0.7
    assert matching_threshold(scores, flags=9) == 0.1
    assert matching_threshold(scores, flags=0) == float("inf")


def test_a_coefficient_is_put_in_words_with_its_uncertainty_even_when_it_is_extreme():
    words = coefficient_words(name="friction_per_100", coefficient=0.048, std_error=0.05, horizon=30, churns=12)
    # exp(0.048 x 5) = 1.27; the 95% range exp((0.048 -/+ 1.96 x 0.05) x 5) = 0.78 .. 2.08 includes 1.
    assert words == (
        "other things equal, each extra 5 friction events per 100 raises the odds of churn within 30 days 1.27x "
        "(95% range 0.78-2.08x), uncertain with 12 churns"
    )
    huge = coefficient_words(name="friction_points", coefficient=90.0, std_error=200.0, horizon=30, churns=3)
    # Past the display cap the words say so; the cap itself is never shown as if it were the value.
    assert "raises the odds of churn within 30 days more than 1,000,000x" in huge
    assert "1000000" not in huge and "uncertain with 3 churns" in huge
    assert "never varied" in coefficient_words(
        name="log_tenure_days", coefficient=0.0, std_error=None, horizon=30, churns=12
    )


def test_the_page_shows_a_missing_lift_as_a_bare_dash_never_with_its_unit():
    from pathlib import Path

    from validation.views import _figures_display

    figures = {
        "auc": None,
        "top_decile_lift": None,
        "precision_at_threshold": None,
        "recall_at_threshold": None,
        "precision_at_10": None,
        "lead_days": {"median": None, "p25": None, "p75": None},
        "observations": 0,
    }
    assert _figures_display(figures)["lift"] == "—"
    assert _figures_display({**figures, "top_decile_lift": 2.46})["lift"] == "2.5x"
    template = (Path(__file__).resolve().parents[2] / "templates" / "validation" / "backtest.html").read_text()
    assert "}}x" not in template.replace(" ", "")  # the unit comes with the number, or not at all
