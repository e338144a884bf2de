"""GET /ops/validation/backtest, /ops/validation/backtest/scores and the Validation page."""

from __future__ import annotations

from datetime import date

import pytest
from django.test import Client

from playbooks.models import ChurnRecord
from validation.figures import Scored, auc, labelled


def test_before_any_backtest_the_answer_is_empty_and_says_how_to_run_one(read_client):
    body = read_client.get("/ops/validation/backtest").json()
    assert body["as_of_dates"] == [] and body["horizons"] == [] and body["model"] is None
    assert body["weights_in_force"] == "spec" and "backtest_risk" in body["warning"]


def test_the_report_has_the_issue_shape_and_every_figure_recomputes_from_the_scores(read_client, run):
    body = read_client.get("/ops/validation/backtest").json()
    # Two of the ten churns fall before the 126-day window: eight are used.
    assert body["churns_used"] == 8 and body["weights_in_force"] == "spec"
    assert [h["days"] for h in body["horizons"]] == [30, 60]
    for h in body["horizons"]:
        assert set(h["heuristic"]) >= {
            "auc",
            "top_decile_lift",
            "precision_at_threshold",
            "recall_at_threshold",
            "precision_at_10",
            "lead_days",
        }
        assert set(h["heuristic"]["lead_days"]) == {"median", "p25", "p75"}
    assert body["horizons"][0]["learned"] is not None
    assert {f["name"] for f in body["model"]["features"]} >= {
        "log_days_since_core_value",
        "log_events_28d",
        "log_users_28d",
        "peer_level",
    }
    assert all("churn" in f["in_words"] for f in body["model"]["features"])
    assert {c["signal"] for c in body["components"]} >= {"silent_churn", "engagement_decay", "friction"}

    # Anyone can recompute the AUC from the scores endpoint and the recorded churns.
    churns: dict[str, list] = {}
    for t, d in ChurnRecord.objects.values_list("tenant_id", "date"):
        churns.setdefault(t, []).append(d)
    scored = []
    for as_of in body["as_of_dates"]:
        rows = read_client.get("/ops/validation/backtest/scores", {"as_of": as_of}).json()
        scored += [Scored(date.fromisoformat(as_of), r["tenant_id"], r["risk_signal_strength"]) for r in rows]
    pairs = labelled(scored, churns, horizon=30, observed_through=run.end_day)
    assert body["horizons"][0]["heuristic"]["auc"] == pytest.approx(
        auc([s.score for s, _ in pairs], [y for _, y in pairs])
    )


def test_scores_of_a_date_list_every_customer_with_the_learned_score_of_the_asked_horizon(read_client, run):
    last = run.report["as_of_dates"][-1]
    rows = read_client.get("/ops/validation/backtest/scores", {"as_of": last}).json()
    assert rows and set(rows[0]) == {
        "tenant_id",
        "risk_signal_strength",
        "learned_score",
        "ranking_score",
        "ranking_model",
        "churn_probability",
    }
    assert all(0 <= r["ranking_score"] <= 1 and r["ranking_model"] in ("spec", "learned") for r in rows)
    assert any(r["learned_score"] is not None for r in rows)
    sixty = read_client.get("/ops/validation/backtest/scores", {"as_of": last, "horizon": 60}).json()
    assert [r["tenant_id"] for r in sixty] == [r["tenant_id"] for r in rows]
    assert read_client.get("/ops/validation/backtest/scores", {"as_of": "2001-01-01"}).json() == []


@pytest.mark.parametrize(
    "params", [{}, {"as_of": "yesterday"}, {"as_of": "2026-02-30"}, {"as_of": "2026-03-01", "horizon": "0"}]
)
def test_a_bad_as_of_is_a_400_naming_the_parameter(read_client, params):
    response = read_client.get("/ops/validation/backtest/scores", params)
    assert response.status_code == 400
    assert set(response.json()) <= {"as_of", "horizon"}


def test_an_ingest_key_and_anonymous_callers_are_refused(ingest_client, client: Client, db):
    assert ingest_client.get("/ops/validation/backtest").status_code == 403
    assert client.get("/ops/validation/backtest").status_code == 401


def test_the_validation_page_shows_each_horizon_the_model_in_words_and_the_blind_spots(staff_client, run):
    page = staff_client.get("/validation/").content.decode()
    assert 'data-testid="horizon-30"' in page and 'data-testid="horizon-60"' in page
    assert 'data-testid="learned-30"' in page
    assert "other things equal, each extra" in page
    assert "low_steady-05" in page  # a churn the heuristic never flagged, with its last 30 days
    assert 'data-testid="too-few-churns"' not in page
    assert 'href="/validation/"' in staff_client.get("/playbooks/").content.decode()


def test_the_page_warns_until_enough_churns_are_recorded(staff_client, db):
    page = staff_client.get("/validation/").content.decode()
    assert 'data-testid="too-few-churns"' in page
    assert staff_client.get("/validation/").status_code == 200


def test_the_page_is_for_staff_only(client: Client, db):
    assert client.get("/validation/").status_code == 302
