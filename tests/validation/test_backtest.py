"""The walk-forward backtest on a simulated customer base (tests/validation/conftest.py)."""

from __future__ import annotations

import itertools
import math
import statistics
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from customers.metrics.recompute import metrics_recompute
from customers.models import TenantMetrics
from playbooks.models import ChurnRecord
from tests.customers.conftest import NOW, events_store
from tests.validation.conftest import TODAY, sim_base, sim_events, sim_store
from validation import services
from validation.engine import risk_components
from validation.models import BacktestRun, BacktestScore, BacktestStatus
from validation.selectors import learned_weights_latest
from validation.services import backtest_run_execute, backtest_run_prepare
from validation.tasks import backtest_risk_task
from validation.walkforward import WalkForward

MIXED = {"low_steady": 6, "decay": 6, "friction": 6}


@pytest.fixture
def now() -> Any:
    with time_machine.travel(NOW, tick=False):
        yield NOW


def _backtest(days: int = 180, step: int = 7, horizons: list[int] | None = None) -> BacktestRun:
    return backtest_run_execute(backtest_run_prepare(days=days, step=step, horizons=horizons or [30, 60]))


def _scores(run: BacktestRun) -> dict[tuple[Any, str], dict[str, Any]]:
    return {
        (r["as_of"], r["tenant_id"]): r
        for r in BacktestScore.objects.filter(run=run).values(
            "as_of",
            "tenant_id",
            "risk_signal_strength",
            "components",
            "features",
            "learned_scores",
            "ranking_scores",
            "ranking_models",
        )
    }


@pytest.mark.django_db(transaction=True)
def test_a_date_is_scored_exactly_as_the_live_engine_scored_it_that_day(settings):
    """The live engine run on day D (only D's past exists) and the backtest's D, later, agree."""
    settings.METRICS_POST_RECOMPUTE_HOOKS = []
    customers = sim_base(MIXED, healthy=4)
    day = TODAY - timedelta(days=42)  # one of the backtest's weekly dates
    with time_machine.travel(NOW - timedelta(days=42), tick=False):
        sim_store(customers, end=day)
        metrics_recompute(full=True)
    live = {
        m.tenant_id: (m.risk_signal_strength, {c["signal"]: c["points"] for c in m.risk_components})
        for m in TenantMetrics.objects.all()
    }
    assert any(strength > 0 for strength, _ in live.values())  # the comparison is not all zeros
    events_store(sim_events(customers, start=day + timedelta(days=1)))
    with time_machine.travel(NOW, tick=False):
        run = _backtest(days=63)
    scored = {t: (r["risk_signal_strength"], r["components"]) for (d, t), r in _scores(run).items() if d == day}
    assert scored == live


def _stores_by_thread(monkeypatch: Any) -> list[str]:
    """The name of the thread each date's scores are stored from, as they are stored."""
    threads: list[str] = []
    store = services._scores_store

    def recorded(*args: Any, **kwargs: Any) -> int:
        threads.append(threading.current_thread().name)
        return store(*args, **kwargs)

    monkeypatch.setattr(services, "_scores_store", recorded)
    return threads


def _refits_by_thread(monkeypatch: Any) -> list[str]:
    """The name of the thread the walk is advanced (refitted) for each date from, as it is."""
    threads: list[str] = []
    advance = WalkForward.advance

    def recorded(walk: WalkForward, day: Any) -> None:
        threads.append(threading.current_thread().name)
        advance(walk, day)

    monkeypatch.setattr(WalkForward, "advance", recorded)
    return threads


@pytest.mark.django_db(transaction=True)
def test_a_run_stores_and_refits_from_a_thread_of_its_own_exactly_as_in_its_own_connection(now, settings, monkeypatch):
    settings.MIN_CHURNS_FOR_TRUST = 3
    sim_store(sim_base(MIXED, healthy=4))
    threads = _stores_by_thread(monkeypatch)
    refits = _refits_by_thread(monkeypatch)
    threaded = _backtest(days=56)
    assert len(threads) == 9 and all(name.startswith("backtest-store") for name in threads)
    # Every date, the 12 training dates before the window included, is refitted for beside the fold.
    assert len(refits) == 21 and all(name.startswith("backtest-store") for name in refits)
    threads.clear()
    refits.clear()
    # Inside a transaction no other connection sees the run: each date is stored in the run's own connection.
    with transaction.atomic():
        inline = _backtest(days=56)
    assert threads == [threading.current_thread().name] * 9
    assert refits == [threading.current_thread().name] * 21
    stored = _scores(threaded)
    assert any(v["learned_scores"] for v in stored.values())  # the learned scores are compared too
    assert stored == _scores(inline)
    assert {**threaded.report, "run_id": 0} == {**inline.report, "run_id": 0}


@pytest.mark.django_db(transaction=True)
def test_a_date_that_fails_to_be_stored_from_the_thread_fails_the_run_with_the_dates_before_it_kept(now, monkeypatch):
    sim_store(sim_base(MIXED, healthy=3))
    run = backtest_run_prepare(days=56, step=7, horizons=[30])
    store = services._scores_store

    def third_fails(run: BacktestRun, as_of: Any, *args: Any, **kwargs: Any) -> int:
        if len(run.dates_done) == 2:
            raise RuntimeError("connection lost")
        return store(run, as_of, *args, **kwargs)

    monkeypatch.setattr(services, "_scores_store", third_fails)
    with pytest.raises(RuntimeError, match="connection lost"):
        backtest_run_execute(run)
    run.refresh_from_db()
    assert (run.status, len(run.dates_done), run.error) == (BacktestStatus.FAILED, 2, "connection lost")
    assert BacktestScore.objects.filter(run=run).values("as_of").distinct().count() == 2
    # The store's thread closed its connection: only this test's own is open on the database.
    assert _client_connections() == 1


def _client_connections() -> int:
    """The client connections open on the test database (Citus's maintenance daemon and its connections between
    nodes are not clients), once those closed have left: a server process ends a moment after its client closed,
    and stays in pg_stat_activity until it has (seen once in a full Citus run), so the count is read again until
    one is left, for five seconds at most: a connection left open still fails the test."""
    for _ in range(100):  # 5 s at most, counted in sleeps: the test's clock may be frozen
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND backend_type = 'client backend' AND application_name NOT LIKE 'citus\\_internal%'"
            )
            count = cursor.fetchone()[0]
        if count <= 1:
            break
        time.sleep(0.05)
    return count


@pytest.mark.django_db(transaction=True)
def test_a_refit_that_fails_in_the_thread_fails_the_run_with_the_dates_before_it_kept(now, settings, monkeypatch):
    settings.MIN_CHURNS_FOR_TRUST = 3
    sim_store(sim_base(MIXED, healthy=3))
    run = backtest_run_prepare(days=56, step=7, horizons=[30])
    advance = WalkForward.advance
    third = run.start_day + timedelta(days=14)

    def third_fails(walk: WalkForward, day: Any) -> None:
        if day == third:
            raise RuntimeError("fit diverged")
        advance(walk, day)

    monkeypatch.setattr(WalkForward, "advance", third_fails)
    with pytest.raises(RuntimeError, match="fit diverged"):
        backtest_run_execute(run)
    run.refresh_from_db()
    # The third date's refit runs after the second date is stored, in the same job.
    assert (run.status, run.dates_done, run.error) == (
        BacktestStatus.FAILED, [run.start_day.isoformat(), (run.start_day + timedelta(days=7)).isoformat()],
        "fit diverged",
    )  # fmt: skip
    assert BacktestScore.objects.filter(run=run).values("as_of").distinct().count() == 2
    assert _client_connections() == 1


@pytest.mark.django_db
def test_no_score_on_a_date_changes_when_later_events_and_churns_are_added(now, settings):
    settings.MIN_CHURNS_FOR_TRUST = 3
    customers = sim_base(MIXED, healthy=6)
    cut = TODAY - timedelta(days=56)
    sim_store(customers, end=cut)
    before = _scores(_backtest())
    assert ChurnRecord.objects.count() < len([c for c in customers if c.churn_day])
    events_store(sim_events(customers, start=cut + timedelta(days=1)))
    ChurnRecord.objects.bulk_create(
        ChurnRecord(tenant_id=c.tenant_id, date=c.churn_day, reason=c.mechanism)
        for c in customers
        if c.churn_day and c.churn_day > cut
    )
    after = _scores(_backtest())
    early = {k: v for k, v in before.items() if k[0] <= cut}
    assert early and any(v["learned_scores"] for v in early.values())  # learned scores are compared too
    assert {k: after[k] for k in early} == early
    assert any(v["risk_signal_strength"] != before.get(k, {}).get("risk_signal_strength") for k, v in after.items())


def _hand_figures(run: BacktestRun, horizon: int) -> dict[str, Any]:
    """AUC by counting pairs, lift and precision by sorting each date: no code of validation/figures.py."""
    churns: dict[str, list] = {}
    for t, d in ChurnRecord.objects.values_list("tenant_id", "date"):
        churns.setdefault(t, []).append(d)
    rows = []
    for (d, t), r in _scores(run).items():
        if d + timedelta(days=horizon) > run.end_day or any(c <= d for c in churns.get(t, [])):
            continue
        rows.append(
            (d, t, r["risk_signal_strength"], any(d < c <= d + timedelta(days=horizon) for c in churns.get(t, [])))
        )
    pos = [r for r in rows if r[3]]
    neg = [r for r in rows if not r[3]]
    wins = sum(1.0 if p[2] > n[2] else 0.5 if p[2] == n[2] else 0.0 for p, n in itertools.product(pos, neg))
    top = ten = []
    top, ten = [], []
    for d in {r[0] for r in rows}:
        day = sorted((r for r in rows if r[0] == d), key=lambda r: (-r[2], r[1]))
        top += day[: max(1, math.ceil(len(day) / 10))]
        ten += day[:10]
    flagged = [r for r in rows if r[2] >= 20]
    leads = []
    for t, days in churns.items():
        for c in days:
            window = sorted(
                d
                for (d, tt), r in _scores(run).items()
                if tt == t and c - timedelta(days=horizon) <= d < c and r["risk_signal_strength"] >= 20
            )
            leads += [(c - window[0]).days] if window else []
    return {
        "auc": wins / (len(pos) * len(neg)),
        "top_decile_lift": (sum(r[3] for r in top) / len(top)) / (len(pos) / len(rows)),
        "precision_at_threshold": sum(r[3] for r in flagged) / len(flagged),
        "recall_at_threshold": sum(r[3] for r in flagged) / len(pos),
        "precision_at_10": sum(r[3] for r in ten) / len(ten),
        "lead_median": statistics.median(leads),
    }


@pytest.mark.django_db
def test_the_reported_figures_equal_a_direct_computation_from_the_stored_scores(now):
    sim_store(sim_base(MIXED, healthy=6))
    run = _backtest()
    for horizon in run.report["horizons"]:
        hand = _hand_figures(run, horizon["days"])
        got = horizon["heuristic"]
        for key in ("auc", "top_decile_lift", "precision_at_threshold", "recall_at_threshold", "precision_at_10"):
            assert got[key] == pytest.approx(hand[key]), key
        assert got["lead_days"]["median"] == hand["lead_median"]
    # The mechanisms the heuristic sees are flagged; the blind one is listed as its blind spots.
    blind = {b["tenant_id"].split("-")[0] for b in run.report["blind_spots"]}
    assert blind == {"low_steady"}


def _learned_at_30_days(settings: Any, *, churners: dict[str, int]) -> tuple[BacktestRun, dict[str, Any]]:
    """A 30-day backtest of ``churners`` among ten healthy accounts, trusted from four churns: the run
    and what its learned model reports."""
    settings.MIN_CHURNS_FOR_TRUST = 4
    sim_store(sim_base(churners, healthy=10))
    run = _backtest(horizons=[30])
    return run, run.report["horizons"][0]["learned"]


@pytest.mark.django_db
def test_the_learned_model_beats_the_heuristic_where_the_heuristic_is_blind(now, settings):
    run, learned = _learned_at_30_days(settings, churners={"low_steady": 12})
    assert learned is not None and learned["verdict"] == "better"
    # Every low account looks the same to the heuristic (its low-use points are equal among them): nearly blind.
    assert learned["heuristic_on_same_dates"]["auc"] < 0.6
    assert learned["auc"] > 0.75
    assert run.report["model"]["trained_on_churns"] >= 4
    # The weights in the engine's terms, for the engine's weights record to adopt.
    weights = learned_weights_latest()
    spec = risk_components()
    assert set(weights) == set(spec)
    assert all(0 <= w["max_points"] <= 100 and w["spec_max_points"] == spec[s] for s, w in weights.items())


@pytest.mark.django_db
def test_the_learned_model_is_reported_as_no_better_where_the_heuristic_already_sees(now, settings):
    run, learned = _learned_at_30_days(settings, churners={"friction": 12})
    assert learned["heuristic_on_same_dates"]["auc"] > 0.9
    assert learned["verdict"] == "no better"
    friction = next(c for c in run.report["components"] if c["signal"] == "friction")
    assert friction["auc"] > 0.9


@pytest.mark.django_db
def test_with_too_few_churns_nothing_is_learned_and_the_report_warns(now):
    sim_store(sim_base({"decay": 3}, healthy=4))
    run = _backtest(horizons=[30])
    assert "too few" in run.report["warning"]
    assert run.report["model"] is None and run.report["horizons"][0]["learned"] is None
    assert not BacktestScore.objects.filter(run=run, learned_score__isnull=False).exists()


def _live_state() -> dict[str, int]:
    with connection.cursor() as cursor:
        out = {}
        for table in (
            "ops_rollup_tenant_day",
            "ops_rollup_tenant_span",
            "ops_rollup_tenant_day_summary",
            "ops_rollup_session_friction",
            "ops_rollup_tenant_user_day",
            "ops_tenant_metrics",
        ):
            cursor.execute(f"SELECT count(*) FROM public.{table}")
            out[table] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM pg_class WHERE relpersistence = 't'")
        out["temp tables"] = cursor.fetchone()[0]
        return out


@pytest.mark.django_db
def test_a_stopped_run_resumes_where_it_stopped_and_never_touches_the_live_metrics(now):
    sim_store(sim_base(MIXED, healthy=3))
    live = _live_state()
    run = backtest_run_prepare(days=56, step=7, horizons=[30])

    def crash(done: int, total: int) -> None:
        if done == 3:
            raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError):
        backtest_run_execute(run, progress=crash)
    run.refresh_from_db()
    assert (run.status, len(run.dates_done)) == (BacktestStatus.FAILED, 3)
    assert _live_state() == live  # no temp table left behind, nothing live written
    first_three = {k: v for k, v in _scores(run).items()}
    seen: list[int] = []
    again = backtest_run_prepare(days=56, step=7, horizons=[30])
    assert again.pk == run.pk
    backtest_run_execute(again, progress=lambda done, total: seen.append(done))
    assert seen[0] == 3 and seen[-1] == 9
    again.refresh_from_db()
    assert again.status == BacktestStatus.DONE and len(again.dates_done) == 9
    assert {k: v for k, v in _scores(again).items() if k in first_three} == first_three
    assert _live_state() == live


@pytest.mark.django_db
def test_the_command_runs_a_backtest_and_refuses_bad_parameters(now, capsys):
    sim_store(sim_base({"friction": 2}, healthy=2))
    call_command("backtest_risk", "--days", "14", "--step", "7", "--horizons", "30")
    assert "Backtest" in capsys.readouterr().out
    assert BacktestRun.objects.get().status == BacktestStatus.DONE
    for bad in (["--days", "0"], ["--step", "0"], ["--horizons", "30,x"], ["--horizons", "30,30"]):
        with pytest.raises(CommandError):
            call_command("backtest_risk", *bad)
    assert BacktestRun.objects.count() == 1


@pytest.mark.django_db
def test_the_celery_task_runs_the_backtest_and_reports_progress(now):
    sim_store(sim_base({"friction": 2}, healthy=2))
    run = backtest_run_prepare(days=21, step=7, horizons=[30])
    result = backtest_risk_task.apply(args=[run.pk])
    assert result.successful() and result.result == {"run_id": run.pk, "status": "done"}
    run.refresh_from_db()
    assert len(run.dates_done) == 4 and run.report["as_of_dates"] == sorted(run.dates_done)
    # A redelivered task finds the run done and leaves it as it is.
    assert backtest_risk_task.apply(args=[run.pk]).result == {"run_id": run.pk, "status": "done"}


@pytest.mark.django_db(transaction=True)
def test_the_validation_page_starts_a_backtest_in_the_background_and_shows_its_figures(now):
    from celery import current_app
    from django.contrib.auth import get_user_model
    from django.test import Client

    sim_store(sim_base({"friction": 2}, healthy=2))
    client = Client()
    client.force_login(get_user_model().objects.create_user("founder", is_staff=True))
    assert 'data-testid="start-backtest"' in client.get("/validation/").content.decode()
    assert client.get("/validation/backtest/start").status_code == 405
    # The queued task runs in this process (Celery's eager mode), as a worker would run it.
    eager = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    try:
        response = client.post("/validation/backtest/start")
    finally:
        current_app.conf.task_always_eager = eager
    assert response.status_code == 302
    run = BacktestRun.objects.get()
    assert run.status == BacktestStatus.DONE and len(run.dates_done) == run.dates_total == 26
    page = client.get("/validation/").content.decode()
    assert 'data-testid="backtest-progress"' not in page and 'data-testid="ranking-figures"' in page
