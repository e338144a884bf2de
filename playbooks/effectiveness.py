"""Whether a playbook helped: ``playbook_effectiveness``, read by the Playbooks page and API.

Effectiveness (``playbook_effectiveness``), per playbook P, with T = today:

* treated tenants: tenants with at least one InterventionRecord for P; their
  anchor is the date of the FIRST such intervention, their outcome the latest
  recorded one. ``times_applied`` counts the intervention records.
* period: first to last anchor of the treated tenants (with none yet: the
  whole recorded risk history up to T).
* comparison group: customers flagged for P in the period (P matched, or
  ``risk_level`` equal to P's level, on some day of ``ops_tenant_risk_day``),
  anchored at their first such day, with NO intervention of any kind recorded
  on or after that anchor, and not treated with P.
* retained at H days (30, 60): only tenants with anchor + H <= T count
  (``evaluable``); a tenant is retained when no ChurnRecord falls in
  [anchor, anchor + H] and, for treated tenants, the recorded outcome (if any)
  is retained or expanded.

Observational, not an experiment: the founder chose whom to help, so the
groups can differ in ways the numbers do not show.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from django.db import connection
from django.db.models import Max, Min
from django.utils import timezone

from core.rows import rows_as_dicts
from playbooks.models import ChurnRecord, InterventionRecord, Outcome, Playbook, PlaybookPurpose, TenantRiskDay
from playbooks.selectors import playbooks_all

HORIZONS = (30, 60)
OBSERVATIONAL_NOTE = (
    "Observational, not an experiment: the founder chose whom to help, so treated and comparison tenants may "
    "differ in ways these numbers do not show. Read it as a hint of what works, never as proof."
)


def _churn_dates() -> dict[str, list[date]]:
    out: dict[str, list[date]] = defaultdict(list)
    for tenant_id, day in ChurnRecord.objects.values_list("tenant_id", "date"):
        out[tenant_id].append(day)
    return out


def _retention(
    anchors: dict[str, tuple[date, str | None]], *, churns: dict[str, list[date]], today: date, horizon: int
) -> dict[str, Any]:
    evaluable = retained = 0
    for tenant_id, (anchor, outcome) in anchors.items():
        end = anchor + timedelta(days=horizon)
        if end > today:
            continue  # not followed for long enough yet
        evaluable += 1
        churned = any(anchor <= d <= end for d in churns.get(tenant_id, []))
        if not churned and outcome not in (Outcome.CHURNED, Outcome.NO_RESPONSE):
            retained += 1
    return {
        "evaluable": evaluable,
        "retained": retained,
        "share": round(retained / evaluable, 3) if evaluable else None,
    }


# Uses index: the primary key of ops_tenant_risk_day, (tenant_id, day), per tenant, and customers_tenant's by
# tenant_id; the period's rows are one per at-risk customer and day, so the scan stays small.
FLAGGED_FIRST_DAYS_SQL = """
SELECT d.tenant_id, min(d.day) AS first_day FROM ops_tenant_risk_day d
JOIN customers_tenant t ON t.tenant_id = d.tenant_id AND t.kind = 'customer'
WHERE d.day BETWEEN %s AND %s AND (d.risk_level = %s OR d.playbooks @> jsonb_build_array(%s::text))
GROUP BY d.tenant_id
"""


def _flagged_first_days(*, playbook: Playbook, start: date, end: date) -> dict[str, date]:
    """First day in [start, end] each customer was flagged for the playbook (matched it, or at its level)."""
    with connection.cursor() as cursor:
        cursor.execute(FLAGGED_FIRST_DAYS_SQL, [start, end, playbook.risk_level, playbook.pk])
        return {row["tenant_id"]: row["first_day"] for row in rows_as_dicts(cursor)}


def playbook_effectiveness(*, today: date | None = None) -> list[dict[str, Any]]:
    """Per playbook: times applied and retention at 30/60 days against an observational
    comparison group. Definitions in the module docstring."""
    today = today or timezone.localdate()
    playbooks = playbooks_all(purpose=PlaybookPurpose.RISK)
    churns = _churn_dates()
    latest_intervention = dict(
        InterventionRecord.objects.values("tenant_id").annotate(last=Max("date")).values_list("tenant_id", "last")
    )
    history_start = TenantRiskDay.objects.aggregate(first=Min("day"))["first"]
    by_playbook: dict[str | None, list[InterventionRecord]] = defaultdict(list)
    for record in InterventionRecord.objects.filter(playbook__isnull=False).order_by("date", "id"):
        by_playbook[record.playbook_id].append(record)

    out = []
    for playbook in playbooks:
        records = by_playbook.get(playbook.pk, [])
        treated: dict[str, tuple[date, str | None]] = {}
        latest_outcome: dict[str, tuple[date, int, str]] = {}
        outcomes = dict.fromkeys([*Outcome.values, "not_recorded"], 0)
        for record in records:
            if record.tenant_id not in treated:
                treated[record.tenant_id] = (record.date, None)
            outcomes[record.outcome or "not_recorded"] += 1
            if record.outcome:
                key = (record.outcome_at or record.date, record.pk, record.outcome)
                if record.tenant_id not in latest_outcome or key > latest_outcome[record.tenant_id]:
                    latest_outcome[record.tenant_id] = key
        treated = {
            t: (anchor, latest_outcome[t][2] if t in latest_outcome else None) for t, (anchor, _) in treated.items()
        }

        if treated:
            period_start = min(a for a, _ in treated.values())
            period_end = max(a for a, _ in treated.values())
        else:
            period_start, period_end = history_start, today
        comparison: dict[str, tuple[date, str | None]] = {}
        if period_start is not None:
            for tenant_id, anchor in _flagged_first_days(playbook=playbook, start=period_start, end=period_end).items():
                if tenant_id in treated:
                    continue
                last = latest_intervention.get(tenant_id)
                if last is not None and last >= anchor:
                    continue  # helped after being flagged: not an untreated comparison
                comparison[tenant_id] = (anchor, None)

        out.append(
            {
                "playbook_id": playbook.pk,
                "name": playbook.name,
                "risk_level": playbook.risk_level,
                "times_applied": len(records),
                "outcomes": outcomes,
                "period_start": period_start,
                "period_end": period_end,
                "treated": {
                    "tenants": len(treated),
                    **{f"retained_{h}d": _retention(treated, churns=churns, today=today, horizon=h) for h in HORIZONS},
                },
                "comparison": {
                    "tenants": len(comparison),
                    **{
                        f"retained_{h}d": _retention(comparison, churns=churns, today=today, horizon=h)
                        for h in HORIZONS
                    },
                },
                "observational_note": OBSERVATIONAL_NOTE,
            }
        )
    return out
