"""A measurement, not a test: store simulated bases, backtest each, and keep its walk-forward table on disk
so ``bench/walkforward_replay.py`` can replay the learning (validation/learned.py) on it in seconds.

Not collected by the suite (its name does not start with ``test_``); run it by name, e.g.::

    WALKFORWARD_DUMP=decay:1,decay:11,quiet:1,variant:1 WALKFORWARD_DUMP_DIR=/tmp/walk \\
        pytest -q -s tests/validation/walkforward_dump.py

Each ``base:seed`` becomes ``<dir>/<base>-<seed>.npz``: every scored date's features and heuristic strength,
the training dates before the window included (what the walk-forward learns from), the recorded churns, the
window and the report's own figures (a replay with unchanged code gives the same list AUC). ``base:seed:accounts``
stores a base of that many accounts (``<base>-<seed>x<accounts>.npz``; ACCOUNTS otherwise): more churns behind each fit. ``variant`` is a
decay/friction base with parameters no test uses, so a change is not tuned to the tests' bases.
"""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import time_machine

import validation.services as services
from tests.customers.conftest import NOW
from tests.validation.simulation import (
    SimAccount,
    _account,
    _quiet_churn,
    _seen_by,
    decay_base,
    mixed_base,
    quiet_base,
    seats_base,
    sim_store,
)
from tests.validation.test_generalisation import ACCOUNTS, _base_clear
from validation.learned import ScoreTable
from validation.report import recorded_churns
from validation.services import backtest_run_execute, backtest_run_prepare

TODAY = NOW.date()
pytestmark = pytest.mark.django_db(transaction=True)


def decay_variant_base(n: int, *, seed: int, today: date, history_days: int = 330) -> list[SimAccount]:
    """Decay and friction spells with other parameters than ``decay_base``: busier and more unequal accounts,
    shorter and longer onsets, more random churn, and a quiet hazard for a tenth of the accounts."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a = _account(
            rng, f"v{i:04d}", today=today, ages=(45, history_days), level=(6.0, 1.0), users=(1, 40), core_beta=3
        )
        if rng.random() < 0.25:
            a.mechanism = str(rng.choice(["decay", "friction_spell", "random"], p=[0.5, 0.3, 0.2]))
            earliest = max(a.joined + timedelta(days=40), today - timedelta(days=history_days - 60))
            span = (today - earliest).days
            if span > 0:
                a.churn_day = earliest + timedelta(days=int(rng.integers(0, span)))
                a.onset_days = int(rng.integers(14, 60)) if a.mechanism == "decay" else int(rng.integers(14, 45))
            else:
                a.mechanism = ""
        elif rng.random() < 0.1:
            _quiet_churn(rng, a, today=today, level_ref=6.0, exponent=0.6, daily=0.0008, youth=1.0)
            a = _seen_by(a, today)
        out.append(a)
    return out


BASES = {
    "decay": decay_base,
    "quiet": quiet_base,
    "mixed": mixed_base,
    "seats": seats_base,
    "variant": decay_variant_base,
}


def _backtest_with_table(base: str, seed: int, accounts: int) -> tuple[dict[str, Any], ScoreTable]:
    """One seeded base stored and backtested: its report and the walk-forward table the report was made from."""
    captured: dict[str, ScoreTable] = {}
    report_of = services.backtest_report

    def capture(run: Any, *, table: ScoreTable | None = None, last_reader: bool = False) -> dict[str, Any]:
        assert table is not None
        captured["table"] = table
        # The dump reads the table's features after the report: they must stay.
        return report_of(run, table=table)

    services.backtest_report = capture  # type: ignore[assignment]
    try:
        with time_machine.travel(NOW, tick=False):
            sim_store(BASES[base](accounts, seed=seed, today=TODAY), seed=seed, today=TODAY)
            run = backtest_run_execute(backtest_run_prepare(days=182, step=7, horizons=[30]))
    finally:
        services.backtest_report = report_of
    return {"report": run.report, "start": run.start_day, "end": run.end_day}, captured["table"]


def test_bases_dumped(settings: Any) -> None:
    settings.METRICS_POST_RECOMPUTE_HOOKS = []
    out = Path(os.environ.get("WALKFORWARD_DUMP_DIR", "/tmp/walkforward"))
    out.mkdir(parents=True, exist_ok=True)
    for spec in os.environ.get("WALKFORWARD_DUMP", "decay:1").split(","):
        base, seed, *size = spec.split(":")
        accounts = int(size[0]) if size else ACCOUNTS
        path = out / (f"{base}-{seed}x{accounts}.npz" if size else f"{base}-{seed}.npz")
        if path.exists():
            continue
        run, table = _backtest_with_table(base, int(seed), accounts)
        churns = {t: [d.toordinal() for d in days] for t, days in recorded_churns().items()}
        ranking = run["report"]["ranking"]
        np.savez_compressed(
            path,
            day=table.rows.day,
            tenant=table.tenant_id_of_rows().astype(str),
            matrix=table.matrix,
            names=np.asarray(table.names),
            strength=table.strength,
            window=np.asarray([run["start"].toordinal(), run["end"].toordinal()]),
            churns=np.asarray(json.dumps(churns)),
            stored=np.asarray([ranking["auc"], ranking["top_decile_lift"]]),
        )
        print(spec, ranking["auc"], ranking["top_decile_lift"], flush=True)
        _base_clear()
