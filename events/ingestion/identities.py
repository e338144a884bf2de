"""Who a user is and which account they belong to, as the product's SDK calls say.

Format adapters turn identify calls, ``$set``/``$set_once``, group calls, ``$groups``
and ``$groupidentify`` into ``Identity`` records; ``events_ingest`` applies them in the
same transaction as the batch's events, before attributing the batch's group-less
events to their users' accounts (so a group call and a later track call in one batch
work too). Every statement is set-based: one per table per batch, none per identity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection

from core.rows import rows_as_dicts, value_of, values_of
from events.ingestion.event_row import EventRow

NAME_MAX = 255
EMAIL_MAX = 320


@dataclass
class Identity:
    """What a message says about a user or an account, besides (or instead of) an event.

    ``tenant_id`` with a ``user_id`` is a membership (group call, ``$groups``);
    ``account_name``/``account_properties`` describe ``tenant_id`` (``$groupidentify``,
    a group call's traits); ``email``/``name``/``traits`` describe ``user_id``.
    """

    user_id: str = ""
    tenant_id: str = ""
    email: str | None = None
    name: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)
    account_name: str | None = None
    account_properties: dict[str, Any] = field(default_factory=dict)
    # An id the same person had before (posthog-js's anonymous distinct_id, analytics.js's
    # anonymousId): its tenant-less history becomes ``user_id``'s, and so do its later events.
    previous_id: str = ""
    # The position of the event item that carries these facts: they are applied only when
    # that item is valid (its validation covers the ids and the traits, which it holds too).
    item: int = -1


def email_domain_of(email: str) -> str:
    return email.rsplit("@", 1)[1].strip().lower() if "@" in email else ""


_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode

# Uses the primary key of ops_user_profiles. Existing email and name are kept when a
# call does not carry them; traits merge, the newest value of each key winning.
_PROFILES_BEFORE_SQL = "SELECT user_id, email_domain FROM ops_user_profiles WHERE user_id = ANY(%(users)s)"
_PROFILES_UPSERT_SQL = """
INSERT INTO ops_user_profiles (user_id, email, email_domain, name, traits, updated_at)
SELECT p->>0, COALESCE(p->>1, ''), COALESCE(p->>2, ''), COALESCE(p->>3, ''), p->4, %(now)s
FROM jsonb_array_elements(%(profiles)s::jsonb) AS p
ON CONFLICT (user_id) DO UPDATE SET
    email = CASE WHEN EXCLUDED.email <> '' THEN EXCLUDED.email ELSE ops_user_profiles.email END,
    email_domain = CASE WHEN EXCLUDED.email <> '' THEN EXCLUDED.email_domain ELSE ops_user_profiles.email_domain END,
    name = CASE WHEN EXCLUDED.name <> '' THEN EXCLUDED.name ELSE ops_user_profiles.name END,
    traits = ops_user_profiles.traits || EXCLUDED.traits,
    updated_at = EXCLUDED.updated_at
"""
# Uses the unique index on events_internaluserrule (kind, value): is any of these domains internal?
_INTERNAL_DOMAINS_SQL = """
SELECT EXISTS (SELECT 1 FROM events_internaluserrule
               WHERE kind = 'email_domain' AND lower(value) = ANY(%(domains)s)) AS internal
"""
# Uses the primary key of ops_user_accounts. The latest group call wins. Memberships already
# recorded are filtered out first (a plain probe): ON CONFLICT would lock, and so write, each
# of their rows even when nothing changes, and most events of an SDK repeat their user's group.
# Its parameters are ``memberships_params``'s; the store's statement carries it too (events/ingestion/store.py).
MEMBERSHIPS_UPSERT_SQL = """
INSERT INTO ops_user_accounts (user_id, tenant_id, updated_at)
SELECT m->>0, m->>1, %(now)s FROM jsonb_array_elements(%(memberships)s::jsonb) AS m
WHERE NOT EXISTS (SELECT 1 FROM ops_user_accounts a WHERE a.user_id = m->>0 AND a.tenant_id = m->>1)
ORDER BY 1
ON CONFLICT (user_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, updated_at = EXCLUDED.updated_at
WHERE ops_user_accounts.tenant_id <> EXCLUDED.tenant_id
"""
# Uses the primary keys of ops_account_traits and customers_tenant. The product's name fills the
# console's tenant name while the founder has not written another one (empty, or the product's
# previous name), so a rename in the product shows and an edit in admin sticks. Three statements
# (the previous names, the traits, the tenants) rather than one with a CTE read inside ON CONFLICT,
# which Citus cannot send to the node holding the row.
_ACCOUNTS_PREVIOUS_SQL = "SELECT tenant_id, name FROM ops_account_traits WHERE tenant_id = ANY(%(tenants)s::text[])"
_ACCOUNTS_UPSERT_SQL = """
INSERT INTO ops_account_traits (tenant_id, name, properties, updated_at)
SELECT a->>0, COALESCE(a->>1, ''), a->2, %(now)s FROM jsonb_array_elements(%(accounts)s::jsonb) AS a ORDER BY 1
ON CONFLICT (tenant_id) DO UPDATE SET
    name = CASE WHEN EXCLUDED.name <> '' THEN EXCLUDED.name ELSE ops_account_traits.name END,
    properties = ops_account_traits.properties || EXCLUDED.properties,
    updated_at = EXCLUDED.updated_at
"""
_ACCOUNT_TENANTS_INSERT_SQL = """
INSERT INTO customers_tenant (tenant_id, name, kind, first_seen_at, notes)
SELECT x.tenant_id, x.name, 'customer', %(now)s, '' FROM unnest(%(tenants)s::text[], %(names)s::text[]) AS x(tenant_id, name)
ORDER BY 1
ON CONFLICT (tenant_id) DO NOTHING
"""
_ACCOUNT_TENANTS_RENAME_SQL = """
UPDATE customers_tenant t SET name = x.name
FROM unnest(%(tenants)s::text[], %(names)s::text[], %(previous)s::text[]) AS x(tenant_id, name, previous)
WHERE t.tenant_id = x.tenant_id AND x.name <> '' AND t.name <> x.name AND (t.name = '' OR t.name = x.previous)
"""
# Uses the primary keys of ops_user_aliases, ops_user_profiles and ops_user_accounts. An id the
# product already identified (an email, an account, or an alias pointing at it; posthog-js's
# $set_once of the first page seen is no identification) is a person of
# its own, never an alias: the ingest key is public in a web page, and a forged identify must not
# take over someone else's history (PostHog refuses to merge an identified person the same way).
_ALIAS_TARGETS_SQL = """
SELECT x.id, COALESCE(a.user_id, '') AS aliased_to,
       EXISTS (SELECT 1 FROM ops_user_aliases t WHERE t.user_id = x.id)
       OR EXISTS (SELECT 1 FROM ops_user_profiles p WHERE p.user_id = x.id AND p.email <> '')
       OR EXISTS (SELECT 1 FROM ops_user_accounts m WHERE m.user_id = x.id) AS identified
FROM unnest(%(ids)s::text[]) AS x(id) LEFT JOIN ops_user_aliases a ON a.alias_id = x.id
"""
_ALIASES_INSERT_SQL = """
INSERT INTO ops_user_aliases (alias_id, user_id, created_at)
SELECT x.alias_id, x.user_id, %(now)s FROM unnest(%(aliases)s::text[], %(users)s::text[]) AS x(alias_id, user_id)
ORDER BY 1
ON CONFLICT (alias_id) DO NOTHING
"""
# Uses the partial index ops_events_tenantless_user: an anonymous visitor's events carry no account.
# One shard on Citus (tenant_id is the distribution column, and it does not change).
_HISTORY_REATTRIBUTE_SQL = """
UPDATE ops_events e SET user_id = x.user_id
FROM unnest(%(aliases)s::text[], %(users)s::text[]) AS x(alias_id, user_id)
WHERE e.tenant_id = '' AND e.user_id = x.alias_id
"""
# The aliases' rows of the real-user cache, folded into their users' (real_users_upsert_sql).
_REAL_USERS_OF_ALIASES_DELETE_SQL = """
DELETE FROM ops_real_users WHERE user_id = ANY(%(aliases)s)
RETURNING user_id, first_interaction_at, last_interaction_at
"""
# An alias being recorded and a batch of its tenant-less events being stored must not cross:
# the batch could read "no alias" before the link commits, and the link's re-attribution could
# run before the batch commits, leaving an anonymous event behind. Each side locks the ids it
# touches (the link exclusively, the batch shared), so one waits for the other; in id order,
# so two batches never wait for each other in a circle.
ALIAS_LOCK_CLASS = 0x0A11A5
_ALIASES_LOCK_SQL = (
    "SELECT pg_advisory_xact_lock(%(cls)s, hashtext(x)) FROM unnest(%(ids)s::text[]) AS x ORDER BY hashtext(x)"
)
_ALIASES_LOCK_SHARED_SQL = (
    "SELECT pg_advisory_xact_lock_shared(%(cls)s, hashtext(x)) FROM unnest(%(ids)s::text[]) AS x ORDER BY hashtext(x)"
)
# Uses the primary key of ops_user_aliases.
_ALIASES_OF_USERS_SQL = "SELECT alias_id, user_id FROM ops_user_aliases WHERE alias_id = ANY(%(users)s)"
# Uses the unique index ops_events_tenant_event: which of these ids are stored without an account.
_STORED_TENANTLESS_SQL = (
    "SELECT event_id::text AS event_id FROM ops_events WHERE tenant_id = '' AND event_id = ANY(%(ids)s::uuid[])"
)
# Uses the primary key of ops_user_accounts.
_ACCOUNTS_OF_USERS_SQL = "SELECT user_id, tenant_id FROM ops_user_accounts WHERE user_id = ANY(%(users)s)"


def memberships_of(identities: list[Identity]) -> dict[str, str]:
    """User -> account as ``identities_apply`` records them (the last call of a user wins)."""
    return {i.user_id: i.tenant_id for i in identities if i.user_id and i.tenant_id}


def memberships_params(memberships: dict[str, str]) -> dict[str, str]:
    """``MEMBERSHIPS_UPSERT_SQL``'s memberships (besides ``now``), in one lock order: no deadlock between batches."""
    return {"memberships": _ENCODE(sorted(memberships.items()))}


def identities_touch_emails(identities: list[Identity]) -> bool:
    """Whether applying these may move a user into or out of an internal domain (an email),
    which changes how that user's events are classified, or make one id another's alias,
    which changes whose events they are: either way the batch's rows are attributed and
    classified only inside the transaction that applies them."""
    return any(i.user_id and (i.email or i.previous_id) for i in identities)


def aliases_record(identities: list[Identity], *, now: datetime) -> int:
    """Link each ``previous_id`` to its ``user_id`` and re-attribute the previous id's
    tenant-less history (its events and its real-user row) to the user; returns how many
    events changed hands.

    An id already linked keeps its first link (the person it turned out to be does not
    change); an id the product already identified is never made an alias (see
    ``_ALIAS_TARGETS_SQL``); a user that is itself an alias is followed to its person.
    """
    pairs = {i.previous_id: i.user_id for i in identities if i.previous_id and i.user_id and i.previous_id != i.user_id}
    if not pairs:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_ALIASES_LOCK_SQL, {"cls": ALIAS_LOCK_CLASS, "ids": sorted(pairs)})
        cursor.execute(_ALIAS_TARGETS_SQL, {"ids": sorted(set(pairs) | set(pairs.values()))})
        known = {row["id"]: (row["aliased_to"], row["identified"]) for row in rows_as_dicts(cursor)}
        links: dict[str, str] = {}
        for previous_id, user_id in sorted(pairs.items()):
            person = known[user_id][0] or links.get(user_id) or user_id
            aliased_to, identified = known[previous_id]
            if aliased_to or identified or previous_id == person:
                continue
            links[previous_id] = person
        if not links:
            return 0
        aliases, users = list(links), list(links.values())
        cursor.execute(_ALIASES_INSERT_SQL, {"aliases": aliases, "users": users, "now": now})
        cursor.execute(_HISTORY_REATTRIBUTE_SQL, {"aliases": aliases, "users": users})
        moved = cursor.rowcount
        cursor.execute(_REAL_USERS_OF_ALIASES_DELETE_SQL, {"aliases": aliases})
        spans: dict[str, list[Any]] = {}
        for gone in rows_as_dicts(cursor):
            alias_id, first_at, last_at = gone["user_id"], gone["first_interaction_at"], gone["last_interaction_at"]
            span = spans.setdefault(links[alias_id], [links[alias_id], first_at, last_at])
            span[1], span[2] = min(span[1], first_at), max(span[2], last_at)
        if spans:
            from events.classification import real_users_upsert_sql

            rows = sorted(spans.values())
            cursor.execute(
                real_users_upsert_sql(
                    "SELECT * FROM unnest(%(users)s::text[], %(firsts)s::timestamptz[], %(lasts)s::timestamptz[]) "
                    "ORDER BY 1"
                ),
                {"users": [r[0] for r in rows], "firsts": [r[1] for r in rows], "lasts": [r[2] for r in rows]},
            )
    return moved


def aliases_resolve(rows: list[EventRow]) -> int:
    """Give each row sent under an alias its person's user id (two statements for the batch,
    none when no row is tenant-less: an anonymous visitor's events carry no account). Returns
    how many rows changed. Must run in the transaction that stores the rows (the lock)."""
    users = sorted({row.user_id for row in rows if not row.tenant_id and row.user_id})
    if not users:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_ALIASES_LOCK_SHARED_SQL, {"cls": ALIAS_LOCK_CLASS, "ids": users})
        cursor.execute(_ALIASES_OF_USERS_SQL, {"users": users})
        person_of = {row["alias_id"]: row["user_id"] for row in rows_as_dicts(cursor)}
    changed = 0
    for row in rows:
        if not row.tenant_id and row.user_id in person_of:
            row.user_id = person_of[row.user_id]
            changed += 1
    return changed


def identities_apply(identities: list[Identity], *, now: datetime, memberships_stored_later: bool = False) -> bool:
    """Record profiles, memberships and account traits; returns whether a user's email
    moved into or out of an internal domain (their history must be reclassified).

    Several identities for one user or account in a batch merge in order (the last
    value of each field wins), so each row is written once per statement.

    ``memberships_stored_later``: the caller records the memberships (``memberships_of``) itself,
    later in the same transaction (the store's statement carries them).
    """
    profiles: dict[str, list[Any]] = {}
    memberships = {} if memberships_stored_later else memberships_of(identities)
    accounts: dict[str, list[Any]] = {}
    for identity in identities:
        if identity.user_id and (identity.email or identity.name or identity.traits):
            row = profiles.setdefault(identity.user_id, [identity.user_id, None, None, None, {}])
            if identity.email:
                email = identity.email.strip()[:EMAIL_MAX]
                row[1], row[2] = email, email_domain_of(email)[:NAME_MAX]
            if identity.name:
                row[3] = identity.name.strip()[:NAME_MAX]
            row[4].update(identity.traits)
        if identity.tenant_id and (identity.account_name or identity.account_properties):
            account = accounts.setdefault(identity.tenant_id, [identity.tenant_id, None, {}])
            if identity.account_name:
                account[1] = identity.account_name.strip()[:NAME_MAX]
            account[2].update(identity.account_properties)
    internal_changed = False
    # Before the profiles and memberships: those of this very batch (an identify's traits, a
    # group call) must not make its previous id look identified already.
    aliases_record(identities, now=now)
    with connection.cursor() as cursor:
        if profiles:
            cursor.execute(_PROFILES_BEFORE_SQL, {"users": list(profiles)})
            before = {row["user_id"]: row["email_domain"] for row in rows_as_dicts(cursor)}
            moved = {
                domain
                for user_id, row in profiles.items()
                if row[2] is not None and row[2] != before.get(user_id, "")
                for domain in (row[2], before.get(user_id, ""))
                if domain
            }
            rows = sorted(profiles.values(), key=lambda r: r[0])  # one lock order: no deadlock between batches
            cursor.execute(_PROFILES_UPSERT_SQL, {"profiles": _ENCODE(rows), "now": now})
            if moved:
                cursor.execute(_INTERNAL_DOMAINS_SQL, {"domains": sorted(moved)})
                internal_changed = bool(value_of(cursor, "internal"))
        if memberships:
            cursor.execute(MEMBERSHIPS_UPSERT_SQL, {**memberships_params(memberships), "now": now})
        if accounts:
            ordered = sorted(accounts.values(), key=lambda a: a[0])
            tenants, names = [a[0] for a in ordered], [a[1] or "" for a in ordered]
            cursor.execute(_ACCOUNTS_PREVIOUS_SQL, {"tenants": tenants})
            previous = {row["tenant_id"]: row["name"] for row in rows_as_dicts(cursor)}
            cursor.execute(_ACCOUNTS_UPSERT_SQL, {"accounts": _ENCODE(ordered), "now": now})
            cursor.execute(_ACCOUNT_TENANTS_INSERT_SQL, {"tenants": tenants, "names": names, "now": now})
            cursor.execute(
                _ACCOUNT_TENANTS_RENAME_SQL,
                {"tenants": tenants, "names": names, "previous": [previous.get(t) for t in tenants]},
            )
    return internal_changed


def accounts_attribute(rows: list[EventRow], *, pending: dict[str, str] | None = None) -> int:
    """Give each row that names a user but no account the user's remembered account.

    ``pending``: memberships about to be recorded (an import's batch in flight), which win
    over the ones stored. One query for the batch, and none when every row has its account.
    Returns how many rows were attributed.
    """
    pending = pending or {}
    users = sorted({row.user_id for row in rows if not row.tenant_id and row.user_id and row.user_id not in pending})
    account_of: dict[str, str] = {}
    if users:
        with connection.cursor() as cursor:
            cursor.execute(_ACCOUNTS_OF_USERS_SQL, {"users": users})
            account_of = {row["user_id"]: row["tenant_id"] for row in rows_as_dicts(cursor)}
    account_of.update(pending)
    if not account_of:
        return 0
    # A resend of an event first stored before its user's account was known stays where it
    # is (the unique key is per account), so it is a duplicate rather than a second copy.
    candidates = [str(row.event_id) for row in rows if not row.tenant_id and row.user_id in account_of]
    stored_tenantless: set[str] = set()
    if candidates:
        with connection.cursor() as cursor:
            cursor.execute(_STORED_TENANTLESS_SQL, {"ids": candidates})
            stored_tenantless = set(values_of(cursor, "event_id"))
    attributed = 0
    for row in rows:
        if not row.tenant_id and row.user_id in account_of and str(row.event_id) not in stored_tenantless:
            row.tenant_id = account_of[row.user_id]
            attributed += 1
    return attributed
