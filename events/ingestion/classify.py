"""Real or not, at ingestion: rules 0-5 of events/classification.py applied in Python to a
batch's rows (``classify_batch``), before they are stored.

The rules are cached per process (``classification_rules``), reloaded when the rules version
moves (every edit through admin or the services bumps it) or after ``RULES_TTL_SECONDS``.
``_reason`` is the Python twin of events/classification.py's ``_REASON_SQL``, which applies
the same rules to history (and rule 6, which needs the whole session); a test runs both over
the same events and checks they agree.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from core.flavour import flavour
from core.models import ApiKey
from core.rows import row_as_dict, rows_as_dicts
from events.ingestion.event_row import EventRow
from events.models import ExclusionReason, InternalUserRule, InternalUserRuleKind, UserAgentPattern

logger = logging.getLogger(__name__)

# Edits made outside the services (shell, bulk SQL) reach ingestion within this bound;
# edits through admin/services reach it at once through ``rules_version``.
RULES_TTL_SECONDS = 60.0
# Distinct user agents whose classification each process remembers (per rules version).
USER_AGENT_MEMO_MAX = 4096


def _flag(metadata: dict[str, object], name: str) -> bool:
    value = metadata.get(name)
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true", "yes"))


def email_domain(metadata: dict[str, object]) -> str:
    """Lower-cased part of ``metadata.email`` after the last ``@``; empty if none."""
    email = metadata.get("email")
    if not isinstance(email, str) or "@" not in email:
        return ""
    return email.rsplit("@", 1)[1].lower()


# --- The rules, cached per process -------------------------------------------------------
@dataclass
class Rules:
    version: int
    loaded_at: float
    internal_user_ids: frozenset[str] = frozenset()
    internal_domains: frozenset[str] = frozenset()
    user_agent_patterns: list[tuple[re.Pattern[str], str]] = field(default_factory=list)
    # user agent -> the first matching pattern's reason ("" for none), for these rules only.
    # Senders repeat a handful of user agents; the patterns are searched once per distinct one
    # (the pattern loop was a large share of a web worker's CPU during bulk ingest).
    user_agent_reasons: dict[str, str] = field(default_factory=dict)

    def user_agent_reason(self, user_agent: str) -> str:
        reason = self.user_agent_reasons.get(user_agent)
        if reason is None:
            reason = next((r for pattern, r in self.user_agent_patterns if pattern.search(user_agent)), "")
            if len(self.user_agent_reasons) >= USER_AGENT_MEMO_MAX:
                self.user_agent_reasons.clear()  # bounded: a sender varying its user agent cannot grow it
            self.user_agent_reasons[user_agent] = reason
        return reason


_rules: Rules | None = None
# Tenants this process has seen of another kind than customer (internal, test, demo): a batch
# naming one is classified after the look-up (the store's confirmation would refuse it, and the
# batch be stored a second time). Bounded: a sender cycling tenants cannot grow it.
_other_kind_tenants: set[str] = set()
OTHER_KIND_TENANTS_MAX = 4096

# One statement per batch: the rules version (to drop a stale cache), the kinds of
# the batch's tenants that are not plain customers (usually none), and the email domains
# identify calls gave the batch's users (primary keys of customers_tenant, ops_user_profiles).
_BATCH_LOOKUP_SQL = """
SELECT (SELECT rules_version FROM events_classificationstate WHERE id = 1) AS rules_version,
       COALESCE((SELECT json_object_agg(tenant_id, kind) FROM customers_tenant
                 WHERE tenant_id = ANY(%(tenants)s) AND kind <> 'customer'), '{}'::json) AS tenant_kinds,
       COALESCE((SELECT json_object_agg(user_id, email_domain) FROM ops_user_profiles
                 WHERE user_id = ANY(%(users)s) AND email_domain <> ''), '{}'::json) AS profile_domains
"""
# On Citus the batch's tenants are a statement of their own, sent with the rest in one query:
# inside the statement above, the distributed customers_tenant is planned as a subplan whose rows
# pass through an intermediate result; alone, `tenant_id = ANY(...)` (the distribution column,
# customers_tenant_pkey) goes only to the shards holding the batch's tenants, each answering directly. It
# reads every tenant of the batch, not only the other kinds, so the store knows which are new.
_CLUSTER_LOOKUP_SQL = """
SELECT (SELECT rules_version FROM events_classificationstate WHERE id = 1) AS rules_version,
       COALESCE((SELECT json_object_agg(user_id, email_domain) FROM ops_user_profiles
                 WHERE user_id = ANY(%(users)s) AND email_domain <> ''), '{}'::json) AS profile_domains;
SELECT tenant_id, kind FROM customers_tenant WHERE tenant_id = ANY(%(tenants)s)
"""


def classification_rules(*, version: int, refresh: bool = False) -> Rules:
    """The rules in force, reloaded when ``version`` moved or the TTL passed."""
    global _rules
    now = time.monotonic()
    if refresh or _rules is None or _rules.version != version or now - _rules.loaded_at > RULES_TTL_SECONDS:
        user_ids: set[str] = set()
        domains: set[str] = set()
        for kind, value in InternalUserRule.objects.values_list("kind", "value"):
            if kind == InternalUserRuleKind.USER_ID:
                user_ids.add(value)
            else:
                domains.add(value.lower())
        patterns: list[tuple[re.Pattern[str], str]] = []
        for pattern, reason in (
            UserAgentPattern.objects.filter(is_active=True).order_by("id").values_list("pattern", "reason")
        ):
            try:
                patterns.append((re.compile(pattern, re.IGNORECASE), reason))
            except re.error:
                # Saved through the services this cannot happen (they check); a pattern
                # written by hand that Python rejects is skipped rather than failing ingestion.
                logger.error("Skipping user-agent pattern %r: Python cannot compile it", pattern)
        _rules = Rules(
            version=version,
            loaded_at=now,
            internal_user_ids=frozenset(user_ids),
            internal_domains=frozenset(domains),
            user_agent_patterns=patterns,
        )
    return _rules


def _reason(
    *,
    user_id: str,
    metadata: dict[str, Any],
    tenant_kind: str | None,
    automation: bool,
    rules: Rules,
    parked: bool = False,
    profile_domain: str = "",
) -> str:
    """Rules 0-5 for one event (the Python twin of ``_REASON_SQL``)."""
    if parked:
        return ExclusionReason.UNREGISTERED
    if automation:
        return ExclusionReason.AUTOMATION_CLIENT
    if tenant_kind == "internal":
        return ExclusionReason.INTERNAL_TENANT
    if tenant_kind == "test":
        return ExclusionReason.TEST_TRAFFIC
    if tenant_kind == "demo":
        return ExclusionReason.DEMO
    if (user_id and user_id in rules.internal_user_ids) or (
        rules.internal_domains
        and (email_domain(metadata) in rules.internal_domains or profile_domain in rules.internal_domains)
    ):
        return ExclusionReason.INTERNAL_USER
    return metadata_reason(metadata, rules)


def metadata_reason(metadata: dict[str, Any], rules: Rules) -> str:
    """Rules 4-5: what the event's own metadata says (test or demo flags, the user agent)."""
    if "test" in metadata or "demo" in metadata:  # most events carry neither flag
        if _flag(metadata, "test"):
            return ExclusionReason.TEST_TRAFFIC
        if _flag(metadata, "demo"):
            return ExclusionReason.DEMO
    user_agent = metadata.get("user_agent")
    if isinstance(user_agent, str):
        return rules.user_agent_reason(user_agent)
    return ""


def rules_cached() -> Rules | None:
    """The rules this process holds (None before the first batch), without asking whether they
    are current: a row classified with them is confirmed by ``classify_batch``, never trusted."""
    return _rules


def classification_unconfirmed(rows: list[EventRow], *, source: ApiKey | None, assumed: Rules | None) -> int | None:
    """The rules version a batch's rows stand classified with (``RowMaker`` made them with the
    process's cached rules), for the store's fast path to confirm in its own statement instead of
    ``classify_batch``'s look-up: that version still in force and no tenant of the batch of
    another kind than customer (events/ingestion/store.py, ``BATCH_UPSERTS_CHECKED_SQL``; on Citus
    the statements ``citus_batch_upserts`` sends after the COPY). Then rules 1-3 cannot match and
    the rows stand as made, as ``classify_batch`` would leave them.

    None when the look-up is needed: the rows were not made with the cached rules, those are
    older than ``RULES_TTL_SECONDS``, a rule reads the users (internal user ids or domains), the
    key is an automation key, or the batch names a tenant seen of another kind. A store that
    refuses the confirmation rolls the batch back; it is then classified by ``classify_batch``
    and stored again.
    """
    rules = _rules
    if assumed is None or assumed is not rules or rules.internal_user_ids or rules.internal_domains:
        return None
    if time.monotonic() - rules.loaded_at > RULES_TTL_SECONDS or (source is not None and source.is_automation):
        return None
    if _other_kind_tenants and any(row.tenant_id in _other_kind_tenants for row in rows):
        return None
    return rules.version


def _batch_lookup(tenant_ids: list[str], user_ids: list[str]) -> tuple[Any, dict[str, str], Any, frozenset[str] | None]:
    """The rules version, the kinds of the batch's tenants that are not plain customers, the email
    domains of its users and, on Citus, which of its tenants customers_tenant holds (None elsewhere)."""
    params = {"tenants": tenant_ids, "users": user_ids}
    with connection.cursor() as cursor:
        if not flavour().subplans_through_coordinator:
            cursor.execute(_BATCH_LOOKUP_SQL, params)
            found = row_as_dict(cursor)
            return found["rules_version"], found["tenant_kinds"], found["profile_domains"], None
        # Client-side binding sends both statements in one query; the tenants are its second result.
        cursor.execute(_CLUSTER_LOOKUP_SQL, params)
        found = row_as_dict(cursor)
        version, profile_domains = found["rules_version"], found["profile_domains"]
        cursor.nextset()
        kinds = {row["tenant_id"]: row["kind"] for row in rows_as_dicts(cursor)}
    others = {tenant: kind for tenant, kind in kinds.items() if kind != "customer"}
    return version, others, profile_domains, frozenset(kinds)


def classify_batch(
    rows: list[EventRow], *, source: ApiKey | None, assumed: Rules | None = None
) -> frozenset[str] | None:
    """Set ``is_real`` and ``exclusion_reason`` on each row, in place.

    Costs one query per batch (rules version and tenant kinds) plus, after a rule
    change, one reload of the rule tables. No query per event.

    ``assumed``: the rules the rows were made with (events/ingestion/validation.py's
    ``RowMaker`` applies rules 0, 4 and 5, which read the event alone, as it makes each row).
    When they are the rules in force and rules 1-3 cannot match, the rows stand as made.

    Returns, on Citus, the batch's tenants customers_tenant already holds (read in the caller's
    transaction: the store inserts only the others); None on plain PostgreSQL.
    """
    if not rows:
        return None
    tenant_ids = sorted({row.tenant_id for row in rows if row.tenant_id})
    user_ids = sorted({row.user_id for row in rows if row.user_id})
    version, tenant_kinds, profile_domains, stored_tenants = _batch_lookup(tenant_ids, user_ids)
    rules = classification_rules(version=int(version or 0))
    if tenant_kinds:
        if len(_other_kind_tenants) + len(tenant_kinds) > OTHER_KIND_TENANTS_MAX:
            _other_kind_tenants.clear()
        _other_kind_tenants.update(tenant_kinds)
    automation = bool(source is not None and source.is_automation)
    if not (automation or tenant_kinds or profile_domains or rules.internal_user_ids or rules.internal_domains):
        # The usual batch: rules 1-3 cannot match, so each row's own metadata decides (or parking).
        if rules is assumed:
            return stored_tenants
        unregistered = ExclusionReason.UNREGISTERED.value
        for row in rows:
            reason = unregistered if row.parked else metadata_reason(row.metadata, rules)
            row.is_real = not reason
            row.exclusion_reason = reason
        return stored_tenants
    for row in rows:
        reason = _reason(
            user_id=row.user_id,
            metadata=row.metadata,
            tenant_kind=tenant_kinds.get(row.tenant_id),
            automation=automation,
            rules=rules,
            parked=row.parked,
            profile_domain=profile_domains.get(row.user_id, "") if profile_domains else "",
        )
        row.is_real = not reason
        row.exclusion_reason = reason
    return stored_tenants
