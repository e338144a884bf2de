"""Real or not: decides ``is_real`` and ``exclusion_reason`` for every event.

Two paths apply the same rules, in the same order (the first match wins):

0. ``unregistered`` — the type is not in the registry (matched case-insensitively): the
   event is parked, kept and never counted, until the name is registered;
1. ``automation_client`` — the event came with an API key marked ``is_automation``;
2. ``internal_tenant`` / ``test_traffic`` / ``demo`` — its tenant's kind is internal / test / demo;
3. ``internal_user`` — its user id, the domain of ``metadata.email``, or the domain of the email
   the product gave the user in an identify call (``ops_user_profiles``), is an internal user rule;
4. ``test_traffic`` / ``demo`` — ``metadata.test`` / ``metadata.demo`` is true (``true``, ``"true"``, ``"1"``, ``"yes"``);
5. ``automation_client`` / ``bot`` — ``metadata.user_agent`` matches an active user-agent pattern
   (the end user's agent as the product forwards it; the HTTP User-Agent of the ingestion
   request is the product's backend and is never looked at);
6. ``single_page_visit`` — a page view (any type the registry marks ``page_view``; seeded:
   PAGE_VIEW) that is the only event of its session, once the session has been quiet for
   ``SINGLE_PAGE_QUIET_MINUTES``.

``classify_batch`` (events/ingestion/classify.py) applies 1-5 in Python at ingestion. Rule 6 needs the whole
session, which ingestion cannot know, so it is applied by the SQL passes below:
``events_reclassify`` (all history, after a rule change and from
``manage.py reclassify_events``) and ``classification_pass`` (periodic,
incremental). ``_REASON_SQL`` is the SQL twin of ``events.ingestion.classify._reason``; a test runs both over
the same events and checks they agree.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from core.flavour import flavour
from core.rows import row_as_dict, rows_as_dicts, value_of, values_of
from events.models import ClassificationState

logger = logging.getLogger(__name__)

# A session whose only event is one page view is judged a single-page visit once it
# has been quiet this long (a second event within it makes the visit real).
SINGLE_PAGE_QUIET_MINUTES = 30
# Rows per UPDATE when reclassifying all history: bounded transactions, resumable.
RECLASSIFY_CHUNK_ROWS = 50_000
# pg_advisory_lock key that keeps two reclassifications from running at once.
RECLASSIFY_LOCK_KEY = 0x0_5EA1_C1A5

# The lock, the snapshot's horizon and the session settings read no table.
LOCK_SQL = "SELECT pg_try_advisory_lock(%s) AS locked"
LOCK_IN_TRANSACTION_SQL = "SELECT pg_try_advisory_xact_lock(%s) AS locked"
UNLOCK_SQL = "SELECT pg_advisory_unlock(%s) AS unlocked"
# Transactions below it have all finished: the next pass re-checks the rows committed from here.
SNAPSHOT_XMIN_SQL = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin"
# JIT compiles the reclassification's wide CASE for every chunk (over a second each) and gains nothing.
JIT_OFF_SQL = "SET LOCAL jit = off"
# The ids the full pass walks in chunks: both ends of the primary key (two index probes).
EVENT_IDS_SQL = "SELECT coalesce(min(id), 0) AS low, coalesce(max(id), -1) AS high FROM ops_events"


# --- Reclassifying history: set-based SQL ------------------------------------------------------
def _flag_sql(name: str) -> str:
    return (
        f"(e.metadata -> '{name}' = 'true'::jsonb OR (jsonb_typeof(e.metadata -> '{name}') = 'string' "
        f"AND lower(e.metadata ->> '{name}') IN ('1', 'true', 'yes')))"
    )


# Expects ops_events AS e and the %(quiet_before)s parameter. Rules are read from their
# tables in the same statement, so an UPDATE sees one consistent set of rules.
_REASON_SQL = f"""
CASE
  WHEN reg.name IS NULL THEN 'unregistered'
  WHEN k.is_automation THEN 'automation_client'
  WHEN t.kind = 'internal' THEN 'internal_tenant'
  WHEN t.kind = 'test' THEN 'test_traffic'
  WHEN t.kind = 'demo' THEN 'demo'
  WHEN (e.user_id <> '' AND EXISTS (SELECT 1 FROM events_internaluserrule r
                                    WHERE r.kind = 'user_id' AND r.value = e.user_id))
    OR (jsonb_typeof(e.metadata -> 'email') = 'string' AND strpos(e.metadata ->> 'email', '@') > 0
        AND EXISTS (SELECT 1 FROM events_internaluserrule r
                    WHERE r.kind = 'email_domain'
                      AND lower(r.value) = lower(split_part(e.metadata ->> 'email', '@', -1))))
    OR (prof.email_domain <> '' AND EXISTS (SELECT 1 FROM events_internaluserrule r
                    WHERE r.kind = 'email_domain' AND lower(r.value) = prof.email_domain))
    THEN 'internal_user'
  WHEN {_flag_sql("test")} THEN 'test_traffic'
  WHEN {_flag_sql("demo")} THEN 'demo'
  WHEN ua.reason IS NOT NULL THEN ua.reason
  WHEN e.event_type IN (SELECT pv.name FROM events_eventtype pv WHERE pv.page_view)  -- hashed once per statement
       AND e.session_id <> '' AND e.occurred_at < %(quiet_before)s
       AND NOT EXISTS (SELECT 1 FROM ops_events o  -- o.session_id <> '' lets it use ops_events_session
                       WHERE o.session_id = e.session_id AND o.session_id <> '' AND o.id <> e.id
                         AND o.tenant_id = e.tenant_id)  -- a session is one account's (and Citus joins on it)
    THEN 'single_page_visit'
  ELSE ''
END
"""

# reg: the registry by the unique index on lower(name) (events_eventtype_name_ci); prof: the
# user's identify traits by the primary key of ops_user_profiles.
_REASON_FROM_SQL = """
FROM ops_events e
LEFT JOIN events_eventtype reg ON lower(reg.name) = lower(e.event_type)
LEFT JOIN ops_user_profiles prof ON prof.user_id = e.user_id
LEFT JOIN events_apikey k ON k.id = e.source_id
LEFT JOIN customers_tenant t ON t.tenant_id = e.tenant_id
LEFT JOIN LATERAL (
    SELECT p.reason FROM events_useragentpattern p
    WHERE p.is_active AND jsonb_typeof(e.metadata -> 'user_agent') = 'string'
      AND (e.metadata ->> 'user_agent') ~* p.pattern
    ORDER BY p.id LIMIT 1
) ua ON true
"""


def _update_sql(where: str) -> str:
    """UPDATE ... FROM that rewrites only the rows whose reason changed.

    ``where`` is a template over ``{a}`` (the table alias): it restricts both sides of
    the join, so a chunk touches only its own id range instead of hashing the table.
    """
    return f"""
    UPDATE ops_events AS target
    SET exclusion_reason = c.reason, is_real = (c.reason = '')
    FROM (SELECT e.id, e.tenant_id, {_REASON_SQL} AS reason {_REASON_FROM_SQL} WHERE {where.format(a="e")}) AS c
    WHERE target.id = c.id AND target.tenant_id = c.tenant_id AND {where.format(a="target")} AND target.exclusion_reason IS DISTINCT FROM c.reason
    """


# The real-user cache, rebuilt exactly (reclassification can shrink it).
_REAL_USERS_REBUILD_SQL = """
WITH agg AS (
    SELECT e.user_id, min(e.occurred_at) AS first_at, max(e.occurred_at) AS last_at
    FROM ops_events e JOIN events_eventtype et ON et.name = e.event_type AND et.counts_as_real_interaction
    WHERE e.is_real AND e.user_id <> ''
    GROUP BY e.user_id
), gone AS (
    DELETE FROM ops_real_users r WHERE NOT EXISTS (SELECT 1 FROM agg WHERE agg.user_id = r.user_id)
)
INSERT INTO ops_real_users (user_id, first_interaction_at, last_interaction_at)
SELECT user_id, first_at, last_at FROM agg
ON CONFLICT (user_id) DO UPDATE
SET first_interaction_at = EXCLUDED.first_interaction_at, last_interaction_at = EXCLUDED.last_interaction_at
WHERE (ops_real_users.first_interaction_at, ops_real_users.last_interaction_at)
      IS DISTINCT FROM (EXCLUDED.first_interaction_at, EXCLUDED.last_interaction_at)
"""


def real_users_upsert_sql(select: str) -> str:
    """Upsert users into the real-user cache from ``select`` (user_id, first, last; ordered by
    user_id). LEAST/GREATEST make it idempotent; the WHERE on the update skips no-op writes so
    a busy user's row does not churn; the caller's ORDER BY takes row locks in one order (no
    deadlock between concurrent batches)."""
    return f"""
    INSERT INTO ops_real_users (user_id, first_interaction_at, last_interaction_at)
    {select}
    ON CONFLICT (user_id) DO UPDATE
    SET first_interaction_at = LEAST(ops_real_users.first_interaction_at, EXCLUDED.first_interaction_at),
        last_interaction_at = GREATEST(ops_real_users.last_interaction_at, EXCLUDED.last_interaction_at)
    WHERE EXCLUDED.first_interaction_at < ops_real_users.first_interaction_at
       OR EXCLUDED.last_interaction_at > ops_real_users.last_interaction_at
    """


def real_users_fold_sql(*, source: str, where: str) -> str:
    """Fold the users of some events into the real-user cache.

    ``source`` is a relation with user_id, event_type, occurred_at and is_real
    (``ops_events e`` or the ingest statement's ``inserted e``).
    """
    return real_users_upsert_sql(f"""
    SELECT e.user_id, min(e.occurred_at), max(e.occurred_at)
    FROM {source} JOIN events_eventtype et ON et.name = e.event_type AND et.counts_as_real_interaction
    WHERE e.is_real AND e.user_id <> '' AND {where}
    GROUP BY e.user_id
    ORDER BY e.user_id""")


# A digest of every rule that decides is_real or which users count. Small tables only.
_FINGERPRINT_SQL = """
SELECT md5(concat_ws('|',
  (SELECT string_agg(kind || ':' || value, ',' ORDER BY kind, value) FROM events_internaluserrule),
  (SELECT string_agg(id || ':' || pattern || ':' || reason, ',' ORDER BY id)
     FROM events_useragentpattern WHERE is_active),
  (SELECT string_agg(id::text, ',' ORDER BY id) FROM events_apikey WHERE is_automation),
  (SELECT string_agg(tenant_id || ':' || kind, ',' ORDER BY tenant_id)
     FROM customers_tenant WHERE kind <> 'customer'),
  (SELECT string_agg(name, ',' ORDER BY name) FROM events_eventtype WHERE counts_as_real_interaction),
  (SELECT 'page_view:' || string_agg(name, ',' ORDER BY name) FROM events_eventtype WHERE page_view),
  -- Every registered name: registering one un-parks its history.
  (SELECT string_agg(lower(name), ',' ORDER BY lower(name)) FROM events_eventtype),
  -- Users an identify call placed in an internal domain (ops_user_profiles_domain).
  (SELECT string_agg(p.user_id, ',' ORDER BY p.user_id) FROM ops_user_profiles p
     WHERE p.email_domain <> '' AND p.email_domain IN (
       SELECT lower(value) FROM events_internaluserrule WHERE kind = 'email_domain')),
  %s::text)) AS fingerprint
"""


def rules_fingerprint() -> str:
    with connection.cursor() as cursor:
        cursor.execute(_FINGERPRINT_SQL, [str(SINGLE_PAGE_QUIET_MINUTES)])
        return str(value_of(cursor, "fingerprint"))


# Registering a name takes its parked events' spelling from the registry (names match
# case-insensitively; the engine joins the registry by exact name) and its friction signal.
# Reads only parked rows (ops_events_parked). The classification columns are recomputed after.
_UNPARK_SQL = """
UPDATE ops_events e SET event_type = reg.name, friction_signal = reg.friction_signal
FROM events_eventtype reg
WHERE e.exclusion_reason = 'unregistered' AND lower(reg.name) = lower(e.event_type)
  AND (e.event_type <> reg.name OR e.friction_signal <> reg.friction_signal)
"""


def parked_events_adopt() -> int:
    """Give parked events of now-registered names the registry's spelling; returns how many."""
    with connection.cursor() as cursor:
        cursor.execute(_UNPARK_SQL)
        return cursor.rowcount


def real_users_rebuild() -> None:
    """Recompute the real-user cache from the event table (exact, set-based)."""
    with connection.cursor() as cursor:
        cursor.execute(_REAL_USERS_REBUILD_SQL)


@dataclass
class ReclassifyResult:
    changed: int = 0
    chunks: int = 0
    skipped_locked: bool = False
    # Tenants with at least one event whose realness changed: their customer rollups
    # were folded with the old answer and must be rebuilt (customers.tasks).
    tenant_ids: set[str] = field(default_factory=set)


def events_reclassify(*, now: datetime | None = None, chunk_rows: int = RECLASSIFY_CHUNK_ROWS) -> ReclassifyResult:
    """Re-apply every rule to all history, then rebuild the real-user cache.

    Idempotent and safe to rerun: each chunk of ids is one UPDATE ... FROM that
    only writes rows whose reason changed. Guarded by an advisory lock: a second
    caller returns at once with ``skipped_locked`` (the running pass, or the next
    periodic pass, applies the newest rules: it compares fingerprints).
    """
    now = now or timezone.now()
    result = ReclassifyResult()
    with connection.cursor() as cursor:
        cursor.execute(LOCK_SQL, [RECLASSIFY_LOCK_KEY])
        if not value_of(cursor, "locked"):
            result.skipped_locked = True
            return result
    try:
        fingerprint = rules_fingerprint()
        with connection.cursor() as cursor:
            # Rows below this were committed before the pass started, so it covers them; the
            # periodic pass re-checks from here instead of from the beginning of time.
            cursor.execute(SNAPSHOT_XMIN_SQL)
            xmin = value_of(cursor, "xmin")
        # On Citus a batch below xmin may still be committing on a worker: wait until it is visible.
        flavour().prepared_transactions_settle()
        quiet_before = now - timedelta(minutes=SINGLE_PAGE_QUIET_MINUTES)
        with transaction.atomic():
            parked_events_adopt()
        with connection.cursor() as cursor:
            cursor.execute(EVENT_IDS_SQL)
            ids = row_as_dict(cursor)
        start, high = ids["low"], ids["high"]
        while start <= high:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(JIT_OFF_SQL)
                cursor.execute(
                    _update_sql("{a}.id >= %(start)s AND {a}.id < %(stop)s") + " RETURNING target.tenant_id",
                    {"start": start, "stop": start + chunk_rows, "quiet_before": quiet_before},
                )
                changed_tenants = values_of(cursor, "tenant_id")
                result.changed += len(changed_tenants)
                result.tenant_ids.update(t for t in changed_tenants if t)
            result.chunks += 1
            start += chunk_rows
        with transaction.atomic():
            real_users_rebuild()
            ClassificationState.objects.update_or_create(
                pk=1,
                defaults={
                    "applied_fingerprint": fingerprint,
                    "last_full_at": now,
                    "last_full_changed": result.changed,
                    "single_page_cutoff": quiet_before,
                    "xid_watermark": xmin,
                },
            )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(UNLOCK_SQL, [RECLASSIFY_LOCK_KEY])
    logger.info("Reclassified history: %s rows changed in %s chunks", result.changed, result.chunks)
    return result


@dataclass
class PassResult:
    full: ReclassifyResult | None = None
    changed: int = 0
    tenant_ids: set[str] = field(default_factory=set)


def classification_pass(*, now: datetime | None = None) -> PassResult:
    """The periodic pass (idempotent, advisory-locked through ``events_reclassify``).

    - If the rules in force differ from the ones history was last classified with
      (e.g. a tenant flagged internal in the customers admin), reclassify everything.
    - Otherwise re-check, with set-based SQL over indexed ranges only:
      * rows committed since the last pass (``ingest_xid`` window), which closes the
        race of a batch classified with rules that changed while it was in flight;
      * the sessions of page views that became quiet since the last pass, and of the
        rows above (a late event can turn a single-page visit back into a real one).
      Then fold the users of changed rows into the real-user cache (or rebuild it if
      some rows stopped being real).
    """
    now = now or timezone.now()
    state, _ = ClassificationState.objects.get_or_create(pk=1)
    if state.applied_fingerprint != rules_fingerprint():
        return PassResult(full=events_reclassify(now=now))
    quiet_before = now - timedelta(minutes=SINGLE_PAGE_QUIET_MINUTES)
    cutoff = state.single_page_cutoff or (quiet_before - timedelta(days=1))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(LOCK_IN_TRANSACTION_SQL, [RECLASSIFY_LOCK_KEY])
        if not value_of(cursor, "locked"):
            return PassResult()
        cursor.execute(JIT_OFF_SQL)
        cursor.execute(SNAPSHOT_XMIN_SQL)
        xmin = value_of(cursor, "xmin")
        flavour().prepared_transactions_settle()  # as in the full pass: nothing below xmin still committing on a worker
        params = {
            "lo": state.xid_watermark,
            "hi": xmin,
            "cutoff": cutoff,
            "quiet_before": quiet_before,
        }
        # The ids to re-check, materialised once (both arms use an index:
        # ops_events_ingest_xid, the BRIN on occurred_at, and ops_events_session).
        cursor.execute("DROP TABLE IF EXISTS classification_recheck")
        cursor.execute(
            """
            CREATE TEMP TABLE classification_recheck ON COMMIT DROP AS
            WITH fresh AS (
                SELECT id, session_id FROM ops_events
                WHERE ingest_xid >= %(lo)s::text::xid8 AND ingest_xid < %(hi)s::text::xid8
            ), quiet AS (
                SELECT session_id FROM ops_events
                WHERE event_type IN (SELECT name FROM events_eventtype WHERE page_view) AND session_id <> ''
                  AND occurred_at >= %(cutoff)s AND occurred_at < %(quiet_before)s
            ), sessions AS (
                SELECT session_id FROM fresh WHERE session_id <> '' UNION SELECT session_id FROM quiet
            )
            SELECT id FROM fresh
            UNION
            SELECT o.id FROM ops_events o JOIN sessions s ON s.session_id = o.session_id WHERE o.session_id <> ''
            """,
            params,
        )
        cursor.execute(
            _update_sql("{a}.id IN (SELECT id FROM classification_recheck)")
            + " RETURNING target.is_real, target.tenant_id",
            params,
        )
        changed_rows = rows_as_dicts(cursor)
        flipped = [row["is_real"] for row in changed_rows]
        if any(not is_real for is_real in flipped):
            real_users_rebuild()
        else:
            cursor.execute(
                real_users_fold_sql(source="ops_events e", where="e.id IN (SELECT id FROM classification_recheck)")
            )
        ClassificationState.objects.filter(pk=1).update(
            xid_watermark=max(xmin, state.xid_watermark), single_page_cutoff=max(quiet_before, cutoff)
        )
    return PassResult(changed=len(flipped), tenant_ids={row["tenant_id"] for row in changed_rows if row["tenant_id"]})


def user_agent_pattern_problem(pattern: str) -> str | None:
    """Why a user-agent pattern cannot be used by both engines, or None."""
    if not pattern.strip():
        return "A pattern cannot be empty."
    if "\\b" in pattern or "(?P" in pattern or "(?<" in pattern:
        return "Use the common subset of Python and PostgreSQL regular expressions: no \\b, no named groups."
    try:
        re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        return f"Python cannot compile it: {exc}."
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 'x' ~* %s", [pattern])
    except DatabaseError as exc:  # PostgreSQL rejects the regex syntax.
        return f"PostgreSQL cannot compile it: {str(exc).splitlines()[0]}."
    return None
