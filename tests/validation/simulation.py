"""Stochastic customer bases with churn mechanisms the heuristic was not designed around.

Each base is a seeded random population (NumPy's ``default_rng``): accounts join over
the history, each with its own level of use (log-normal, so a few accounts are far busier
than the rest), its own number of users and share of core-value use, weekday rhythm
and day-to-day noise. Friction events arrive in proportion to activity for everyone
(the busiest accounts abort and fail the most), so a raw friction count points at the
healthiest accounts. Churn mechanisms, mixed per base:

* ``quiet``: a steady daily hazard that is higher for accounts whose use was always
  low and for young accounts; nothing changes before the churn.
* ``never_onboard``: a young account that never reaches the core value and leaves
  within its first two months.
* ``decay``: use fades over three to seven weeks before the churn.
* ``friction_spell``: from three to five weeks before the churn, several friction
  events a day in their own sessions and a fifth less use.
* ``random``: a steady hazard unrelated to anything measured (noise every founder has).

A churned account sends nothing after its churn day. Events are written with COPY.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from django.db import connection

from playbooks.models import ChurnRecord

ENGAGED_TYPES = ("LOGIN", "API_CALL", "EXPORT_COMPLETED")
CORE_TYPES = ("INCIDENT_VIEWED", "REPLAY_COMPLETED")
FRICTION_TYPES = ("REPLAY_ABORTED", "EXPORT_FAILED", "SESSION_IDLE_TIMEOUT")
# Friction events per event of use, for every account (friction proportional to activity).
FRICTION_SHARE = 0.05
WEEKDAY_FACTOR = (1.0, 1.05, 1.05, 1.0, 0.9, 0.35, 0.25)


@dataclass
class SimAccount:
    tenant_id: str
    joined: date
    level: float  # events of use per weekday
    users: int
    core_share: float
    mechanism: str  # how it churns ("" when it did not)
    churn_day: date | None = None
    onset_days: int = 0  # decay / friction spell: days before the churn it begins


def _hazard_churn(rng: np.random.Generator, *, joined: date, end: date, daily: callable) -> date | None:  # type: ignore[valid-type]
    day = joined + timedelta(days=1)
    while day <= end:
        if rng.random() < daily((day - joined).days):
            return day
        day += timedelta(days=1)
    return None


def quiet_base(n: int, *, seed: int, today: date, history_days: int = 330) -> list[SimAccount]:
    """Churners are quietly low: low-use and young accounts carry the hazard; no decline."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        joined = today - timedelta(days=int(rng.integers(20, history_days)))
        level = float(rng.lognormal(math.log(3.0), 0.9))
        users = 1 + int(rng.poisson(min(level, 30) / 3))
        account = SimAccount(f"q{i:04d}", joined, level, users, float(rng.beta(2, 5)), "")
        if rng.random() < 0.12 and (today - joined).days < 150:
            # A young account that never onboards: no core value, leaves within its first two months.
            account.core_share = 0.0
            account.mechanism = "never_onboard"
            account.churn_day = joined + timedelta(days=int(rng.integers(20, 60)))
        else:
            scale = (level / 3.0) ** -0.9

            def hazard(age: int, scale: float = scale) -> float:
                return 0.0012 * scale * (1 + 3.0 * math.exp(-age / 40))

            account.churn_day = _hazard_churn(rng, joined=joined, end=today, daily=hazard)
            account.mechanism = "quiet" if account.churn_day else ""
        if account.churn_day and account.churn_day > today:
            account.churn_day, account.mechanism = None, ""
        out.append(account)
    return out


def decay_base(n: int, *, seed: int, today: date, history_days: int = 330) -> list[SimAccount]:
    """Churners decay, hit a friction spell, or leave at random; levels vary widely."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        joined = today - timedelta(days=int(rng.integers(60, history_days)))
        level = float(rng.lognormal(math.log(4.0), 0.8))
        users = 1 + int(rng.poisson(min(level, 30) / 3))
        account = SimAccount(f"d{i:04d}", joined, level, users, float(rng.beta(2, 4)), "")
        if rng.random() < 0.3:
            account.mechanism = str(rng.choice(["decay", "decay", "friction_spell", "random"]))
            earliest = max(joined + timedelta(days=50), today - timedelta(days=history_days - 60))
            span = (today - earliest).days
            if span > 0:
                account.churn_day = earliest + timedelta(days=int(rng.integers(0, span)))
                account.onset_days = (
                    int(rng.integers(21, 50)) if account.mechanism == "decay" else int(rng.integers(21, 36))
                )
            else:
                account.mechanism = ""
        out.append(account)
    return out


def _day_rows(rng: np.random.Generator, a: SimAccount, day: date) -> list[tuple[str, str, str, datetime]]:
    """(event_type, user_id, session_id, occurred_at) of one account's day."""
    level = a.level * WEEKDAY_FACTOR[day.weekday()] * float(rng.lognormal(0, 0.3))
    friction_extra = 0
    if a.churn_day is not None and a.mechanism in ("decay", "friction_spell"):
        before = (a.churn_day - day).days
        if before < a.onset_days:
            if a.mechanism == "decay":
                level *= max(0.05, before / a.onset_days)
            else:
                level *= 0.8
                friction_extra = int(rng.integers(2, 6))
    n = int(rng.poisson(level))
    n_friction = int(rng.binomial(n, FRICTION_SHARE)) if n else 0
    rows = []
    base = datetime(day.year, day.month, day.day, 8, tzinfo=UTC)
    for k in range(n):
        core = rng.random() < a.core_share
        kind = CORE_TYPES[k % 2] if core else ENGAGED_TYPES[int(rng.integers(0, 3))]
        user = f"u{int(rng.integers(0, a.users))}"
        rows.append((kind, user, f"{user}-{day.isoformat()}", base + timedelta(minutes=int(rng.integers(0, 600)))))
    for k in range(n_friction + friction_extra):
        user = f"u{int(rng.integers(0, a.users))}"
        session = f"f{k}-{day.isoformat()}" if k >= n_friction else f"{user}-{day.isoformat()}"
        rows.append((FRICTION_TYPES[k % 3], user, session, base + timedelta(minutes=int(rng.integers(0, 600)))))
    return rows


def sim_store(accounts: list[SimAccount], *, seed: int, today: date) -> int:
    """COPY every account's events up to its churn day (or today) and record the churns; the event count."""
    rng = np.random.default_rng(seed + 1)
    count = 0
    now = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO customers_tenant (tenant_id, name, kind, first_seen_at, notes) "
            "VALUES (%s, '', 'customer', %s, '') ON CONFLICT DO NOTHING",
            [(a.tenant_id, now) for a in accounts],
        )
        copy_sql = (
            "COPY ops_events (event_id, tenant_id, user_id, session_id, event_type, occurred_at, received_at, "
            "metadata, friction_signal, is_real, exclusion_reason) FROM STDIN"
        )
        with cursor.cursor.copy(copy_sql) as copy:
            for a in accounts:
                last = min(a.churn_day or today, today)
                day = a.joined
                while day <= last:
                    for kind, user, session, at in _day_rows(rng, a, day):
                        copy.write_row(
                            (str(uuid.uuid4()), a.tenant_id, user, session, kind, at, now, "{}", "", True, "")
                        )
                        count += 1
                    day += timedelta(days=1)
    ChurnRecord.objects.bulk_create(
        ChurnRecord(tenant_id=a.tenant_id, date=a.churn_day, reason=a.mechanism)
        for a in accounts
        if a.churn_day is not None
    )
    return count
