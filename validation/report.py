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

from customers.models import TenantKind
from playbooks.models import ChurnRecord
from validation.engine import AT_RISK_THRESHOLD, RISK_COMPONENTS, weights_in_force
from validation.figures import Churns, Scored, auc, labelled, lead_days, lift_by_decile, matching_threshold
from validation.figures import ranking_figures as figures_of
from validation.learned import BETTER_AUC_MARGIN, Row, learned_component_weights, model_fit, model_payload
from validation.models import BacktestRun, BacktestScore

BLIND_SPOT_DAYS = 30


def recorded_churns() -> Churns:
    """Every recorded churn of a customer, by tenant (the labels of the backtest)."""
    out: Churns = defaultdict(list)
    for tenant_id, day in ChurnRecord.objects.filter(tenant__kind=TenantKind.CUSTOMER).values_list("tenant_id", "date"):
        out[tenant_id].append(day)
    return dict(out)


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


def backtest_report(run: BacktestRun) -> dict[str, Any]:
    churns = recorded_churns()
    rows = list(
        BacktestScore.objects.filter(run=run)
        .order_by("as_of", "tenant_id")
        .values("as_of", "tenant_id", "risk_signal_strength", "components", "features", "learned_scores")
    )
    observed_through = run.end_day
    heuristic = [Scored(r["as_of"], r["tenant_id"], r["risk_signal_strength"]) for r in rows]
    horizons = []
    for horizon in run.horizons:
        learned = [
            Scored(r["as_of"], r["tenant_id"], r["learned_scores"][str(horizon)])
            for r in rows
            if r["learned_scores"] and str(horizon) in r["learned_scores"]
        ]
        horizons.append(
            {
                "days": horizon,
                "heuristic": figures_of(
                    heuristic, churns, horizon=horizon, threshold=AT_RISK_THRESHOLD, observed_through=observed_through
                ),
                "learned": _learned_block(
                    heuristic, learned, churns, horizon=horizon, observed_through=observed_through
                ),
                "lift_by_decile": lift_by_decile(heuristic, churns, horizon=horizon, observed_through=observed_through),
            }
        )
    first = run.horizons[0]
    components = []
    for signal in RISK_COMPONENTS:
        labelled_rows = labelled(
            [Scored(r["as_of"], r["tenant_id"], r["components"].get(signal, 0.0)) for r in rows],
            churns,
            horizon=first,
            observed_through=observed_through,
        )
        components.append(
            {"signal": signal, "auc": auc([s.score for s, _ in labelled_rows], [label for _, label in labelled_rows])}
        )

    fitted = model_fit(
        [Row(r["as_of"], r["tenant_id"], r["features"]) for r in rows],
        churns,
        horizon=first,
        before=observed_through + timedelta(days=1),
        min_churns=settings.MIN_CHURNS_FOR_TRUST,
    )
    largest = max(run.horizons)
    _, blind = lead_days(heuristic, churns, horizon=largest, threshold=AT_RISK_THRESHOLD)
    by_tenant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
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
        "as_of_dates": sorted({r["as_of"].isoformat() for r in rows}),
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
