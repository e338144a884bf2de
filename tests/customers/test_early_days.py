"""An account in its first weeks, measured from the stored events: only an account that arrived after the
console's record began is known to be young, and the record's start holds for the whole day, so an incremental
run and a full rebuild agree (customers/metrics/quiet.py ``early_days``, peers.py ``record_start``).

Expected values are worked out by hand from the events below: 10 x (90 - age) / (90 - 7) points.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import time_machine

from customers.metrics.recompute import metrics_recompute
from customers.models import TenantMetrics
from tests.customers.conftest import NOW, Ev, days_ago, events_store


def _early_days() -> dict[str, float]:
    return {
        m.tenant_id: next(c["points"] for c in m.risk_components if c["signal"] == "early_days")
        for m in TenantMetrics.objects.all()
    }


def _daily(tenant: str, first: int) -> list[Ev]:
    """One core-value event a day from ``first`` days ago to today: steady use, nothing else to score."""
    return [Ev(tenant, "INCIDENT_VIEWED", days_ago(d)) for d in range(first + 1)]


def test_only_an_account_that_arrived_after_the_record_began_counts_as_young(metrics_db: Any) -> None:
    # The record begins 120 days ago with "old"; "since_start" arrived 110 days ago (in the record's first
    # two weeks: its age is unknown, and past 90 days anyway); "early" was first seen 100 days ago but is
    # counted: 100 days old, past its first weeks; "new" 30 days ago: 10 x 60 / 83 = 7.2.
    metrics_db(_daily("old", 120) + _daily("since_start", 110) + _daily("early", 100) + _daily("new", 30))
    metrics_recompute()
    assert _early_days() == {"old": 0.0, "since_start": 0.0, "early": 0.0, "new": 7.2}


def test_every_account_of_a_console_installed_a_month_ago_has_an_unknown_age(metrics_db: Any) -> None:
    # Events began 35 days ago for everyone: the console saw them all arrive, as on a founder's first month.
    metrics_db(_daily("a", 35) + _daily("b", 30) + _daily("c", 22))
    metrics_recompute()
    # "c" was first seen 13 days after the record began: still its first weeks, age unknown.
    assert _early_days() == {"a": 0.0, "b": 0.0, "c": 0.0}
    events_store(_daily("d", 20))  # 15 days after the record began: 10 x 70 / 83 = 8.4
    metrics_recompute()
    assert _early_days()["d"] == 8.4


def test_older_history_imported_during_the_day_moves_the_start_the_next_day_and_runs_agree(metrics_db: Any) -> None:
    metrics_db(_daily("a", 40) + _daily("b", 20))
    metrics_recompute()
    # b arrived 20 days after the record began: 10 x 70 / 83 = 8.4.
    assert _early_days() == {"a": 0.0, "b": 8.4}
    # An import of a year-old account: the record now begins 365 days ago, but today's runs keep today's start.
    events_store([Ev("z", "INCIDENT_VIEWED", days_ago(365)), Ev("z", "INCIDENT_VIEWED", days_ago(1))])
    metrics_recompute()
    incremental = _early_days()
    metrics_recompute(full=True)
    assert _early_days() == incremental == {"a": 0.0, "b": 8.4, "z": 0.0}
    # The next day every tenant is recomputed from the new start: a, now 41 days old, arrived long after it:
    # 10 x 49 / 83 = 5.9; b, 21 days old: 10 x 69 / 83 = 8.3.
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        metrics_recompute()
        incremental = _early_days()
        metrics_recompute(full=True)
        assert _early_days() == incremental == {"a": 5.9, "b": 8.3, "z": 0.0}
