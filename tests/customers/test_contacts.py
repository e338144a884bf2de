"""The person to call: each account's champion and, where the identify traits say so, its admin and buyer,
computed by the recompute and shown by the at-risk API, the CSV, Today and the Customer page."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.db import transaction

from customers.metrics.contacts import contact_roles_of
from customers.metrics.recompute import metrics_recompute
from customers.metrics.texts import talk_track_facts, talk_track_render
from customers.models import Tenant, TenantContact
from events.ingestion.identities import Identity, identities_apply
from tests.customers.conftest import NOW, Ev, days_ago

pytestmark = pytest.mark.django_db(transaction=True)


def _identify(*people: Identity, at: Any = NOW) -> None:
    # The ingest's own writer of identify traits (an SDK's identify call lands here).
    with transaction.atomic():
        identities_apply(list(people), now=at)


def _population(store: Any) -> None:
    events = []
    # acme: Jane made 2 exports a day on days 7..29 (46 events in 30 days), Bob 2 events this week, Carol
    # one 40 days ago; Olga made more than Jane (2 a day on days 31..60: 60 events) but none in 30 days.
    events += [Ev("acme", "EXPORT_COMPLETED", days_ago(d), user_id="u_jane") for d in range(7, 30) for _ in range(2)]
    events += [Ev("acme", t, days_ago(2), user_id="u_bob") for t in ("EXPORT_COMPLETED", "INCIDENT_VIEWED")]
    events += [Ev("acme", "INCIDENT_VIEWED", days_ago(40), user_id="u_carol")]
    events += [Ev("acme", "INCIDENT_VIEWED", days_ago(d), user_id="u_olga") for d in range(31, 61) for _ in range(2)]
    # globex: one user, 3 views on days 1..3; its billing mailbox is its only person.
    events += [Ev("globex", "INCIDENT_VIEWED", days_ago(d), user_id="u_bill") for d in (1, 2, 3)]
    store(events)
    Tenant.objects.filter(tenant_id="acme").update(name="Acme Corp")
    _identify(
        Identity(user_id="u_jane", name="Jane Doe", email="jane@acme.io"),
        Identity(user_id="u_bob", name="Bob Stone", email="bob@acme.io", traits={"role": "Admin"}),
        Identity(user_id="u_carol", name="Carol Finch", email="carol@acme.io", traits={"title": "CFO"}),
        Identity(user_id="u_olga", name="Olga Berg", email="olga@acme.io", traits={"title": "Engineer"}),
        Identity(user_id="u_bill", email="billing@globex.io", traits={"role": "billing"}),
        # A buyer by her traits, but of no account here: she never used acme or globex.
        Identity(user_id="u_ghost", name="Gail Host", email="gail@acme.io", traits={"role": "buyer"}),
    )
    metrics_recompute()


def _contacts(tenant_id: str) -> dict[str, tuple[str, str, str, date | None, int]]:
    return {
        c.role: (c.user_id, c.name, c.email, c.last_seen_on, c.events_30d)
        for c in TenantContact.objects.filter(tenant_id=tenant_id)
    }


def test_the_champion_is_the_most_active_real_user_over_30_days_and_traits_name_the_admin_and_buyer(metrics_db):
    _population(metrics_db)
    assert _contacts("acme") == {
        "champion": ("u_jane", "Jane Doe", "jane@acme.io", date(2026, 3, 8), 46),
        "admin": ("u_bob", "Bob Stone", "bob@acme.io", date(2026, 3, 13), 2),
        "buyer": ("u_carol", "Carol Finch", "carol@acme.io", date(2026, 2, 3), 0),
    }
    # One person holds two roles: a row each.
    assert _contacts("globex") == {
        "champion": ("u_bill", "", "billing@globex.io", date(2026, 3, 14), 3),
        "buyer": ("u_bill", "", "billing@globex.io", date(2026, 3, 14), 3),
    }


def test_a_later_identify_renames_the_contact_at_the_next_run_without_new_events(metrics_db):
    _population(metrics_db)
    _identify(Identity(user_id="u_jane", name="Janet Doe"), at=NOW + timedelta(minutes=1))
    metrics_recompute(now=NOW + timedelta(minutes=2))
    assert _contacts("acme")["champion"][:3] == ("u_jane", "Janet Doe", "jane@acme.io")


def test_the_champion_moves_when_another_user_becomes_the_most_active(metrics_db):
    _population(metrics_db)
    metrics_db([Ev("acme", "INCIDENT_VIEWED", days_ago(0), user_id="u_bob") for _ in range(50)])
    metrics_recompute()
    contacts = _contacts("acme")
    # Bob: 2 + 50 = 52 events in 30 days, more than Jane's 46; he is the admin too.
    assert contacts["champion"] == ("u_bob", "Bob Stone", "bob@acme.io", date(2026, 3, 15), 52)
    assert contacts["admin"] == contacts["champion"]


def test_a_full_rebuild_gives_the_contacts_the_incremental_runs_gave(metrics_db):
    _population(metrics_db)
    metrics_db([Ev("acme", "INCIDENT_VIEWED", days_ago(0), user_id="u_carol") for _ in range(3)])
    metrics_recompute()
    incremental = {t: _contacts(t) for t in ("acme", "globex")}
    metrics_recompute(full=True)
    assert {t: _contacts(t) for t in ("acme", "globex")} == incremental


@pytest.mark.parametrize(
    ("role", "title", "roles"),
    [
        ("Admin", None, ["admin"]),
        ("owner", None, ["admin"]),
        (None, "Head of Operations", ["buyer"]),
        (None, "Co-founder & CEO", ["buyer"]),
        ("billing admin", None, ["admin", "buyer"]),
        ("member", "Software engineer", []),
        (None, "Headless CMS specialist", []),  # "head" is only a buyer as "head of"
        (42, ["admin"], []),  # traits that are not text name nothing
    ],
)
def test_role_and_title_traits_name_admins_and_buyers_by_whole_words(role, title, roles):
    assert contact_roles_of(role, title)[1] == roles


def test_talk_tracks_greet_the_champion_by_first_name_and_a_nameless_one_as_there(metrics_db):
    _population(metrics_db)
    acme = talk_track_facts(tenant_id="acme")
    assert talk_track_render("Hi {first_name}, how is {account} doing?", acme) == "Hi Jane, how is Acme Corp doing?"
    # globex's champion is its billing mailbox: never "Hi Billing", nor the company's name.
    globex = talk_track_facts(tenant_id="globex")
    assert talk_track_render("Hi {first_name},", globex) == "Hi there,"


def test_the_api_the_csv_today_and_the_customer_page_name_the_contacts(metrics_db, read_client, staff_client):
    _population(metrics_db)
    cache.clear()
    body = read_client.get("/ops/customers/at-risk?limit=10").json()
    acme = next(c for c in body if c["tenant_id"] == "acme")
    assert [(c["role"], c["name"], c["email"], c["last_seen"], c["events_30d"]) for c in acme["contacts"]] == [
        ("champion", "Jane Doe", "jane@acme.io", "2026-03-08", 46),
        ("admin", "Bob Stone", "bob@acme.io", "2026-03-13", 2),
        ("buyer", "Carol Finch", "carol@acme.io", "2026-02-03", 0),
    ]
    detail = read_client.get("/ops/customers/globex").json()
    assert [(c["role"], c["name"], c["email"]) for c in detail["contacts"]] == [
        ("champion", None, "billing@globex.io"),
        ("buyer", None, "billing@globex.io"),
    ]

    rows = list(csv.DictReader(io.StringIO(staff_client.get("/customers/at-risk.csv").content.decode())))
    assert next(r for r in rows if r["tenant_id"] == "acme")["contacts"] == (
        "Jane Doe <jane@acme.io> (champion; seen 2026-03-08); Bob Stone <bob@acme.io> (admin; seen 2026-03-13); "
        "Carol Finch <carol@acme.io> (buyer; seen 2026-02-03)"
    )

    with time_machine.travel(NOW, tick=False):
        today = staff_client.get("/").content.decode()
        page = staff_client.get("/customers/globex/").content.decode()
    row = today.split('data-testid="call-row-acme"', 1)[1].split("</tr>", 1)[0]
    assert "Jane Doe" in row and "jane@acme.io" in row and "(champion)" in row and "seen 8 Mar" in row
    assert "Bob Stone" in row and "(admin)" in row and "Carol Finch" in row and "(buyer)" in row
    # One person in two roles is listed once.
    assert page.count("billing@globex.io") == 1 and "(champion, buyer)" in page


def test_today_names_the_contact_of_a_customer_in_progress_but_no_longer_at_risk(metrics_db, staff_client):
    # calm: one user every day for 28 days (not at risk); the founder had called them this week.
    metrics_db([Ev("calm", "INCIDENT_VIEWED", days_ago(d), user_id="u_cal") for d in range(28)])
    _identify(Identity(user_id="u_cal", name="Cal Smith", email="cal@calm.io"))
    metrics_recompute()
    response = staff_client.post(
        "/playbooks/interventions/new/",
        {"tenant_id": "calm", "channel": "call", "action": "Checked in", "date": "2026-03-13", "next": "/"},
    )
    assert response.status_code == 302, response.content.decode()[:500]
    cache.clear()
    assert read_at_risk_ids(staff_client) == []
    with time_machine.travel(NOW, tick=False):
        today = staff_client.get("/").content.decode()
    row = today.split('data-testid="call-row-calm"', 1)[1].split("</tr>", 1)[0]
    assert "Cal Smith" in row and "cal@calm.io" in row and "(champion)" in row


def read_at_risk_ids(client: Any) -> list[str]:
    return [entry["tenant_id"] for entry in client.get("/ops/customers/at-risk?limit=10").json()]
