"""The one daily formula: a tenant's day summary (events, weighted engagement, friction, capped score).

``ops_rollup_tenant_day_summary`` holds one row per tenant and UTC day with the
registry's weights and the friction caps applied, as exact ``numeric`` sums. The
fold adds to it (fold.py), a registry edit rebuilds it from the day counts
(``summary_rebuild``), and every reader (the signals query, playbook conditions,
the Customer page's daily series) reads these rows: the formula is written once,
here.

Engagement: sum(count x engagement_weight). Friction: per session,
sum(count x friction_weight) capped at FRICTION_CAP_PER_SESSION; per day, the
sessions' sum capped at FRICTION_CAP_PER_DAY. ``policy_blocks`` counts the types
whose friction signal is ``blocked`` and ``failures`` those whose signal is
``system_issue`` (the registry's roles, never type names).
"""

from __future__ import annotations

from django.db import connection

from customers.metrics.friction import FRICTION_CAP_PER_DAY, FRICTION_CAP_PER_SESSION
from events.models import FrictionSignal

# The day summaries (customers.models.TenantDaySummary): one row per tenant and day, weights applied.
SUMMARY_TABLE = "ops_rollup_tenant_day_summary"
SUMMARY_COLUMNS = "tenant_id, day, events, engagement, friction_events, policy_blocks, failures, friction_score"
# The columns a fold adds to an existing day row (the score is recomputed from the day's sessions).
SUMMARY_ADDITIVE = ("events", "engagement", "friction_events", "policy_blocks", "failures")
SUMMARY_PARAMS = {
    "blocked_signal": FrictionSignal.BLOCKED.value,
    "system_issue_signal": FrictionSignal.SYSTEM_ISSUE.value,
    "session_cap": FRICTION_CAP_PER_SESSION,
    "day_cap": FRICTION_CAP_PER_DAY,
}

# Each session's capped friction on a day; {where} narrows it (a tenant-day, or nothing).
# Uses the primary key of ops_rollup_session_friction (tenant_id, day, session_key, event_type).
_SESSION_SCORES_SQL = """SELECT f.tenant_id, f.day, LEAST(sum(f.value * et.friction_weight::numeric), %(session_cap)s::numeric) AS score
              FROM ops_rollup_session_friction f JOIN events_eventtype et ON et.name = f.event_type
              WHERE et.friction_weight > 0{where} GROUP BY f.tenant_id, f.day, f.session_key"""

_SUMMARY_SELECT_SQL = """
SELECT g.tenant_id, g.day, g.events, g.engagement, g.friction_events, g.policy_blocks, g.failures,
       COALESCE(fs.score, 0) AS friction_score
FROM (SELECT s.tenant_id, s.day, sum(s.n) AS events,
             sum(s.n * COALESCE(et.engagement_weight, 0)::numeric) AS engagement,
             COALESCE(sum(s.n) FILTER (WHERE et.friction_weight > 0), 0) AS friction_events,
             COALESCE(sum(s.n) FILTER (WHERE et.friction_signal = %(blocked_signal)s), 0) AS policy_blocks,
             COALESCE(sum(s.n) FILTER (WHERE et.friction_signal = %(system_issue_signal)s), 0) AS failures
      FROM {source} s LEFT JOIN events_eventtype et ON et.name = s.event_type
      GROUP BY s.tenant_id, s.day) g
{friction_join}"""

# Rebuild from the day counts (no event read): one scan of ops_rollup_tenant_day and the session rollup.
_SUMMARY_TRUNCATE_SQL = f"TRUNCATE {SUMMARY_TABLE}"
_DAY_COUNTS_SOURCE = "(SELECT tenant_id, event_type, day, value AS n FROM ops_rollup_tenant_day)"


def summary_select(source: str, *, friction: str) -> str:
    """SELECT of day summary rows from ``source``'s (tenant_id, event_type, day, n) rows.

    The day's friction score comes from its session counts, which must already be
    folded: ``friction="lateral"`` looks up each (tenant, day) of the result by the
    session rollup's primary key (a fold's few days), ``"join"`` aggregates the whole
    session rollup once (a rebuild). On Citus the lateral look-up runs on each shard when
    ``source`` reads the shard's own events (fold.cluster_day_statements). Weighted sums are
    numeric, so they are exact.
    """
    if friction == "lateral":
        # COALESCE: a day without friction has no session rows, and LEAST ignores a NULL sum.
        friction_join = f"""LEFT JOIN LATERAL (
    SELECT LEAST(COALESCE(sum(x.score), 0), %(day_cap)s::numeric) AS score
    FROM ({_SESSION_SCORES_SQL.format(where=" AND f.tenant_id = g.tenant_id AND f.day = g.day")}) x
) fs ON true"""
    else:
        friction_join = f"""LEFT JOIN (
    SELECT x.tenant_id, x.day, LEAST(sum(x.score), %(day_cap)s::numeric) AS score
    FROM ({_SESSION_SCORES_SQL.format(where="")}) x GROUP BY x.tenant_id, x.day
) fs ON fs.tenant_id = g.tenant_id AND fs.day = g.day"""
    return _SUMMARY_SELECT_SQL.format(source=source, friction_join=friction_join)


def summary_rebuild() -> None:
    """Rebuild the day summaries from the day counts and session counts (after a registry edit)."""
    with connection.cursor() as cursor:
        cursor.execute(_SUMMARY_TRUNCATE_SQL)
        cursor.execute(
            f"INSERT INTO {SUMMARY_TABLE} ({SUMMARY_COLUMNS})"
            + summary_select(_DAY_COUNTS_SOURCE, friction="join")
            + " ORDER BY g.day, g.tenant_id",  # the layout of rows arriving day by day (see fold.py)
            SUMMARY_PARAMS,
        )
