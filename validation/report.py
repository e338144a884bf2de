"""The backtest's report: every figure of ``GET /ops/validation/backtest`` and the Validation
page, computed from a run's stored scores and the recorded churns (validation/figures.py
defines each figure). Computed when a run finishes and kept on it, because it fits the
final model over every score; anyone can recompute it from ``/ops/validation/backtest/scores``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db import connection

from customers.models import TenantKind
from playbooks.models import ChurnRecord
from validation.engine import AT_RISK_THRESHOLD, risk_components, weights_in_force
from validation.figures import Churns, Scored, auc, labelled, labels, lead_days, lift_by_decile, matching_threshold
from validation.figures import ranking_figures as figures_of
from validation.learned import (
    BETTER_AUC_MARGIN,
    FeatureTable,
    feature_table,
    learned_component_weights,
    model_fit,
    model_payload,
)
from validation.models import BacktestRun, BacktestScore

BLIND_SPOT_DAYS = 30
# Rows fetched per round trip while streaming a run's scores (bounds the process's memory).
STREAM_CHUNK = 5_000
# Every risk component's points on every stored score of a run, in the run's primary key order
# (run_id, as_of, tenant_id: a range scan of the run's rows), one column per component.
COMPONENT_POINTS_SQL = """
SELECT {columns} FROM ops_backtest_score s WHERE s.run_id = %(run)s ORDER BY s.as_of, s.tenant_id
"""


def run_feature_table(run: BacktestRun) -> FeatureTable:
    """The run's features, streamed in a fixed order (so the fit's floating-point sums never depend
    on the order rows come back in)."""
    rows = BacktestScore.objects.filter(run=run).order_by("as_of", "tenant_id")
    return feature_table(
        rows.values_list("as_of", "tenant_id", "features").iterator(chunk_size=STREAM_CHUNK), count=rows.count()
    )


def recorded_churns() -> Churns:
    """Every recorded churn of a customer, by tenant (the labels of the backtest)."""
    out: Churns = defaultdict(list)
    for tenant_id, day in ChurnRecord.objects.filter(tenant__kind=TenantKind.CUSTOMER).values_list("tenant_id", "date"):
        out[tenant_id].append(day)
    return dict(out)


def _component_aucs(run: BacktestRun, marks: list[bool | None]) -> list[dict[str, Any]]:
    """Each component's own AUC over the evaluable observations (``marks``: labels in the run's order)."""
    signals = list(risk_components())
    columns = ", ".join(f"COALESCE((s.components ->> %(c{i})s)::float8, 0)" for i in range(len(signals)))
    with connection.cursor() as cursor:
        cursor.execute(
            COMPONENT_POINTS_SQL.format(columns=columns),
            {"run": run.pk, **{f"c{i}": signal for i, signal in enumerate(signals)}},
        )
        rows = cursor.fetchall()
    evaluable = [i for i, label in enumerate(marks) if label is not None]
    truth = [bool(marks[i]) for i in evaluable]
    return [{"signal": signal, "auc": auc([rows[i][k] for i in evaluable], truth)} for k, signal in enumerate(signals)]


def _learned_block(
    heuristic: list[Scored], learned: list[Scored], churns: Churns, *, horizon: int, observed_through: date
) -> dict[str, Any] | None:
    """The learned score's figures beside the heuristic's on the same observations, compared at the same
    number of customers flagged (the learned threshold flags as many as the at-risk threshold does)."""
    if not learned:
        return None
    keys = {(s.as_of, s.tenant_id) for s in learned}
    same = [s for s in heuristic if (s.as_of, s.tenant_id) in keys]
    evaluable = labelled(same, churns, horizon=horizon, observed_through=observed_through)
    flags = sum(1 for s, _ in evaluable if s.score >= AT_RISK_THRESHOLD)
    evaluable_keys = {(s.as_of, s.tenant_id) for s, _ in evaluable}
    threshold = matching_threshold([s for s in learned if (s.as_of, s.tenant_id) in evaluable_keys], flags=flags)
    figures = figures_of(learned, churns, horizon=horizon, threshold=threshold, observed_through=observed_through)
    baseline = figures_of(same, churns, horizon=horizon, threshold=AT_RISK_THRESHOLD, observed_through=observed_through)
    better = (
        figures["auc"] is not None
        and baseline["auc"] is not None
        and figures["auc"] - baseline["auc"] > BETTER_AUC_MARGIN
    )
    return {
        **figures,
        "threshold": threshold if flags else None,
        "heuristic_on_same_dates": baseline,
        "verdict": "better" if better else "no better",
    }


def backtest_report(run: BacktestRun, *, table: FeatureTable | None = None) -> dict[str, Any]:
    """The report of a run; ``table`` is its feature table when the caller already read it."""
    churns = recorded_churns()
    observed_through = run.end_day
    heuristic: list[Scored] = []
    learned_by_horizon: dict[int, list[Scored]] = {h: [] for h in run.horizons}
    dates: dict[date, date] = {}  # one object per distinct date
    for as_of, tenant_id, strength, learned in (
        BacktestScore.objects.filter(run=run)
        .order_by("as_of", "tenant_id")
        .values_list("as_of", "tenant_id", "risk_signal_strength", "learned_scores")
        .iterator(chunk_size=STREAM_CHUNK)
    ):
        as_of = dates.setdefault(as_of, as_of)
        heuristic.append(Scored(as_of, tenant_id, strength))
        for horizon in run.horizons:
            if learned and str(horizon) in learned:
                learned_by_horizon[horizon].append(Scored(as_of, tenant_id, learned[str(horizon)]))
    horizons = []
    for horizon in run.horizons:
        horizons.append(
            {
                "days": horizon,
                "heuristic": figures_of(
                    heuristic, churns, horizon=horizon, threshold=AT_RISK_THRESHOLD, observed_through=observed_through
                ),
                "learned": _learned_block(
                    heuristic, learned_by_horizon[horizon], churns, horizon=horizon, observed_through=observed_through
                ),
                "lift_by_decile": lift_by_decile(heuristic, churns, horizon=horizon, observed_through=observed_through),
            }
        )
    del learned_by_horizon
    first = run.horizons[0]
    components = _component_aucs(run, labels(heuristic, churns, horizon=first, observed_through=observed_through))

    fitted = model_fit(
        table if table is not None else run_feature_table(run),
        churns,
        horizon=first,
        before=observed_through + timedelta(days=1),
        min_churns=settings.MIN_CHURNS_FOR_TRUST,
    )
    largest = max(run.horizons)
    _, blind = lead_days(heuristic, churns, horizon=largest, threshold=AT_RISK_THRESHOLD)
    by_tenant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in (
        BacktestScore.objects.filter(run=run, tenant_id__in={t for t, _ in blind})
        .order_by("as_of")
        .values("as_of", "tenant_id", "risk_signal_strength", "features")
    ):
        by_tenant[r["tenant_id"]].append(r)
    blind_spots = [
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
    churns_used = sum(1 for days in churns.values() for d in days if run.start_day < d <= run.end_day)
    minimum = settings.MIN_CHURNS_FOR_TRUST
    return {
        "run_id": run.pk,
        "as_of_dates": sorted(d.isoformat() for d in dates),
        "churns_used": churns_used,
        "minimum_churns_for_trust": minimum,
        "warning": None
        if churns_used >= minimum
        else (
            f"Only {churns_used} churn{'s' if churns_used != 1 else ''} in the backtest window: too few to judge "
            f"the risk signal or learn weights. Until at least {minimum} are recorded, read the risk levels as an "
            "attention ranking, not a prediction."
        ),
        "weights_in_force": weights_in_force(),
        "at_risk_threshold": AT_RISK_THRESHOLD,
        "horizons": horizons,
        "components": components,
        "model": model_payload(fitted) if fitted is not None else None,
        "learned_component_weights": learned_component_weights(fitted) if fitted is not None else None,
        "blind_spots": blind_spots,
    }
