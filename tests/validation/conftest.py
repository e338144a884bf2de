"""A simulated customer base with known churn mechanisms, for the backtest tests.

Every customer is active from SIM_START on; each mechanism is a daily pattern:

* ``healthy``: 5 API calls and one incident view a day by three users; never churns.
* ``low_steady``: one incident view a day by one user, as steady as the healthy ones;
  churns on its churn day. Nothing the heuristic reads changes before it churns (no
  decay, no friction, investigating daily): the heuristic is blind to it, while its
  volume (events and users in 7/30 days) tells it apart.
* ``decay``: healthy until 21 days before its churn, then its daily activity fades out.
* ``friction``: healthy, and from 28 days before its churn three aborted replays a day,
  each in its own session.

A churned customer sends nothing after its churn day. Deterministic: no randomness.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
import time_machine

from playbooks.models import ChurnRecord
from tests.customers.conftest import NOW, Ev, events_store
from validation.services import backtest_run_execute, backtest_run_prepare

TODAY = NOW.date()
SIM_START = TODAY - timedelta(days=220)


@dataclass(frozen=True)
class SimCustomer:
    tenant_id: str
    mechanism: str
    churn_day: date | None = None


def _day_events(c: SimCustomer, day: date) -> Iterable[Ev]:
    at = NOW.replace(year=day.year, month=day.month, day=day.day, hour=10)
    healthy = [Ev(c.tenant_id, "API_CALL", at, session_id=f"s{i}", user_id=f"u{i % 3}") for i in range(5)]
    healthy.append(Ev(c.tenant_id, "INCIDENT_VIEWED", at, session_id="s0", user_id="u0"))
    if c.mechanism == "healthy":
        return healthy
    if c.mechanism == "low_steady":
        return [Ev(c.tenant_id, "INCIDENT_VIEWED", at, session_id="s0", user_id="u0")]
    assert c.churn_day is not None
    before = (c.churn_day - day).days
    if c.mechanism == "decay":
        if before > 21:
            return healthy
        # Fading: the last three weeks keep a shrinking share of the day, and views stop at 10 days.
        keep = max(0, (before * 6) // 21)
        return healthy[:keep] if before > 10 else [e for e in healthy[:keep] if e.event_type == "API_CALL"]
    if c.mechanism == "friction":
        aborted = [Ev(c.tenant_id, "REPLAY_ABORTED", at, session_id=f"f{i}", user_id="u0") for i in range(3)]
        return healthy + (aborted if before <= 28 else [])
    raise ValueError(c.mechanism)


def sim_events(customers: list[SimCustomer], *, start: date = SIM_START, end: date = TODAY) -> list[Ev]:
    out: list[Ev] = []
    for c in customers:
        day = start
        while day <= end and (c.churn_day is None or day <= c.churn_day):
            out.extend(_day_events(c, day))
            day += timedelta(days=1)
    return out


def sim_store(customers: list[SimCustomer], **window: date) -> None:
    """Store the customers' events and their churns (ChurnRecord)."""
    events_store(sim_events(customers, **window))
    ChurnRecord.objects.bulk_create(
        ChurnRecord(tenant_id=c.tenant_id, date=c.churn_day, reason=c.mechanism)
        for c in customers
        if c.churn_day is not None and c.churn_day <= window.get("end", TODAY)
    )


def sim_base(
    mechanisms: dict[str, int], *, healthy: int, first_churn: int = 150, last_churn: int = 5
) -> list[SimCustomer]:
    """``healthy`` healthy customers plus, per mechanism, that many churners whose churn days are spread
    evenly from ``first_churn`` to ``last_churn`` days before today."""
    out = [SimCustomer(f"healthy-{i:02d}", "healthy") for i in range(healthy)]
    for mechanism, count in mechanisms.items():
        for i in range(count):
            ago = first_churn - (first_churn - last_churn) * i // max(count - 1, 1)
            out.append(SimCustomer(f"{mechanism}-{i:02d}", mechanism, TODAY - timedelta(days=ago)))
    return out


@pytest.fixture
def run(db: Any, settings: Any) -> Any:
    """A finished backtest over a simulated base with enough churns for a learned model."""
    settings.MIN_CHURNS_FOR_TRUST = 4
    with time_machine.travel(NOW, tick=False):
        sim_store(sim_base({"low_steady": 6, "friction": 4}, healthy=4))
        return backtest_run_execute(backtest_run_prepare(days=126, step=7, horizons=[30, 60]))
