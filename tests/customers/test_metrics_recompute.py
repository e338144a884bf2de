"""The metrics engine end to end on PostgreSQL: events -> rollups -> ops_tenant_metrics.

Known answers are worked out by hand from the spec's formulas; the frozen clock
puts "today" (as_of) on 2026-03-15 UTC.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
import time_machine
from django.db import connection, connections

from customers.metrics.recompute import METRICS_LOCK_KEY, metrics_recompute, tenant_rollups_rebuild
from customers.models import MetricsState, TenantDayCount, TenantMetrics
from events.models import Event, EventType
from tests.customers.conftest import NOW, Ev, days_ago, events_store

pytestmark = pytest.mark.django_db(transaction=True)


def metrics(tenant_id: str) -> TenantMetrics:
    return TenantMetrics.objects.get(tenant_id=tenant_id)


def test_it_computes_stickiness_over_seven_and_thirty_days(metrics_db):
    events = (
        # last 7 days (as_of-6 .. as_of): 5 views, 2 replays, 1 export = 1.0 + 0.6 + 0.5 = 2.1
        [Ev("acme", "INCIDENT_VIEWED", days_ago(d)) for d in (0, 1, 2, 3, 4)]
        + [Ev("acme", "REPLAY_COMPLETED", days_ago(5)), Ev("acme", "REPLAY_COMPLETED", days_ago(6, hour=0))]
        + [Ev("acme", "EXPORT_COMPLETED", days_ago(1))]
        # days 7..29 ago: 10 views, 4 replays, 3 exports = 2.0 + 1.2 + 1.5 = 4.7 (30d total 6.8)
        + [Ev("acme", "INCIDENT_VIEWED", days_ago(7, hour=23)) for _ in range(10)]
        + [Ev("acme", "REPLAY_COMPLETED", days_ago(20)) for _ in range(4)]
        + [Ev("acme", "EXPORT_COMPLETED", days_ago(29, hour=0)) for _ in range(3)]
        # outside 30 days, not real, or not engagement: ignored
        + [
            Ev("acme", "EXPORT_COMPLETED", days_ago(30, hour=23)),
            Ev("acme", "EXPORT_COMPLETED", days_ago(1), is_real=False),
        ]
        + [Ev("acme", "API_CALL", days_ago(1))]
    )
    metrics_db(events)
    metrics_recompute()
    m = metrics("acme")
    assert m.stickiness_7d == 2.1
    assert m.stickiness_30d == 1.5814  # 6.8 / 4.3
    assert m.stickiness_delta == 1.3279  # 2.1 / 1.5814
    assert m.has_baseline is True
    assert m.events_7d == 9  # 8 engagement + 1 API_CALL; the non-real export is not counted
    assert m.last_investigation == "INCIDENT_VIEWED"
    assert m.days_since_investigation == 0
    assert m.computed_at == NOW
    assert m.as_of == date(2026, 3, 15)


def test_it_marks_a_tenant_without_baseline_with_a_null_delta(metrics_db):
    metrics_db([Ev("legal", "CERT_GENERATED", days_ago(d)) for d in range(0, 20, 2)])
    metrics_recompute()
    m = metrics("legal")
    assert (m.stickiness_7d, m.stickiness_30d, m.stickiness_delta, m.has_baseline) == (0, 0, None, False)
    # Active for 18 days, never an investigation: the legal-only pattern, and a young account that never
    # onboarded: never investigated 20 + not onboarded 25 = 45. No incident or replay was ever sent
    # here, so the example's own words ("investigated") do not speak for this product: the plain ones.
    assert m.risk_level == "high" and m.risk_signal_strength == 45
    assert m.primary_risk_reason == "legal started 18 days ago and has never used the core value"
    assert m.secondary_signals[0] == "legal uses the product (10 events in 30 days) but has never used the core value"


def test_it_caps_friction_per_session_and_per_day(metrics_db):
    d1 = days_ago(1)
    metrics_db(
        [
            # day as_of-1: s1 = 2 x 3.0 = 6 -> 5; s2 = 2.5; s3 = 2.0 + 1.5 = 3.5 -> day 11 -> 10
            Ev("fr", "REPLAY_ABORTED", d1, session_id="s1"),
            Ev("fr", "REPLAY_ABORTED", d1, session_id="s1"),
            Ev("fr", "EXPORT_ABORTED", d1, session_id="s2"),
            Ev("fr", "POLICY_BLOCK_REPEAT", d1, session_id="s3"),
            Ev("fr", "SESSION_IDLE_TIMEOUT", d1, session_id="s3"),
            # day as_of-2: one hesitation, 1.0
            Ev("fr", "INCIDENT_VIEWED_NO_ACTION", days_ago(2), session_id="s4"),
            # no session id: grouped per user; 2 x 3.0 = 6 -> 5 on day as_of-3
            Ev("fr", "REPLAY_ABORTED", days_ago(3), session_id="", user_id="ann"),
            Ev("fr", "REPLAY_ABORTED", days_ago(3), session_id="", user_id="ann"),
            # 7 days ago: outside the window
            Ev("fr", "REPLAY_ABORTED", days_ago(7), session_id="s9"),
        ]
    )
    metrics_recompute()
    m = metrics("fr")
    assert m.friction_weighted_score == 16.0  # 10 + 1 + 5
    assert m.friction_events_7d == 8
    assert m.top_friction_type == "REPLAY_ABORTED"


def test_it_uses_the_registry_weights_of_the_next_recompute(metrics_db):
    metrics_db([Ev("w", "EXPORT_COMPLETED", days_ago(1)), Ev("w", "POLICY_BLOCK_REPEAT", days_ago(1))])
    metrics_recompute()
    assert (metrics("w").stickiness_7d, metrics("w").friction_weighted_score) == (0.5, 2.0)
    EventType.objects.filter(name="EXPORT_COMPLETED").update(engagement_weight=0.8)
    EventType.objects.filter(name="POLICY_BLOCK_REPEAT").update(friction_weight=4.0)
    # A type that had no friction weight gets one: the session rollup must be rebuilt to include it.
    EventType.objects.filter(name="EXPORT_STARTED").update(friction_weight=1.0)
    metrics_db([Ev("w", "EXPORT_STARTED", days_ago(0), session_id="s2")])
    result = metrics_recompute()
    assert result.mode == "full"
    assert metrics("w").stickiness_7d == 0.8
    assert metrics("w").friction_weighted_score == 5.0  # 4.0 in s1 + 1.0 in s2


def test_it_finds_a_silent_champion_and_a_cliff(metrics_db):
    prior = [Ev("team", "API_CALL", days_ago(d), user_id="alice") for d in range(8, 20)]  # 12 by alice
    prior += [Ev("team", "API_CALL", days_ago(d), user_id="bob") for d in range(8, 18)]  # 10 by bob
    recent = [Ev("team", "API_CALL", days_ago(d), user_id="bob") for d in (1, 2, 3)]  # alice silent
    metrics_db(prior + recent)
    metrics_recompute()
    m = metrics("team")
    assert m.champion_risk is True  # 12 of 22 > half, none in 7 days
    assert m.champion_user_id == "alice"
    # last week (days 7..13 ago): alice 8..13 (6) + bob 8..13 (6) = 12; this week 3 < 6
    assert (m.events_7d, m.events_prev_7d, m.cliff) == (3, 12, True)
    champion = next(c for c in m.risk_components if c["signal"] == "champion_silent")
    assert champion["points"] == 20
    # champion 20 + cliff 15 + never investigated 20 (active for 19 days, no view or replay)
    # + not onboarded 25 (19 days old and never the core value)
    assert m.risk_signal_strength == 80
    assert m.risk_level == "critical"
    # No incident or replay was ever sent: the core value in plain words, not the example's.
    assert m.primary_risk_reason == "team started 19 days ago and has never used the core value"
    assert m.secondary_signals[0].startswith("team uses the product (25 events in 30 days)")  # ties: the earlier


def test_it_lists_recent_changes_and_correlates_the_decay(metrics_db):
    # Steady 2 replays a day until a policy change on 2026-03-08, then nothing.
    events = [Ev("pol", "REPLAY_COMPLETED", days_ago(d)) for d in range(8, 30) for _ in range(2)]
    events += [Ev("pol", "POLICY_CHANGED", days_ago(7)), Ev("pol", "API_CALL", days_ago(1))]
    metrics_db(events)
    metrics_recompute()
    m = metrics("pol")
    assert m.recent_changes == ["policy change 7 days ago"]
    # The 7-day stickiness peaked on 2026-03-07 (the last day with replays), fell from 2026-03-08.
    assert m.decay_correlation == (
        "policy change on 2026-03-08, on the day the 7-day stickiness began to fall (2026-03-08)"
    )
    assert m.stickiness_delta == 0


def test_it_picks_up_a_transaction_that_commits_late(metrics_db):
    metrics_recompute()  # initial full run
    dsn = connection.get_connection_params()
    late = psycopg.connect(**{k: v for k, v in dsn.items() if k != "cursor_factory"})
    try:
        # The late writer starts first (lower xid), a second writer commits before it.
        with late.cursor() as cur:
            events_store([Ev("late", "EXPORT_COMPLETED", days_ago(1))], cursor=cur)
        events_store([Ev("early", "EXPORT_COMPLETED", days_ago(1))])
        first = metrics_recompute()
        assert first.events_folded == 1
        assert TenantDayCount.objects.filter(tenant_id="late").count() == 0
        late.commit()
    finally:
        late.close()
    second = metrics_recompute()
    assert second.events_folded == 1  # "late" once, and "early" not again
    third = metrics_recompute()
    assert third.events_folded == 0
    assert metrics("late").stickiness_7d == 0.5
    assert list(TenantDayCount.objects.order_by("tenant_id").values_list("tenant_id", "value")) == [
        ("early", 1),
        ("late", 1),
    ]


def test_it_skips_a_run_that_overlaps_another(metrics_db, settings, caplog):
    metrics_db([Ev("a", "EXPORT_COMPLETED", days_ago(1))])
    in_hook = threading.Event()
    release = threading.Event()
    results = {}

    def blocking_hook(*, as_of: date, computed_at: datetime, dirty_only: bool) -> None:
        in_hook.set()
        assert release.wait(30)

    settings.METRICS_POST_RECOMPUTE_HOOKS = [f"{__name__}._hook"]
    globals()["_hook"] = blocking_hook

    def first_run() -> None:
        try:
            results["first"] = metrics_recompute()
        finally:
            connections.close_all()

    thread = threading.Thread(target=first_run)
    thread.start()
    try:
        assert in_hook.wait(30)  # the first run holds the lock, inside its transaction
        metrics_db([Ev("a", "EXPORT_COMPLETED", days_ago(0))])
        with caplog.at_level(logging.INFO, logger="customers.metrics.recompute"):
            second = metrics_recompute()
        assert second.skipped is True
        assert "skipped: another run holds the lock" in caplog.text
    finally:
        release.set()
        thread.join(30)
    assert results["first"].skipped is False
    assert results["first"].events_folded == 1
    settings.METRICS_POST_RECOMPUTE_HOOKS = []
    assert metrics_recompute().events_folded == 1  # the event the skipped run left behind
    assert TenantDayCount.objects.get(tenant_id="a", day=date(2026, 3, 14)).value == 1
    assert TenantDayCount.objects.get(tenant_id="a", day=date(2026, 3, 15)).value == 1


def test_it_skips_while_another_connection_holds_the_lock(metrics_db):
    dsn = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in dsn.items() if k != "cursor_factory"}) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", [METRICS_LOCK_KEY])
        assert metrics_recompute().skipped is True
        assert not MetricsState.objects.exists()
        other.rollback()
    assert metrics_recompute().skipped is False


def test_a_crashed_run_leaves_the_previous_state_for_the_next_run(metrics_db, settings):
    metrics_db([Ev("c", "EXPORT_COMPLETED", days_ago(1))])
    metrics_recompute()
    metrics_db([Ev("c", "EXPORT_COMPLETED", days_ago(0))])
    settings.METRICS_POST_RECOMPUTE_HOOKS = [f"{__name__}._crash"]
    with pytest.raises(RuntimeError):
        metrics_recompute()
    assert metrics("c").stickiness_7d == 0.5  # nothing of the crashed run is visible
    settings.METRICS_POST_RECOMPUTE_HOOKS = []
    assert metrics_recompute().events_folded == 1
    assert metrics("c").stickiness_7d == 1.0


def _crash(*, as_of: date, computed_at: datetime, dirty_only: bool) -> None:
    raise RuntimeError("simulated crash after the rollups were written")


def test_it_rebuilds_a_reclassified_tenant(metrics_db):
    metrics_db(
        [Ev("re", "EXPORT_COMPLETED", days_ago(1)) for _ in range(3)] + [Ev("other", "EXPORT_COMPLETED", days_ago(1))]
    )
    metrics_recompute()
    assert metrics("re").stickiness_7d == 1.5
    # Reclassification flips is_real in place (same ingest_xid): the incremental path cannot see it.
    Event.objects.filter(tenant_id="re").update(is_real=False, exclusion_reason="internal_user")
    assert metrics_recompute().events_folded == 0
    assert metrics("re").stickiness_7d == 1.5
    tenant_rollups_rebuild(tenant_ids=["re"])
    assert metrics("re").stickiness_7d == 0
    assert metrics("other").stickiness_7d == 0.5
    assert metrics_recompute().events_folded == 0


def test_the_full_rebuild_equals_the_incremental_path(metrics_db):
    metrics_db([Ev("x", "INCIDENT_VIEWED", days_ago(d)) for d in range(10)])
    metrics_recompute()
    metrics_db([Ev("x", "REPLAY_ABORTED", days_ago(d), session_id=f"s{d}") for d in range(3)])
    metrics_recompute()
    incremental = list(
        TenantDayCount.objects.order_by("tenant_id", "event_type", "day").values_list("event_type", "day", "value")
    )
    metrics_recompute(full=True)
    full = list(
        TenantDayCount.objects.order_by("tenant_id", "event_type", "day").values_list("event_type", "day", "value")
    )
    assert incremental == full
    assert len(full) == 13
    assert metrics("x").friction_weighted_score == 9.0


def test_days_use_utc_calendar_days(metrics_db):
    # 23:30 on 2026-03-08 is 8 days before as_of: outside the 7-day window; 00:30 on 2026-03-09 inside.
    metrics_db(
        [
            Ev("utc", "EXPORT_COMPLETED", datetime(2026, 3, 8, 23, 30, tzinfo=UTC)),
            Ev("utc", "INCIDENT_VIEWED", datetime(2026, 3, 9, 0, 30, tzinfo=UTC)),
        ]
    )
    metrics_recompute()
    assert metrics("utc").stickiness_7d == 0.2
    assert metrics("utc").days_since_investigation == 6


def test_it_keeps_ninety_days_of_day_rollups_and_all_history_for_last_seen(metrics_db):
    metrics_db([Ev("old", "REPLAY_COMPLETED", days_ago(120)), Ev("old", "API_CALL", days_ago(89))])
    metrics_recompute()
    # 2026-03-15 minus 89 days = 2025-12-16 is the first day kept; the replay 120 days ago is not.
    assert list(TenantDayCount.objects.values_list("event_type", "day")) == [("API_CALL", date(2025, 12, 16))]
    assert metrics("old").last_investigation == "REPLAY_COMPLETED"
    assert metrics("old").days_since_investigation == 120
    # A late event older than the window is not folded into the day rollups either.
    metrics_db([Ev("old", "EXPORT_COMPLETED", days_ago(100))])
    assert metrics_recompute().events_folded == 1
    assert TenantDayCount.objects.count() == 1
    # A day later the window moves and the oldest day is pruned.
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        metrics_recompute()
    assert TenantDayCount.objects.count() == 0
    assert MetricsState.objects.get().rollups_start_day == date(2025, 12, 17)
