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
* ``seats``: the account loses its users over six to ten weeks before the churn while its
  volume of events holds (the last users do the work of the others): a mechanism neither the
  heuristic nor the model's features were designed around (no decline in events, no friction).

``mixed_base`` holds the first five together; ``seats_base`` adds the last one on accounts of
very unequal sizes with a two-week holiday dip in everyone's use (a decline that means nothing).

A churned account sends nothing after its churn day. Events are written with COPY.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
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
# The holiday of the seats base: days before today it spans, and the share of use that remains.
HOLIDAY_DAYS_AGO = (110, 96)
HOLIDAY_FACTOR = 0.4


@dataclass
class SimAccount:
    tenant_id: str
    joined: date
    level: float  # events of use per weekday
    users: int
    core_share: float
    mechanism: str  # how it churns ("" when it did not)
    churn_day: date | None = None
    onset_days: int = 0  # decay / friction spell / seats: days before the churn it begins
    holiday: tuple[date, date] | None = None  # first and last day of a dip to HOLIDAY_FACTOR of its use


def _hazard_churn(rng: np.random.Generator, *, joined: date, end: date, daily: callable) -> date | None:  # type: ignore[valid-type]
    day = joined + timedelta(days=1)
    while day <= end:
        if rng.random() < daily((day - joined).days):
            return day
        day += timedelta(days=1)
    return None


def _account(
    rng: np.random.Generator, tenant_id: str, *, today: date, ages: tuple[int, int], level: tuple[float, float],
    users: tuple[int, int], core_beta: int, holiday: tuple[date, date] | None = None,
) -> SimAccount:  # fmt: skip
    """An account that joined ``ages`` days ago (uniform), with a log-normal level (median, sigma), its users
    (the least, plus a Poisson third of its level up to a cap) and its share of use on the core value."""
    joined = today - timedelta(days=int(rng.integers(*ages)))
    daily = float(rng.lognormal(math.log(level[0]), level[1]))
    count = users[0] + int(rng.poisson(min(daily, users[1]) / 3))
    return SimAccount(tenant_id, joined, daily, count, float(rng.beta(2, core_beta)), "", holiday=holiday)


def _drawn(
    n: int, *, seed: int, prefix: str, today: date, ages: tuple[int, int], level: tuple[float, float], core_beta: int,
    users: tuple[int, int] = (1, 30), holiday: tuple[date, date] | None = None,
) -> Iterator[tuple[np.random.Generator, SimAccount]]:  # fmt: skip
    """``n`` accounts drawn one after another from one generator seeded with ``seed``, each handed out with
    that generator so its fate is drawn before the next account (the same seed gives the same population)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        account = _account(
            rng,
            f"{prefix}{i:04d}",
            today=today,
            ages=ages,
            level=level,
            users=users,
            core_beta=core_beta,
            holiday=holiday,
        )
        yield rng, account


def _never_onboard(rng: np.random.Generator, a: SimAccount) -> None:
    """A young account that never onboards: no core value, leaves within its first two months."""
    a.core_share, a.mechanism = 0.0, "never_onboard"
    a.churn_day = a.joined + timedelta(days=int(rng.integers(20, 60)))


def _quiet_churn(
    rng: np.random.Generator, a: SimAccount, *, today: date, level_ref: float, exponent: float, daily: float,
    youth: float,
) -> None:  # fmt: skip
    """A steady daily hazard, ``daily`` at the level ``level_ref`` and higher below it (the power ``exponent``),
    ``1 + youth`` times higher in the first weeks; nothing changes in the account's use before the churn."""
    scale = (a.level / level_ref) ** -exponent

    def hazard(age: int) -> float:
        return daily * scale * (1 + youth * math.exp(-age / 40))

    a.churn_day = _hazard_churn(rng, joined=a.joined, end=today, daily=hazard)
    a.mechanism = "quiet" if a.churn_day else ""


def _seen_by(a: SimAccount, today: date) -> SimAccount:
    """The account as seen today: a churn not yet happened is no churn."""
    if a.churn_day and a.churn_day > today:
        a.churn_day, a.mechanism = None, ""
    return a


def quiet_base(n: int, *, seed: int, today: date, history_days: int = 330) -> list[SimAccount]:
    """Churners are quietly low: low-use and young accounts carry the hazard; no decline."""
    out = []
    for rng, account in _drawn(
        n, seed=seed, prefix="q", today=today, ages=(20, history_days), level=(3.0, 0.9), core_beta=5
    ):
        if rng.random() < 0.12 and (today - account.joined).days < 150:
            _never_onboard(rng, account)
        else:
            _quiet_churn(rng, account, today=today, level_ref=3.0, exponent=0.9, daily=0.0012, youth=3.0)
        out.append(_seen_by(account, today))
    return out


def decay_base(n: int, *, seed: int, today: date, history_days: int = 330) -> list[SimAccount]:
    """Churners decay, hit a friction spell, or leave at random; levels vary widely."""
    out = []
    for rng, account in _drawn(
        n, seed=seed, prefix="d", today=today, ages=(60, history_days), level=(4.0, 0.8), core_beta=4
    ):
        if rng.random() < 0.3:
            account.mechanism = str(rng.choice(["decay", "decay", "friction_spell", "random"]))
            earliest = max(account.joined + timedelta(days=50), today - timedelta(days=history_days - 60))
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


def _onset_churn(rng: np.random.Generator, a: SimAccount, *, today: date, history_days: int, onset: range) -> None:
    """A churn day for ``a`` late enough in the history for its onset to be seen, and the onset."""
    earliest = max(a.joined + timedelta(days=onset.stop + 7), today - timedelta(days=history_days - 60))
    span = (today - earliest).days
    if span <= 0:
        a.mechanism = ""
        return
    a.churn_day = earliest + timedelta(days=int(rng.integers(0, span)))
    a.onset_days = int(rng.integers(onset.start, onset.stop))


def mixed_base(n: int, *, seed: int, today: date, history_days: int = 330) -> list[SimAccount]:
    """Every mechanism of the module docstring but ``seats`` together: a quiet hazard falling with the level
    and higher for young accounts, young accounts that never onboard, decay, friction spells, random churn."""
    out = []
    for rng, a in _drawn(n, seed=seed, prefix="m", today=today, ages=(20, history_days), level=(4.0, 0.9), core_beta=4):
        draw = rng.random()
        if draw < 0.08 and (today - a.joined).days < 150:
            _never_onboard(rng, a)
        elif draw < 0.30 and (today - a.joined).days > 80:
            a.mechanism = str(rng.choice(["decay", "friction_spell", "random"], p=[0.45, 0.35, 0.2]))
            _onset_churn(rng, a, today=today, history_days=history_days, onset=range(21, 50))
        else:
            _quiet_churn(rng, a, today=today, level_ref=4.0, exponent=0.8, daily=0.0007, youth=2.0)
        out.append(_seen_by(a, today))
    return out


def seats_base(n: int, *, seed: int, today: date, history_days: int = 330) -> list[SimAccount]:
    """Churn by losing users while the volume holds, on heavy-tailed account sizes, with a holiday dip for
    everyone and a quarter of the churners leaving at random (see the module docstring)."""
    holiday = (today - timedelta(days=HOLIDAY_DAYS_AGO[0]), today - timedelta(days=HOLIDAY_DAYS_AGO[1]))
    out = []
    for rng, a in _drawn(
        n,
        seed=seed,
        prefix="s",
        today=today,
        ages=(60, history_days),
        level=(4.0, 1.4),
        core_beta=4,
        users=(2, 60),
        holiday=holiday,
    ):
        if rng.random() < 0.25 and (today - a.joined).days > 100:
            a.mechanism = "seats" if a.users >= 3 and rng.random() < 0.75 else "random"
            _onset_churn(rng, a, today=today, history_days=history_days, onset=range(42, 71))
        out.append(a)
    return out


def _day_rows(rng: np.random.Generator, a: SimAccount, day: date) -> list[tuple[str, str, str, datetime]]:
    """(event_type, user_id, session_id, occurred_at) of one account's day."""
    level = a.level * WEEKDAY_FACTOR[day.weekday()] * float(rng.lognormal(0, 0.3))
    if a.holiday is not None and a.holiday[0] <= day <= a.holiday[1]:
        level *= HOLIDAY_FACTOR
    friction_extra = 0
    users = a.users
    if a.churn_day is not None and a.mechanism in ("decay", "friction_spell", "seats"):
        before = (a.churn_day - day).days
        if before < a.onset_days:
            if a.mechanism == "decay":
                level *= max(0.05, before / a.onset_days)
            elif a.mechanism == "seats":
                users = max(1, round(a.users * before / a.onset_days))
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
        user = f"u{int(rng.integers(0, users))}"
        rows.append((kind, user, f"{user}-{day.isoformat()}", base + timedelta(minutes=int(rng.integers(0, 600)))))
    for k in range(n_friction + friction_extra):
        user = f"u{int(rng.integers(0, users))}"
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
