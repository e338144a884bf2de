"""The person to call at each account: its champion and, where the identify traits say so, its admin and buyer.

The champion is the real user with the most real events in the account over the 30 days up to the
run's ``as_of`` (ties: the one seen last, then the user id). An admin or a buyer is a user of the
account (a real event in it within the rollups' 90 days) whose ``role`` or ``title`` trait holds one
of ``CONTACT_ROLE_WORDS``; among several, the most active, as for the champion. Names and emails are
the identify traits (``ops_user_profiles``).

``ops_tenant_contacts`` is a cache written by the recompute in its own transaction
(``tenant_contacts_write``, for the tenants the run rewrites: their activity moved, or their day did,
so every account is refreshed at least daily); a later identify that renames or re-addresses a
contact already chosen is copied at the next run (``CONTACTS_PROFILES_REFRESH_SQL``). Readers take
every row of a page's accounts with one query (``tenant_contacts_get``).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import connection

from core.rows import rows_as_dicts
from customers.metrics.scope import dirty_table, tenant_rows_sql
from customers.models import ContactRole

# Days of activity that make the champion ("most active over 30 days").
CHAMPION_WINDOW_DAYS = 30
# The identify traits read for a person's role in the account, in this order (the first that is text).
CONTACT_ROLE_TRAITS = ("role", "title")
# Words of a role or title trait (lower case, whole words; a phrase matches its words in a row) that
# make a person the account's admin or its buyer. One person may be both ("Billing admin").
CONTACT_ROLE_WORDS: dict[str, tuple[str, ...]] = {
    ContactRole.ADMIN: ("admin", "administrator", "owner", "account owner", "workspace owner", "superuser"),
    ContactRole.BUYER: (
        "buyer",
        "billing",
        "finance",
        "procurement",
        "purchasing",
        "founder",
        "co founder",
        "cofounder",
        "ceo",
        "cfo",
        "coo",
        "cto",
        "president",
        "vp",
        "vice president",
        "head of",
        "director",
    ),
}
# The order contacts are listed in (the API's ``contacts``, the pages, the CSV).
CONTACT_ROLE_ORDER = (ContactRole.CHAMPION, ContactRole.ADMIN, ContactRole.BUYER)

# Each user of the rewritten accounts with their activity (90 days of the user-day rollup, by its
# primary key (tenant_id, user_id, day), reached as the engine's queries reach the run's tenants),
# ranked by activity within the account; kept: the most active and those with a role or title
# trait. Their traits come from ops_user_profiles (its primary key; a reference table on Citus, so
# the statement runs on the node holding each account).
CONTACT_CANDIDATES_SQL = """
SELECT r.tenant_id, r.user_id, r.events_30d, r.last_seen_on, r.activity_rank,
       COALESCE(p.name, '') AS name, COALESCE(p.email, '') AS email,
       p.traits ->> 'role' AS role_trait, p.traits ->> 'title' AS title_trait
FROM (
    SELECT u.*, row_number() OVER (PARTITION BY u.tenant_id
                                   ORDER BY u.events_30d DESC, u.last_seen_on DESC, u.user_id) AS activity_rank
    FROM (SELECT x.tenant_id, x.user_id,
                 COALESCE(sum(x.value) FILTER (WHERE x.day > %(d)s::date - %(window)s), 0) AS events_30d,
                 max(x.day) AS last_seen_on
          FROM {user_days} x
          GROUP BY x.tenant_id, x.user_id) u
) r
LEFT JOIN ops_user_profiles p ON p.user_id = r.user_id
WHERE (r.activity_rank = 1 AND r.events_30d > 0) OR p.traits ?| %(traits)s::text[]
ORDER BY r.tenant_id, r.activity_rank
"""
# The rewritten accounts' rows go, and the new ones come, in the run's transaction (primary key; the
# ids as an array, read from the run's dirty set: {dirty} is scope.dirty_table()).
CONTACTS_DELETE_ALL_SQL = "DELETE FROM ops_tenant_contacts"
CONTACTS_DELETE_SQL = "DELETE FROM ops_tenant_contacts WHERE tenant_id = ANY(%(tenants)s::text[])"
DIRTY_IDS_SQL = "SELECT tenant_id FROM {dirty}"
CONTACTS_INSERT_SQL = """
INSERT INTO ops_tenant_contacts (tenant_id, role, user_id, name, email, title, last_seen_on, events_30d, as_of,
                                 computed_at)
SELECT c.tenant_id, c.role, c.user_id, c.name, c.email, c.title, c.last_seen_on, c.events_30d, c.as_of, c.computed_at
FROM jsonb_to_recordset(%s::jsonb) AS c(tenant_id text, role text, user_id text, name text, email text, title text,
                                       last_seen_on date, events_30d bigint, as_of date, computed_at timestamptz)
ORDER BY c.tenant_id, c.role
"""
# A contact already chosen whose identify traits changed since: its name and email follow them.
# Reads every contact row (at most three per account) and ops_user_profiles by its primary key.
CONTACTS_PROFILES_REFRESH_SQL = """
UPDATE ops_tenant_contacts c SET name = p.name, email = p.email
FROM ops_user_profiles p
WHERE p.user_id = c.user_id AND p.updated_at > c.computed_at AND (p.name, p.email) IS DISTINCT FROM (c.name, c.email)
"""
# A page's accounts' contacts: ops_tenant_contacts by its primary key (tenant_id, role).
CONTACTS_OF_TENANTS_SQL = """
SELECT tenant_id, role, user_id, name, email, title, last_seen_on, events_30d
FROM ops_tenant_contacts WHERE tenant_id = ANY(%(tenants)s::text[])
"""


def _words(text: str) -> str:
    """A trait as space-separated lower-case words, padded: " head of sales "."""
    return " " + " ".join(w for w in re.split(r"[^0-9a-z]+", text.lower()) if w) + " "


def contact_roles_of(role_trait: Any, title_trait: Any) -> tuple[str, list[str]]:
    """(the trait as sent, the contact roles it names: admin, buyer) for a person's ``role``/``title`` traits.
    A trait that is not text names nothing."""
    said = [v.strip() for v in (role_trait, title_trait) if isinstance(v, str) and v.strip()]
    words = " ".join(_words(v) for v in said)
    roles = [
        str(role)
        for role in (ContactRole.ADMIN, ContactRole.BUYER)
        if any(f" {phrase} " in words for phrase in CONTACT_ROLE_WORDS[role])
    ]
    return (" / ".join(dict.fromkeys(said)))[:255], roles


@dataclass(frozen=True)
class Candidate:
    tenant_id: str
    user_id: str
    name: str
    email: str
    title: str
    roles: tuple[str, ...]
    events_30d: int
    last_seen_on: date | None
    activity_rank: int


def contacts_choose(candidates: list[Candidate]) -> dict[str, Candidate]:
    """role -> the person, for one account's candidates (most active first): the champion is the most
    active with an event in 30 days; an admin or buyer the most active whose traits name the role."""
    chosen: dict[str, Candidate] = {}
    for c in sorted(candidates, key=lambda c: c.activity_rank):
        if c.activity_rank == 1 and c.events_30d > 0:
            chosen.setdefault(ContactRole.CHAMPION, c)
        for role in c.roles:
            chosen.setdefault(role, c)
    return chosen


def tenant_contacts_write(*, as_of: date, now: datetime, scope: str) -> int:
    """Rewrite the contacts of the run's tenants (``scope``: "all", or "dirty"/"lateral" for the
    run's dirty tenants, scope.py) in the caller's transaction; returns how many rows were written.
    Idempotent: the same rollups and traits give the same rows."""
    user_days = tenant_rows_sql("ops_rollup_tenant_user_day", "x.day <= %(d)s::date", scope=scope)
    with connection.cursor() as cursor:
        cursor.execute(
            CONTACT_CANDIDATES_SQL.format(user_days=user_days),
            {"d": as_of, "window": CHAMPION_WINDOW_DAYS, "traits": list(CONTACT_ROLE_TRAITS)},
        )
        found = rows_as_dicts(cursor)
    by_tenant: dict[str, list[Candidate]] = defaultdict(list)
    for r in found:
        title, roles = contact_roles_of(r["role_trait"], r["title_trait"])
        by_tenant[r["tenant_id"]].append(
            Candidate(
                tenant_id=r["tenant_id"],
                user_id=r["user_id"],
                name=r["name"],
                email=r["email"],
                title=title,
                roles=tuple(roles),
                events_30d=int(r["events_30d"]),
                last_seen_on=r["last_seen_on"],
                activity_rank=int(r["activity_rank"]),
            )
        )
    rows = [
        {
            "tenant_id": tenant_id,
            "role": str(role),
            "user_id": c.user_id,
            "name": c.name,
            "email": c.email,
            "title": c.title,
            "last_seen_on": c.last_seen_on.isoformat() if c.last_seen_on else None,
            "events_30d": c.events_30d,
            "as_of": as_of.isoformat(),
            "computed_at": now.isoformat(),
        }
        for tenant_id, candidates in sorted(by_tenant.items())
        for role, c in contacts_choose(candidates).items()
    ]
    with connection.cursor() as cursor:
        if scope == "all":
            cursor.execute(CONTACTS_DELETE_ALL_SQL)
        else:
            cursor.execute(DIRTY_IDS_SQL.format(dirty=dirty_table()))
            cursor.execute(CONTACTS_DELETE_SQL, {"tenants": [r["tenant_id"] for r in rows_as_dicts(cursor)]})
        if rows:
            cursor.execute(CONTACTS_INSERT_SQL, [json.dumps(rows)])
        cursor.execute(CONTACTS_PROFILES_REFRESH_SQL)
    return len(rows)


def contact_answer(row: dict[str, Any]) -> dict[str, Any]:
    """One contact as the API, the pages and the CSV show it."""
    return {
        "role": row["role"],
        "name": row["name"] or None,
        "email": row["email"] or None,
        "title": row["title"] or None,
        "last_seen": row["last_seen_on"],
        "user_id": row["user_id"],
        "events_30d": int(row["events_30d"]),
    }


def tenant_contacts_get(*, tenant_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """tenant id -> its contacts (champion, admin, buyer; those known), one query for any number of tenants."""
    found: dict[str, list[dict[str, Any]]] = {tenant_id: [] for tenant_id in tenant_ids}
    if not tenant_ids:
        return found
    with connection.cursor() as cursor:
        cursor.execute(CONTACTS_OF_TENANTS_SQL, {"tenants": list(tenant_ids)})
        rows = rows_as_dicts(cursor)
    order = {str(role): i for i, role in enumerate(CONTACT_ROLE_ORDER)}
    for row in sorted(rows, key=lambda r: (r["tenant_id"], order.get(r["role"], len(order)))):
        found.setdefault(row["tenant_id"], []).append(contact_answer(row))
    return found


def contacts_people(contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The contacts (``contact_answer``s, or the API's JSON of them) as people, each once with their
    roles in the listed order: {name, email, title, last_seen (a date), user_id, roles}."""
    people: dict[str, dict[str, Any]] = {}
    for c in contacts:
        seen = c["last_seen"]
        person = people.setdefault(
            c["user_id"],
            {**c, "roles": [], "last_seen": date.fromisoformat(seen) if isinstance(seen, str) else seen},
        )
        person["roles"].append(c["role"])
    return list(people.values())


def contacts_words(contacts: list[dict[str, Any]]) -> str:
    """The contacts in one line, each person once with their roles: "Jane Doe <jane@acme.io> (champion,
    admin; seen 2026-03-14)". Empty when none is known (the CSV's column and the digest's line)."""
    parts = []
    for p in contacts_people(contacts):
        who = p["name"] or p["email"] or p["user_id"]
        if p["name"] and p["email"]:
            who = f"{p['name']} <{p['email']}>"
        seen = f"; seen {p['last_seen'].isoformat()}" if p["last_seen"] else ""
        parts.append(f"{who} ({', '.join(p['roles'])}{seen})")
    return "; ".join(parts)
