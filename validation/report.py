"""The backtest's report: every figure of ``GET /ops/validation/backtest`` and the Validation
page, computed from a run's stored scores and the recorded churns (validation/figures.py
defines each figure). Computed when a run finishes and kept on it, because it fits the
final model over every score; anyone can recompute it from ``/ops/validation/backtest/scores``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection

from core.memory import heap_release
from core.rows import row_as_dict
from customers.models import TenantKind
from playbooks.models import ChurnRecord
from validation.engine import AT_RISK_THRESHOLD, risk_components, weights_in_force
from validation.features import feature_names
from validation.figures import (
    Churns,
    Rows,
    auc_interval,
    evaluable_labels,
    figures_of,
    lead_times,
    lift_by_decile,
    matching_threshold,
    quartiles,
    shuffled_within_dates,
)
from validation.figures import auc as auc_of
from validation.learned import FEATURE_DTYPE, RANKED_BY_HEURISTIC, RANKED_BY_MODEL, ScoreTable, model_fit
from validation.model_words import learned_component_weights, model_definition, model_payload
from validation.models import BacktestRun, BacktestScore

BLIND_SPOT_DAYS = 30
ADOPTED_HORIZON_DAYS = 30
# One as-of date of a run, as one row of arrays in tenant order: its primary key's order (run_id,
# as_of, tenant_id), so the read is a range scan of the key and the arrays need no sort of their
# own. A date is 10,000 customers at most a few MB; the whole run is never in Python objects at once.
# {features}: one float per feature (0 when a score lacks it); {learned}: one per horizon (NULL: none).
RUN_DATE_SCORES_SQL = """
SELECT array_agg(s.tenant_id ORDER BY s.tenant_id) AS tenant_ids,
       array_agg(s.risk_signal_strength ORDER BY s.tenant_id) AS risk_signal_strength,
       array_agg(ARRAY[{features}] ORDER BY s.tenant_id) AS features,
       array_agg(ARRAY[{learned}] ORDER BY s.tenant_id) AS learned,
       array_agg(ARRAY[{ranking}] ORDER BY s.tenant_id) AS ranking,
       array_agg(ARRAY[{ranked_by}] ORDER BY s.tenant_id) AS ranked_by
FROM ops_backtest_score s
WHERE s.run_id = %(run)s AND s.as_of = %(as_of)s
"""


def _run_date_scores_sql(*, features: int, horizons: int) -> str:
    return RUN_DATE_SCORES_SQL.format(
        features=", ".join(f"COALESCE((s.features ->> %(f{i})s)::float8, 0)" for i in range(features)),
        learned=", ".join(f"(s.learned_scores ->> %(h{i})s)::float8" for i in range(horizons)),
        ranking=", ".join(f"(s.ranking_scores ->> %(h{i})s)::float8" for i in range(horizons)),
        ranked_by=", ".join(
            f"COALESCE((s.ranking_models ->> %(h{i})s) = '{RANKED_BY_MODEL}', false)::int::float8"
            for i in range(horizons)
        ),
    )


def run_score_table(run: BacktestRun) -> ScoreTable:
    """The run's stored scores as arrays, read date by date (see RUN_DATE_SCORES_SQL)."""
    names = feature_names()
    horizons = list(run.horizons)
    sql = _run_date_scores_sql(features=len(names), horizons=len(horizons))
    params: dict[str, Any] = {
        "run": run.pk,
        **{f"f{i}": name for i, name in enumerate(names)},
        **{f"h{i}": str(h) for i, h in enumerate(horizons)},
    }
    parts = []
    with connection.cursor() as cursor:
        for as_of in sorted(date.fromisoformat(d) for d in run.dates_done):
            cursor.execute(sql, {**params, "as_of": as_of})
            row = row_as_dict(cursor)
            if row["tenant_ids"] is None:
                continue  # a date with no customer yet
            tenant_ids = np.asarray(row["tenant_ids"], dtype=str)
            # Python's order of the ids, not the database collation's: the order the backtest
            # scored them in, so a fit's floating-point sums are the same either way.
            order = np.argsort(tenant_ids, kind="stable")
            learned = np.asarray(row["learned"], dtype=float).reshape(-1, len(horizons))[order]  # NULL: NaN
            ranking = np.asarray(row["ranking"], dtype=float).reshape(-1, len(horizons))[order]
            ranked_by = np.asarray(row["ranked_by"], dtype=float).reshape(-1, len(horizons))[order]
            parts.append(
                ScoreTable(
                    Rows.of(np.full(len(order), as_of.toordinal(), dtype=np.int64), tenant_ids[order]),
                    np.asarray(row["features"], dtype=FEATURE_DTYPE).reshape(-1, len(names))[order],
                    names,
                    np.asarray(row["risk_signal_strength"], dtype=float)[order],
                    {h: np.ascontiguousarray(learned[:, i]) for i, h in enumerate(horizons)},
                    {h: np.ascontiguousarray(ranking[:, i]) for i, h in enumerate(horizons)},
                    {h: np.ascontiguousarray(ranked_by[:, i]) for i, h in enumerate(horizons)},
                )
            )
    return ScoreTable.concatenate(parts, names=names, horizons=horizons)


def recorded_churns() -> Churns:
    """Every recorded churn of a customer, by tenant (the labels of the backtest)."""
    out: Churns = defaultdict(list)
    for tenant_id, day in ChurnRecord.objects.filter(tenant__kind=TenantKind.CUSTOMER).values_list("tenant_id", "date"):
        out[tenant_id].append(day)
    return dict(out)


def _component_aucs(table: ScoreTable, marks: np.ndarray) -> list[dict[str, Any]]:
    """Each component's own AUC over the evaluable observations (``marks``: evaluable_labels of the
    table's rows). A component's points are stored as the feature ``<signal>_points``
    (validation/engine.py), the same numbers as the score's ``components``."""
    evaluable = marks >= 0
    truth = marks[evaluable] == 1
    return [
        {"signal": signal, "auc": auc_of(table.column(f"{signal}_points")[evaluable], truth)}
        for signal in risk_components()
    ]


def _learned_block(table: ScoreTable, churns: Churns, *, horizon: int, observed_through: date) -> dict[str, Any] | None:
    """The learned score's figures beside the heuristic's on the same observations, compared at the same
    number of customers flagged (the learned threshold flags as many as the at-risk threshold does)."""
    scored = ~np.isnan(table.learned[horizon])
    if not scored.any():
        return None
    rows, learned, heuristic = table.rows.subset(scored), table.learned[horizon][scored], table.strength[scored]
    evaluable = evaluable_labels(rows, churns, horizon=horizon, observed_through=observed_through) >= 0
    flags = int((heuristic[evaluable] >= AT_RISK_THRESHOLD).sum())
    threshold = matching_threshold(learned[evaluable], flags=flags)
    window = {"horizon": horizon, "observed_through": observed_through}
    figures = figures_of(rows, learned, churns, threshold=threshold, **window)
    baseline = figures_of(rows, heuristic, churns, threshold=AT_RISK_THRESHOLD, **window)
    learned_interval = auc_interval(rows, learned, churns, **window)
    heuristic_interval = auc_interval(rows, heuristic, churns, **window)
    # Better only when the learned score's interval lies wholly above the heuristic's point estimate.
    better = (
        figures["auc"] is not None
        and baseline["auc"] is not None
        and learned_interval is not None
        and learned_interval[0] > baseline["auc"]
    )
    return {
        **figures,
        "auc_interval": learned_interval,
        "threshold": threshold if flags else None,
        "heuristic_on_same_dates": {**baseline, "auc_interval": heuristic_interval},
        "verdict": "better" if better else "no better",
    }


def _ranking_block(table: ScoreTable, churns: Churns, *, horizon: int, observed_through: date) -> dict[str, Any]:
    """The score that ordered the list on each date: its figures, the AUC's interval, its lead time beside
    the lead time of the same scores shuffled within each date (chance), and how many dates the model ordered."""
    window = {"horizon": horizon, "observed_through": observed_through}
    scores = table.ranking[horizon]
    by_model = table.ranked_by_model[horizon] > 0
    # The heuristic's threshold on its own scale, the model's flagging as many as the heuristic would.
    flags = int((table.strength >= AT_RISK_THRESHOLD).sum())
    threshold = matching_threshold(scores, flags=flags)
    figures = figures_of(table.rows, scores, churns, threshold=threshold, **window)
    shuffled = shuffled_within_dates(table.rows, scores, seed=horizon)
    chance_leads, _ = lead_times(table.rows, shuffled, churns, horizon=horizon, threshold=threshold)
    dates = np.unique(table.rows.day)
    model_dates = np.unique(table.rows.day[by_model])
    return {
        **figures,
        "auc_interval": auc_interval(table.rows, scores, churns, **window),
        "lead_days_by_chance": quartiles(chance_leads),
        "threshold": threshold if flags else None,
        "as_of_dates_ordered_by_model": int(model_dates.size),
        "as_of_dates_total": int(dates.size),
        "ordered_by": RANKED_BY_MODEL
        if model_dates.size and model_dates.size == dates.size
        else ("mixed" if model_dates.size else "spec"),
    }


def _horizon_block(table: ScoreTable, churns: Churns, *, horizon: int, observed_through: date) -> dict[str, Any]:
    """One horizon's figures: the heuristic's, the learned model's, the ranking's and the lift by decile."""
    rows, strength = table.rows, table.strength
    return {
        "days": horizon,
        "heuristic": {
            **figures_of(
                rows, strength, churns, threshold=AT_RISK_THRESHOLD, horizon=horizon, observed_through=observed_through
            ),
            "auc_interval": auc_interval(rows, strength, churns, horizon=horizon, observed_through=observed_through),
        },
        "learned": _learned_block(table, churns, horizon=horizon, observed_through=observed_through),
        "ranking": _ranking_block(table, churns, horizon=horizon, observed_through=observed_through),
        "lift_by_decile": lift_by_decile(rows, strength, churns, horizon=horizon, observed_through=observed_through),
    }


def _blind_spots(run: BacktestRun, table: ScoreTable, churns: Churns) -> list[dict[str, Any]]:
    """The churns the heuristic never raised at the longest horizon, with their last days' scores and features."""
    rows = table.rows
    largest = max(run.horizons)
    _, blind = lead_times(rows, table.strength, churns, horizon=largest, threshold=AT_RISK_THRESHOLD)
    by_tenant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in (
        BacktestScore.objects.filter(run=run, tenant_id__in={t for t, _ in blind})
        .order_by("as_of")
        .values("as_of", "tenant_id", "risk_signal_strength", "features")
    ):
        by_tenant[r["tenant_id"]].append(r)
    return [
        {
            "tenant_id": tenant_id,
            "churned_on": churn_day.isoformat(),
            "last_days": [
                {
                    "as_of": r["as_of"].isoformat(),
                    "risk_signal_strength": r["risk_signal_strength"],
                    "events_7d": r["features"].get("events_7d"),
                    "stickiness_delta": r["features"].get("stickiness_delta"),
                    "friction_score": r["features"].get("friction_score"),
                    "days_since_core_value": r["features"].get("days_since_core_value"),
                }
                for r in by_tenant.get(tenant_id, [])
                if churn_day - timedelta(days=BLIND_SPOT_DAYS) <= r["as_of"] < churn_day
            ],
        }
        for tenant_id, churn_day in blind
    ]


def _few_churns_warning(churns_used: int, minimum: int) -> str | None:
    """What the report says when the window holds fewer churns than it takes to trust the figures."""
    if churns_used >= minimum:
        return None
    return (
        "No churn in the backtest window: nothing to judge the risk signal against or learn weights from."
        if churns_used == 0
        else f"Only {churns_used} churn{'s' if churns_used != 1 else ''} in the backtest window: too few "
        "to judge the risk signal or learn weights."
    ) + f" Until at least {minimum} are recorded, read the risk levels as an attention ranking, not a prediction."


def _window_of(table: ScoreTable, run: BacktestRun) -> ScoreTable:
    """The rows of the run's window (from its first date on). The rows are in date order, the training dates
    first, so the window is their tail: views of it, not a second copy of the run's feature matrix."""
    day = table.rows.day
    first = run.start_day.toordinal()
    if len(day) > 1 and (np.diff(day) < 0).any():
        return table.subset(day >= first)
    tail = slice(int(np.searchsorted(day, first)), len(day))
    learned, ranking, ranked_by_model, track = (
        {h: v[tail] for h, v in by.items()} for by in (table.learned, table.ranking, table.ranked_by_model, table.track)
    )
    return ScoreTable(
        Rows(day[tail], table.rows.tenant[tail], table.rows.tenant_ids), table.matrix[tail], table.names,
        table.strength[tail], learned, ranking, ranked_by_model, track,
    )  # fmt: skip


def model_horizon(run: BacktestRun) -> int:
    """The horizon of the model the lists can adopt: the 30-day one (churn_probability_30d) when the run has it."""
    return ADOPTED_HORIZON_DAYS if ADOPTED_HORIZON_DAYS in run.horizons else run.horizons[0]


def backtest_report(run: BacktestRun, *, table: ScoreTable | None = None, last_reader: bool = False) -> dict[str, Any]:
    """The report of a run; ``table`` is its scores when the caller already holds them (run_score_table),
    the training dates before its window included: the model is fitted on every date, the figures are
    of the window's dates only. ``last_reader``: the caller reads ``table``'s features no more, so the final
    fit lets them go once it has copied its sample (``ScoreTable.matrix_release``)."""
    churns = recorded_churns()
    observed_through = run.end_day
    # A table read here has no other reader.
    last_reader = last_reader or table is None
    learned_on = table if table is not None else run_score_table(run)
    table = _window_of(learned_on, run)
    rows = table.rows
    horizons = [_horizon_block(table, churns, horizon=h, observed_through=observed_through) for h in run.horizons]
    first = run.horizons[0]
    components = _component_aucs(
        table, evaluable_labels(rows, churns, horizon=first, observed_through=observed_through)
    )
    as_of_dates = [date.fromordinal(int(d)).isoformat() for d in np.unique(rows.day)]
    blind_spots = _blind_spots(run, table, churns)
    # The window's views of the features go before the final fit, which may then let the features go.
    del table, rows
    # The figures' bootstrap arrays are freed by now; the fit's working copies come on top of the whole table,
    # the run's largest moment, so the heap's free pages go back first (core/memory.py).
    heap_release()
    fitted = model_fit(
        learned_on,
        churns,
        horizon=model_horizon(run),
        before=observed_through + timedelta(days=1),
        min_churns=settings.MIN_CHURNS_FOR_TRUST,
        last_reader=last_reader,
    )
    churns_used = sum(1 for days in churns.values() for d in days if run.start_day < d <= run.end_day)
    minimum = settings.MIN_CHURNS_FOR_TRUST
    return {
        "run_id": run.pk,
        "as_of_dates": as_of_dates,
        "churns_used": churns_used,
        "minimum_churns_for_trust": minimum,
        "warning": _few_churns_warning(churns_used, minimum),
        "weights_in_force": weights_in_force(),
        "at_risk_threshold": AT_RISK_THRESHOLD,
        "horizons": horizons,
        # The score that ordered the list, at the first horizon (every horizon's is in "horizons").
        "ranking": {"days": first, **horizons[0]["ranking"]} if horizons else None,
        "components": components,
        "model": model_payload(fitted) if fitted is not None else None,
        # What the live engine scores with once adopted (customers.ChurnModel), and which score the past chose.
        "model_definition": model_definition(fitted) if fitted is not None else None,
        "ranking_choice": fitted.selection.chosen
        if fitted is not None and fitted.selection is not None
        else RANKED_BY_HEURISTIC,
        "learned_component_weights": learned_component_weights(fitted) if fitted is not None else None,
        "blind_spots": blind_spots,
    }
