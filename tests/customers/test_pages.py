"""The Customers and Customer pages and the at-risk CSV (server-rendered, staff only)."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from customers import read_cache
from customers.metrics.recompute import metrics_recompute
from customers.models import Tenant
from customers.selectors import stickiness_series, tenant_events_page
from tests.customers.conftest import (
    NOW,
    RANKED_AT_RISK,
    RANKED_BY_STRENGTH,
    RANKED_TENANTS,
    Ev,
    days_ago,
    metrics_rows_store,
)

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = ["/customers/", "/customers/decay/", "/customers/at-risk.csv"]


def _population(store) -> None:
    """Known answers (the API tests' population, computed by hand there):
    decay: 7d 0.7, 30d 5.5116, delta 0.127, high at 54.3; policy: friction 8, medium at 24;
    healthy ("Healthy Corp"): 7d 1.4, 30d 1.3023, delta 1.075, not at risk; ops: internal."""
    events = []
    events += [Ev("decay", "EXPORT_COMPLETED", days_ago(d)) for d in range(7, 30) for _ in range(2)]
    events += [Ev("decay", "EXPORT_COMPLETED", days_ago(2)), Ev("decay", "INCIDENT_VIEWED", days_ago(2))]
    events += [Ev("decay", "POLICY_CHANGED", days_ago(5))]
    events += [Ev("policy", "POLICY_BLOCK_REPEAT", days_ago(d), session_id=f"p{d}") for d in range(4)]
    events += [Ev("policy", "INCIDENT_VIEWED", days_ago(d)) for d in range(0, 28)]
    events += [Ev("healthy", "INCIDENT_VIEWED", days_ago(d)) for d in range(0, 28)]
    events += [Ev("ops", "REPLAY_ABORTED", days_ago(1), session_id=f"o{i}") for i in range(5)]
    store(events)
    Tenant.objects.filter(tenant_id="ops").update(kind="internal")
    Tenant.objects.filter(tenant_id="healthy").update(name="Healthy Corp")
    metrics_recompute()


def _rows(body: str) -> list[str]:
    return re.findall(r'<tr data-tenant="([^"]+)">', body)


# --- Access ------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PAGES)
def test_it_sends_anonymous_users_to_login(metrics_db, path):
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


@pytest.mark.parametrize("path", PAGES)
def test_it_refuses_a_logged_in_non_staff_user(metrics_db, path):
    Tenant.objects.create(tenant_id="decay")
    client = Client()
    client.force_login(get_user_model().objects.create_user("customer", password="pw-customer-1"))
    assert client.get(path).status_code == 403


# --- Customers list ----------------------------------------------------------------------------
def test_it_lists_customers_strongest_signal_first_with_the_trend_in_words(metrics_db, staff_client):
    _population(metrics_db)
    response = staff_client.get("/customers/")
    assert response.status_code == 200
    body = response.content.decode()
    assert _rows(body) == ["decay", "policy", "healthy"]  # customers only: the internal "ops" is left out
    decay = body[body.index('data-tenant="decay"') : body.index('data-tenant="policy"')]
    assert '<span class="status level-high">high</span>' in decay
    assert '<td data-label="Signal" class="num">54.3</td>' in decay
    assert '<td data-label="Stickiness 7d" class="num">0.70</td>' in decay
    assert '<td data-label="Stickiness 30d" class="num">5.51</td>' in decay
    # The delta with an arrow AND a word (the arrow is hidden from screen readers).
    assert '0.13 <span class="trend-down"><span aria-hidden="true">↓</span> down</span>' in decay
    healthy = body[body.index('data-tenant="healthy"') :]
    assert "Healthy Corp" in healthy and "not at risk" in healthy
    assert '1.07 <span class="trend-up"><span aria-hidden="true">↑</span> up</span>' in healthy
    assert "3 tenants." in body


# Filters and sorts against the hand-computed population (one population, many queries).
FILTER_CASES = [
    ("level=high", ["decay"]),
    ("level=medium", ["policy"]),
    ("level=at_risk", ["decay", "policy"]),
    ("level=none", ["healthy"]),
    ("q=corp", ["healthy"]),
    ("q=POL", ["policy"]),
    ("q=nobody", []),
    ("kind=all", ["decay", "policy", "healthy", "ops"]),
    ("kind=internal", ["ops"]),
    ("sort=tenant", ["decay", "healthy", "policy"]),
    ("sort=-tenant", ["policy", "healthy", "decay"]),
    ("sort=delta", ["decay", "healthy", "policy"]),  # 0.127, then 1.075 twice (ties by id)
    ("sort=-friction", ["policy", "decay", "healthy"]),
    ("sort=stickiness_7d&level=at_risk", ["decay", "policy"]),
]


def test_it_filters_and_sorts_customers(metrics_db, staff_client):
    _population(metrics_db)
    for query, expected in FILTER_CASES:
        response = staff_client.get(f"/customers/?{query}")
        assert response.status_code == 200, query
        assert _rows(response.content.decode()) == expected, query
    assert "No customer matches these filters." in staff_client.get("/customers/?q=nobody").content.decode()


def test_it_lists_critical_customers_first_and_still_sorts_by_signal_alone(metrics_db, staff_client):
    """A playbook raised "globex" to critical at strength 45: above "acme" (high, 55) by default."""
    metrics_rows_store(RANKED_TENANTS)
    body = staff_client.get("/customers/").content.decode()
    assert _rows(body) == [*RANKED_AT_RISK, "calm"]
    assert '<th scope="col" aria-sort="descending"><a href="?sort=level">Level</a></th>' in body
    assert 'aria-sort="none"><a href="?sort=-signal">Signal</a>' in body
    assert _rows(staff_client.get("/customers/?sort=-signal").content.decode()) == RANKED_BY_STRENGTH
    assert _rows(staff_client.get("/customers/?sort=level").content.decode()) == [
        "zeta",
        "hooli",
        "umbrella",
        "acme",
        "bravo",
        "globex",
        "initech",
        "calm",  # not at risk: last either way
    ]
    assert _rows(staff_client.get("/customers/?level=critical").content.decode()) == ["initech", "globex"]


def test_its_sort_links_keep_the_filters_and_toggle_the_direction(metrics_db, staff_client):
    _population(metrics_db)
    body = staff_client.get("/customers/?level=at_risk&sort=delta").content.decode()
    assert (
        '<th scope="col" class="num" aria-sort="ascending"><a href="?level=at_risk&amp;sort=-delta">Delta</a>' in body
    )
    assert 'aria-sort="none"><a href="?level=at_risk&amp;sort=tenant">Customer</a>' in body


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sort=password", "sort"),
        ("level=severe", "level"),
        ("kind=alien", "kind"),
        ("page=0", "page"),
        ("page=x", "page"),
    ],
)
def test_it_rejects_unknown_filters_with_a_400_naming_the_parameter(metrics_db, staff_client, query, field):
    response = staff_client.get(f"/customers/?{query}")
    assert response.status_code == 400
    body = response.content.decode()
    assert f"<code>{field}</code>" in body
    assert "data-tenant" not in body


def test_it_paginates_fifty_customers_a_page(metrics_db, staff_client):
    metrics_db([Ev(f"t{i:03d}", "INCIDENT_VIEWED", days_ago(1)) for i in range(55)])
    metrics_recompute()
    first = staff_client.get("/customers/?sort=tenant").content.decode()
    assert _rows(first) == [f"t{i:03d}" for i in range(50)]
    assert "Page 1 of 2" in first
    assert 'href="?sort=tenant&page=2" rel="next"' in first
    second = staff_client.get("/customers/?sort=tenant&page=2").content.decode()
    assert _rows(second) == [f"t{i:03d}" for i in range(50, 55)]
    assert staff_client.get("/customers/?sort=tenant&page=3").status_code == 404


def test_it_says_there_are_no_customers_yet_on_an_empty_install(metrics_db, staff_client):
    response = staff_client.get("/customers/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "No customers yet" in body
    assert "Getting started: send your first event" in body


# --- CSV ---------------------------------------------------------------------------------------
def test_it_exports_the_at_risk_list_as_csv(metrics_db, staff_client):
    _population(metrics_db)
    response = staff_client.get("/customers/at-risk.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="customers-at-risk-2026-03-15.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["tenant_id"] for r in rows] == ["decay", "policy"]
    decay, policy = rows
    assert decay["risk_level"] == "high" and decay["risk_signal_strength"] == "54.3"
    assert decay["stickiness_delta"] == "0.127"
    assert decay["first_intervention_priority"] == "today"
    assert decay["triggering_signals"].startswith("This week's use is 13% of normal (below 50%; ratio 0.13)")
    assert decay["recent_changes"] == "policy change 5 days ago"
    assert policy["friction_weighted_score"] == "8.0"
    assert policy["top_friction_type"] == "POLICY_BLOCK_REPEAT"


def test_its_csv_lists_critical_customers_before_stronger_high_ones(metrics_db, staff_client):
    metrics_rows_store(RANKED_TENANTS)
    rows = list(csv.DictReader(io.StringIO(staff_client.get("/customers/at-risk.csv").content.decode())))
    assert [(r["tenant_id"], r["risk_level"], r["risk_signal_strength"]) for r in rows] == [
        ("initech", "critical", "70.0"),
        ("globex", "critical", "45.0"),
        ("acme", "high", "55.0"),
        ("bravo", "high", "55.0"),
        ("umbrella", "high", "38.0"),
        ("hooli", "medium", "30.0"),
        ("zeta", "medium", "12.0"),
    ]


def test_its_csv_neutralises_spreadsheet_formulas_in_names(metrics_db, staff_client):
    metrics_db([Ev("evil", "POLICY_BLOCK_REPEAT", days_ago(d), session_id=f"e{d}") for d in range(4)])
    Tenant.objects.filter(tenant_id="evil").update(name='=HYPERLINK("http://x.example","click")')
    metrics_recompute()
    rows = list(csv.DictReader(io.StringIO(staff_client.get("/customers/at-risk.csv").content.decode())))
    assert rows[0]["name"] == '\'=HYPERLINK("http://x.example","click")'


# --- Customer ----------------------------------------------------------------------------------
def test_it_shows_a_customer_with_charts_components_and_interventions(metrics_db, staff_client):
    _population(metrics_db)
    response = staff_client.get("/customers/decay/")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('<svg class="chart"') == 2
    assert "<title>Stickiness: last 7 days against the 30-day weekly baseline, 60 days</title>" in body
    assert "<title>Daily friction score, 60 days (each day capped at 10)</title>" in body
    # The change event is marked on the stickiness chart (policy change 5 days ago: 10 Mar).
    assert "<title>policy change (10 Mar)</title>" in body
    # Every component is listed with what it measures.
    for name in (
        "Silent churn",
        "Engagement decay",
        "Never investigated",
        "Friction",
        "Champion silent",
        "Usage cliff",
    ):
        assert f'<th scope="row">{name}<br>' in body
    # Issue 17: the founder sentence first, the figures one click away (<details>).
    assert (
        '<summary class="small">The figures behind it</summary><p class="small muted">This week&#x27;s use is 13% of normal'
        in body
    )
    assert "<summary>How it was computed</summary>" in body
    assert "policy change 5 days ago" in body
    assert 'class="status level-high">high risk</span>' in body


def test_its_stickiness_series_ends_on_the_cached_metrics(metrics_db):
    _population(metrics_db)
    series = stickiness_series(tenant_id="decay", as_of=NOW.date())
    assert len(series) == 60
    assert series[0]["day"] == NOW.date() - timedelta(days=59)
    last = series[-1]
    # 1 export + 1 view this week = 0.7; 47 exports + 1 view in 30 days = 23.7 / 4.3 = 5.5116
    assert last["stickiness_7d"] == 0.7
    assert last["stickiness_30d"] == 5.5116
    # Eight days ago only the baseline exports count: 2 exports a day over days 8..29 (22 days) = 22 x 2 x 0.5.
    assert series[-9]["stickiness_30d"] == round(22.0 / 4.3, 4)


def test_it_answers_404_for_an_unknown_tenant(metrics_db, staff_client):
    assert staff_client.get("/customers/nobody/").status_code == 404


def test_it_shows_a_tenant_whose_metrics_are_not_computed_yet(metrics_db, staff_client):
    metrics_db([Ev("fresh", "INCIDENT_VIEWED", days_ago(0))])
    response = staff_client.get("/customers/fresh/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "No metrics for this customer yet" in body
    assert "INCIDENT_VIEWED" in body  # the timeline reads the events themselves


def test_its_timeline_pages_by_keyset_newest_first_without_gaps_or_repeats(metrics_db, staff_client):
    # 120 events, three at each instant (ties are ordered by id), every fourth instant a friction event.
    events = []
    for i in range(40):
        kind = "REPLAY_ABORTED" if i % 4 == 0 else "INCIDENT_VIEWED"
        events += [Ev("busy", kind, NOW - timedelta(minutes=i), session_id=f"s{i}-{j}") for j in range(3)]
    metrics_db(events)
    seen: list[int] = []
    cursor = None
    sizes = []
    while True:
        page = tenant_events_page(tenant_id="busy", before=cursor, limit=50)
        sizes.append(len(page.events))
        seen += [e.id for e in page.events]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sizes == [50, 50, 20]
    assert len(seen) == len(set(seen)) == 120
    instants = [e.occurred_at for e in tenant_events_page(tenant_id="busy", limit=120).events]
    assert instants == sorted(instants, reverse=True)

    # The page opens on a short first page, the newest 10: minutes 0..2 (9 events) and one of
    # minute 3; friction among them: minute 0 (3 events).
    first = staff_client.get("/customers/busy/").content.decode()
    assert first.count('<tr class="friction">') == 3
    assert first.count("<strong>friction</strong> (3.0)") == 3
    older = re.search(r'href="\?before=([^"#]+)#timeline" rel="next">Older events', first)
    assert older is not None
    second = staff_client.get(f"/customers/busy/?before={older.group(1)}").content.decode()
    # Then 50 at a time from where it ended: the other two of minute 3 and minutes 4..19;
    # friction: minutes 4, 8, 12 and 16 (3 each).
    assert second.count('<tr class="friction">') == 4 * 3
    assert "Newest events" in second


def test_a_call_logged_by_another_web_process_shows_on_the_next_customer_page(metrics_db, staff_client, settings):
    """The page's metrics, charts and follow-up are kept until the next recompute or founder action;
    a call saved by another process, while this one trusts its last version check for an hour,
    still shows at once."""
    settings.METRICS_VERSION_CHECK_SECONDS = 3600
    _population(metrics_db)
    assert "Rang Dana, their CTO" not in staff_client.get("/customers/decay/").content.decode()
    seen = read_cache._version_seen[1]
    response = staff_client.post(
        "/playbooks/interventions/new/",
        {"tenant_id": "decay", "action": "Rang Dana, their CTO", "channel": "call", "next": "/customers/decay/"},
    )
    assert response.status_code == 302
    # Another process served the form: this one checked the version a moment ago, before the call.
    read_cache._version_seen = (time.monotonic(), seen)
    assert "<strong>Last step:</strong> Rang Dana, their CTO" in staff_client.get("/customers/decay/").content.decode()


def test_an_event_received_after_the_recompute_shows_in_the_timeline_at_once(metrics_db, staff_client):
    _population(metrics_db)
    assert "CERT_GENERATED" not in staff_client.get("/customers/decay/").content.decode()
    metrics_db([Ev("decay", "CERT_GENERATED", NOW - timedelta(minutes=1))])
    body = staff_client.get("/customers/decay/").content.decode()
    timeline = body[body.index('<table class="timeline">') :]
    assert timeline.index("CERT_GENERATED") < timeline.index("INCIDENT_VIEWED")


@pytest.mark.parametrize("before", ["yesterday", "2026-03-15T12:00:00~x", "2026-03-15T12:00:00~5"])
def test_it_rejects_a_malformed_timeline_position(metrics_db, staff_client, before):
    metrics_db([Ev("busy", "INCIDENT_VIEWED", days_ago(0))])
    response = staff_client.get("/customers/busy/", {"before": before})
    assert response.status_code == 400
    assert "not a timeline position" in response.content.decode()


# --- Admin -------------------------------------------------------------------------------------
def test_admin_lists_tenants_with_their_risk_and_a_link_to_the_console(metrics_db, staff_client):
    _population(metrics_db)
    Tenant.objects.create(tenant_id="quiet")  # no events yet: no metrics row
    get_user_model().objects.filter(username="founder").update(is_superuser=True)
    body = staff_client.get("/admin/customers/tenant/").content.decode()
    assert '<td class="field-risk_level">high</td>' in body
    assert '<td class="field-risk_level">not at risk</td>' in body
    assert '<td class="field-risk_level">not computed</td>' in body
    assert '<a href="/customers/decay/">open in console</a>' in body
    filtered = staff_client.get("/admin/customers/tenant/?metrics__risk_level=medium").content.decode()
    assert '<a href="/customers/policy/">open in console</a>' in filtered
    assert "/customers/decay/" not in filtered
    change = staff_client.get("/admin/customers/tenant/decay/change/").content.decode()
    assert 'href="/customers/decay/" class="viewsitelink"' in change


def test_it_shows_times_in_the_founders_time_zone(metrics_db, staff_client, settings):
    settings.TIME_ZONE = "Africa/Johannesburg"  # UTC+2, no daylight saving
    metrics_db([Ev("acme", "INCIDENT_VIEWED", NOW - timedelta(hours=3))])  # 09:00 UTC
    body = staff_client.get("/customers/acme/").content.decode()
    assert "15 Mar 2026 11:00" in body
    assert "3\xa0hours ago" in body
    assert "Times in Africa/Johannesburg" in body
