"""The churn model's feature that sets recent use against the account's own earlier level (customers/metrics/features.py).

Expected values are worked out by hand from the events below and the definition in features.py.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from customers.metrics.features import TypeCounts, feature_sentence, features_matrix
from customers.metrics.recompute import metrics_recompute
from customers.metrics.signals import TenantSignals, tenant_signals_measure
from tests.customers.conftest import NOW, Ev, days_ago

AS_OF = NOW.date()


def _features(signals: list[TenantSignals], as_of: date = AS_OF) -> dict[str, np.ndarray]:
    names, matrix = features_matrix(signals, as_of=as_of, types=(), type_counts=TypeCounts.empty(()), points={})
    return {name: matrix[:, j] for j, name in enumerate(names)}


def test_a_fading_account_reads_below_its_own_earlier_level(metrics_db):
    # Days 60..28 ago: two events a day; days 27..14 ago: none; days 13..0 ago: one a day. "steady" has one
    # event on each of its days from 60 ago to today.
    metrics_db(
        [Ev("fade", "INCIDENT_VIEWED", days_ago(d), user_id=u) for d in range(28, 61) for u in ("u1", "u2")]
        + [Ev("fade", "INCIDENT_VIEWED", days_ago(d)) for d in range(14)]
        + [Ev("steady", "INCIDENT_VIEWED", days_ago(d)) for d in range(61)]
    )
    metrics_recompute()
    measured = {s.tenant_id: s for s in tenant_signals_measure(as_of=AS_OF)}
    assert (measured["fade"].events_14d, measured["steady"].events_14d) == (14, 14)
    f = _features([measured["fade"], measured["steady"]])
    # fade's own level: 66 events on the 33 days from 60 to 28 days ago, 2 a day: 28 expected in 14 days, 14 seen.
    assert f["events_14d_vs_own_level"][0] == pytest.approx(math.log(15 / 29))
    # steady: 33 events on those 33 days, 14 expected and 14 seen.
    assert f["events_14d_vs_own_level"][1] == pytest.approx(0.0)


def _signals(first_days_ago: int, **kwargs: object) -> TenantSignals:
    first = datetime.combine(AS_OF - timedelta(days=first_days_ago), datetime.min.time(), tzinfo=UTC)
    return replace(TenantSignals(tenant_id="acme", first_seen_at=first, last_seen_at=first), **kwargs)


def test_an_account_without_a_week_of_its_own_earlier_level_reads_steady():
    # First seen 33 days ago: 6 days (33..28 ago) before the last 4 weeks, fewer than a week; 34 days ago: 7.
    young = _signals(33, events_14d=0, events_7d=0, events_90d=60, events_28d=0)
    older = replace(young, first_seen_at=young.first_seen_at - timedelta(days=1))  # type: ignore[operator]
    f = _features([young, older])
    assert f["events_14d_vs_own_level"][0] == 0.0
    # 60 events over its 7 days of own level: 120 expected in 14 days, none seen.
    assert f["events_14d_vs_own_level"][1] == pytest.approx(math.log(1 / 121))


def test_the_sentence_says_how_much_of_its_own_earlier_use_is_left():
    fading = _signals(200, events_14d=14)
    assert feature_sentence("events_14d_vs_own_level", fading, math.log(0.4)) == (
        "about 40% of its own earlier use in the last 2 weeks"
    )
