"""The churn fact the metrics engine reads: a churned customer is on no at-risk list.

``Tenant.churned_at`` is the day of the customer's latest recorded churn (the
playbooks app records churns through its one churn service, which calls
``customers.founder_actions.tenants_churned_set``; this app never
imports it). A churned tenant with no real activity after that day is "gone":
every recompute settles its metrics row to "not at risk" (``churned_tenants_settle``,
called by the engine in one line after it writes the rows), so it leaves the
at-risk API and CSV, Today, the weekly check-in, the alerts and the Prometheus
gauge, while its history (risk days, interventions, churns) is kept. Real
activity on a later day makes it "came back": the engine's own assessment
stands again and the follow-up list marks it.

The rollups hold real events only, so ``ops_tenant_metrics.last_seen_at`` is the
last real event of the tenant and "activity after the churn" is real activity.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from django.db import connection

from core.rows import rows_as_dicts

# The settle statement: the gone tenants' rows become "not at risk". Idempotent (rows already
# settled are not touched, so a run with nothing new writes nothing). ``unraised`` is cleared
# so the playbooks hook can never "undo" a raise back onto a churned customer.
# Uses index: ops_tenant_churned (partial, churned tenants only), then ops_tenant_metrics' pkey.
CHURNED_SETTLE_SQL = """
UPDATE ops_tenant_metrics tm
SET risk_level = NULL, primary_risk_reason = '', secondary_signals = '[]'::jsonb,
    interventions = '[]'::jsonb, unraised = NULL
FROM customers_tenant t
WHERE t.churned_at IS NOT NULL AND tm.tenant_id = t.tenant_id
  AND (tm.last_seen_at IS NULL OR (tm.last_seen_at AT TIME ZONE 'UTC')::date <= t.churned_at)
  AND (tm.risk_level IS NOT NULL OR tm.interventions <> '[]'::jsonb OR tm.unraised IS NOT NULL
       OR tm.secondary_signals <> '[]'::jsonb OR tm.primary_risk_reason <> '')
"""

# Churned tenants and whether they came back (real activity on a day after the churn).
# Uses index: ops_tenant_churned.
CHURNED_TENANTS_SQL = """
SELECT t.tenant_id, t.churned_at,
       COALESCE((tm.last_seen_at AT TIME ZONE 'UTC')::date > t.churned_at, false) AS came_back
FROM customers_tenant t
LEFT JOIN ops_tenant_metrics tm ON tm.tenant_id = t.tenant_id
WHERE t.churned_at IS NOT NULL
"""


def churn_came_back(*, churned_on: date | None, last_seen_at: datetime | None) -> bool:
    """Real activity on a UTC day after the churn day: the Python twin of ``came_back`` in
    CHURNED_TENANTS_SQL, for a page that already holds the tenant and its metrics row."""
    return churned_on is not None and last_seen_at is not None and last_seen_at.astimezone(UTC).date() > churned_on


def churned_tenants_settle() -> int:
    """Settle every gone tenant's metrics row to "not at risk"; returns the rows changed.

    Called by the metrics engine right after it writes ``ops_tenant_metrics`` and before
    the post-recompute hooks, in the run's transaction.
    """
    with connection.cursor() as cursor:
        cursor.execute(CHURNED_SETTLE_SQL)
        return cursor.rowcount


def churned_tenants() -> dict[str, tuple[date, bool]]:
    """tenant_id -> (churned_at, came_back) for every churned tenant. One query."""
    with connection.cursor() as cursor:
        cursor.execute(CHURNED_TENANTS_SQL)
        rows = rows_as_dicts(cursor)
    return {r["tenant_id"]: (r["churned_at"], bool(r["came_back"])) for r in rows}


def churned_gone_ids() -> set[str]:
    """Churned tenants with no real activity since: on no at-risk list and matched by no playbook."""
    return {tenant_id for tenant_id, (_, came_back) in churned_tenants().items() if not came_back}
