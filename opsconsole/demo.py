"""A realistic, deterministic demo history, written through the ingestion service.

It lives in opsconsole (the top of the dependency flow) because it writes both the events and
the customers' tenants (kinds, plan limits); the events app never imports customers.

Each tenant follows an archetype the console must recognise: healthy accounts,
engagement that decays after a change, silent churn (the API is busy, nobody
investigates), policy friction, abandonment, legal-only (certificates only),
brand-new accounts, and internal/test traffic that must never count.
The same ``seed`` gives the same event ids, so running it twice stores nothing
twice.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.models import ApiKey, ApiKeyScope
from customers.models import Tenant, TenantKind
from events.ingestion.identities import Identity, identities_apply
from events.ingestion.services import IngestReceipt, events_ingest
from events.models import Event

ARCHETYPES = [
    "healthy",
    "healthy",
    "decaying",
    "silent_churn",
    "policy_friction",
    "abandonment",
    "legal_only",
    "new",
    "healthy",
    "internal",
]
COMPANY_WORDS = [
    "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka", "tyrell", "cyberdyne",
    "soylent", "oscorp", "aperture", "vandelay", "pied", "dunder", "gringotts", "monarch", "nakatomi", "zorg",
]  # fmt: skip
BROWSER_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
)
INTERNAL_DOMAIN = "opsconsole.dev"
# Who the demo's users are, as an identify call says it: a name, an email, and for the first two of
# each account the traits that make them its admin and its buyer (customers/metrics/contacts.py).
PEOPLE = [
    "Ada Moreau", "Ben Okafor", "Chloe Park", "Diego Santos", "Elif Yilmaz", "Farah Haddad", "Gus Lindqvist",
    "Hana Sato", "Ivan Petrov", "Jade Walker", "Kofi Mensah", "Lena Vogel", "Mateo Rossi", "Nora Byrne",
]  # fmt: skip
DEMO_ROLE_TRAITS = [{"role": "admin"}, {"title": "Head of Operations"}]


@dataclass
class DemoTenant:
    tenant_id: str
    archetype: str
    users: list[str]
    start_day: int  # days ago the tenant appeared


def demo_tenants(*, count: int, days: int, rng: random.Random) -> list[DemoTenant]:
    tenants = []
    for index in range(count):
        archetype = ARCHETYPES[index % len(ARCHETYPES)]
        word = COMPANY_WORDS[index % len(COMPANY_WORDS)]
        suffix = index // len(COMPANY_WORDS)
        tenant_id = f"{word}{suffix or ''}" if archetype != "internal" else f"internal-{word}"
        # A few large tenants, many small ones.
        size = 12 if index < max(1, count // 10) else rng.randint(2, 6)
        users = [f"{tenant_id}-u{n}" for n in range(size)]
        start_day = rng.randint(3, 5) if archetype == "new" else days
        tenants.append(DemoTenant(tenant_id, archetype, users, start_day))
    return tenants


def _activity_scale(tenant: DemoTenant, day_ago: int) -> float:
    """How active the tenant is on a day (1.0 = its normal level)."""
    if tenant.archetype == "decaying":
        return 1.0 if day_ago > 12 else 0.12
    return 1.0


def _day_events(tenant: DemoTenant, day_ago: int, rng: random.Random, now: datetime) -> Iterator[dict[str, Any]]:
    # Long on purpose: one demo day's story, a branch per kind of account, read top to bottom.
    day_start = (now - timedelta(days=day_ago)).replace(hour=0, minute=0, second=0, microsecond=0)

    def at(hour: float) -> datetime:
        moment = day_start + timedelta(hours=hour)
        return min(moment, now - timedelta(minutes=1))

    def event(event_type: str, user: str, session: str, hour: float, **metadata: Any) -> dict[str, Any]:
        metadata.setdefault("user_agent", BROWSER_UA)
        return {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "tenant_id": tenant.tenant_id,
            "user_id": user,
            "session_id": session,
            "event_type": event_type,
            "occurred_at": at(hour).isoformat(),
            "metadata": metadata,
        }

    arch = tenant.archetype
    if day_ago == tenant.start_day - 1 or (day_ago == tenant.start_day and arch == "new"):
        for user in tenant.users:
            yield event("SIGNUP", user, "", rng.uniform(8, 10), email=f"{user}@{tenant.tenant_id}.example")

    # The product's own API traffic: busy for every archetype, including silent churn.
    api_calls = rng.randint(3, 8)
    for _ in range(api_calls):
        yield event("API_CALL", "", "", rng.uniform(0, 23.9), user_agent="product-backend/2.3")

    if arch == "legal_only":
        if rng.random() < 0.6:
            user = rng.choice(tenant.users)
            yield event("CERT_GENERATED", user, "", rng.uniform(9, 17))
            yield event("CERT_DOWNLOADED", user, "", rng.uniform(9, 17))
        return
    if arch == "silent_churn" and day_ago < 16:
        return  # the API keeps running; nobody logs in or investigates
    if arch == "internal":
        user = f"founder@{INTERNAL_DOMAIN}"
        session = f"int-{day_ago}"
        yield event("LOGIN", user, session, 9, email=user, test=True)
        yield event("INCIDENT_VIEWED", user, session, 9.2, email=user, test=True)
        yield event("CORE_ACTION", "ci-bot", "", 3, user_agent="curl/8.5.0", action="smoke_test")
        return

    scale = _activity_scale(tenant, day_ago)
    active_users = [u for u in tenant.users if rng.random() < 0.6 * scale]
    for user in active_users:
        session = f"{user}-d{day_ago}"
        hour = rng.uniform(8, 18)
        yield event("SESSION_STARTED", user, session, hour)
        yield event("LOGIN", user, session, hour + 0.01)
        for _ in range(rng.randint(1, 3)):
            yield event("INCIDENT_VIEWED", user, session, hour + 0.1)
        if rng.random() < 0.7:
            yield event("REPLAY_STARTED", user, session, hour + 0.2)
            yield event("REPLAY_COMPLETED", user, session, hour + 0.25)
        if rng.random() < 0.4:
            yield event("EXPORT_STARTED", user, session, hour + 0.3)
            yield event("EXPORT_COMPLETED", user, session, hour + 0.35)
        if rng.random() < 0.5:
            yield event("CORE_ACTION", user, session, hour + 0.4, action=rng.choice(["coach_call", "agent_run"]))
            yield event("DECISION", user, session, hour + 0.45)
        if rng.random() < 0.05:
            yield event("INCIDENT_VIEWED_NO_ACTION", user, session, hour + 0.5)
        if rng.random() < 0.1:
            yield event("SESSION_IDLE_TIMEOUT", user, session, hour + 1.0)
        else:
            yield event("SESSION_ENDED", user, session, hour + 0.9)

    recent = day_ago < 7
    if arch == "policy_friction" and recent and rng.random() < 0.8:
        user = rng.choice(tenant.users)
        for n in range(rng.randint(1, 2)):
            yield event("POLICY_BLOCK_REPEAT", user, f"{user}-d{day_ago}", 11 + n * 0.1, policy="pii-redaction")
    if arch == "abandonment" and recent and rng.random() < 0.7:
        user = rng.choice(tenant.users)
        session = f"{user}-abandon-d{day_ago}"
        yield event("REPLAY_STARTED", user, session, 14)
        yield event("REPLAY_ABORTED", user, session, 14.1)
        yield event("EXPORT_STARTED", user, session, 14.2)
        yield event("EXPORT_ABORTED", user, session, 14.3)
    if arch == "decaying" and day_ago == 14:
        yield event("POLICY_CHANGED", "", "", 10, change="stricter default policy")
    if day_ago == 40 and rng.random() < 0.3:
        yield event("PLAN_CHANGED", "", "", 10, plan="growth")


def seed_demo(
    *,
    tenants: int = 50,
    days: int = 60,
    seed: int = 1,
    now: datetime | None = None,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> IngestReceipt:
    """Write the demo history; returns the summed receipt. Idempotent for a given seed."""
    now = now or timezone.now()
    rng = random.Random(seed)
    plan = demo_tenants(count=tenants, days=days, rng=rng)
    with transaction.atomic():
        for tenant in plan:
            kind = TenantKind.INTERNAL if tenant.archetype == "internal" else TenantKind.CUSTOMER
            Tenant.objects.update_or_create(
                tenant_id=tenant.tenant_id,
                defaults={
                    "kind": kind,
                    "name": tenant.tenant_id.replace("-", " ").title(),
                    "notes": f"demo: {tenant.archetype}",
                },
            )
        identities_apply(_demo_people(plan), now=now)
    source, _ = ApiKey.objects.get_or_create(
        name="demo-seed",
        defaults={"scope": ApiKeyScope.INGEST, "prefix": "demo", "key_hash": uuid.uuid4().hex + uuid.uuid4().hex},
    )
    total = IngestReceipt()
    buffer: list[dict[str, Any]] = []

    def send() -> None:
        receipt = events_ingest(items=buffer, source=source, now=now)
        total.accepted += receipt.accepted
        total.duplicates += receipt.duplicates
        total.rejected.extend(receipt.rejected)
        buffer.clear()

    for day_ago in range(days, -1, -1):
        for tenant in plan:
            if day_ago > tenant.start_day:
                continue
            buffer.extend(_day_events(tenant, day_ago, rng, now))
            if len(buffer) >= batch_size:
                send()
        if progress:
            progress(1)
    if buffer:
        send()
    _plan_limit_near(plan[0].tenant_id, now=now)
    return total


def _demo_people(plan: list[DemoTenant]) -> list[Identity]:
    """Each customer user's identify traits (deterministic, no random draw: the events stay the same)."""
    people = []
    for t_index, tenant in enumerate(plan):
        if tenant.archetype == "internal":
            continue
        for u_index, user in enumerate(tenant.users):
            name = PEOPLE[(t_index * 3 + u_index) % len(PEOPLE)]
            traits = DEMO_ROLE_TRAITS[u_index] if u_index < len(DEMO_ROLE_TRAITS) else {}
            email = f"{name.split()[0].lower()}@{tenant.tenant_id}.example"
            people.append(Identity(user_id=user, name=name, email=email, traits=dict(traits)))
    return people


def _plan_limit_near(tenant_id: str, *, now: datetime) -> None:
    """Give the largest healthy tenant a plan limit it is about to reach (95% used),
    so the demo shows the pricing intervention."""
    used = Event.objects.filter(tenant_id=tenant_id, is_real=True, occurred_at__gte=now - timedelta(days=30)).count()
    if used:
        Tenant.objects.filter(tenant_id=tenant_id).update(monthly_event_limit=int(used / 0.95))
