"""The Today page (``/``): north star with its action line, whom to call, DAU/MAU, runway, alerts, freshness."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from core.models import AlertNotification, DeliveryState
from customers import read_cache
from customers.metrics.recompute import metrics_recompute
from customers.selectors import real_users_daily
from events.models import AlertState, NorthStarSettings, RealUser
from opsconsole.views import _playbook_labels
from tests.customers.conftest import NOW, RANKED_AT_RISK, RANKED_TENANTS, Ev, days_ago, events_store, metrics_rows_store

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def store(transactional_db: Any) -> Iterator[Callable[..., None]]:
    with time_machine.travel(NOW, tick=False):
        yield events_store


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    # The users chart is cached per metrics run; frozen clocks repeat run timestamps across tests.
    cache.clear()


def _real_user(user_id: str, last: datetime) -> None:
    RealUser.objects.create(user_id=user_id, first_interaction_at=last - timedelta(days=40), last_interaction_at=last)


def _today(client: Client) -> str:
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def test_it_sends_anonymous_users_to_login():
    response = Client().get("/")
    assert response.status_code == 302 and response["Location"] == "/login/?next=/"


def test_it_refuses_a_logged_in_non_staff_user():
    client = Client()
    client.force_login(get_user_model().objects.create_user("customer", password="pw-customer-1"))
    assert client.get("/").status_code == 403


@pytest.mark.parametrize(
    ("last_ago", "stat", "word", "css", "action", "escalation"),
    [
        (None, "∞", "NO REAL USERS YET", "no_users_yet", "Schedule launch sprint", "Review GTM strategy"),
        # Issue 17: human units on the page ("2 hours", "52 minutes"), never "0.08 days".
        (timedelta(hours=2), "2<span", "HEALTHY", "active", "Continue collecting feedback", "None, stay the course"),
        (
            timedelta(minutes=52),
            "52<span",
            "HEALTHY",
            "active",
            "Continue collecting feedback",
            "None, stay the course",
        ),
        (timedelta(days=3), "3.0", "WARNING", "warning", "Email retention campaign", "Analyze first-run experience"),
        (timedelta(days=10), "10.0", "ALERT", "critical", "Schedule launch sprint", "Review GTM strategy"),
    ],
)
def test_it_shows_the_north_star_with_its_status_in_words_and_the_spec_action(
    store, staff_client, last_ago, stat, word, css, action, escalation
):
    if last_ago is not None:
        _real_user("u1", NOW - last_ago)
    body = _today(staff_client)
    north_star = body[body.index('data-testid="north-star"') :]
    assert north_star.split(">", 1)[1].strip().startswith(stat)
    if stat.endswith("<span"):
        assert " days" not in north_star.split("</div>", 1)[0]
    assert f'<span class="status status-{css}" data-testid="north-star-status">{word}</span>' in body
    assert f"<strong>Action:</strong> {action}. <strong>Escalation:</strong> {escalation}." in body


def test_it_lists_whom_to_call_with_the_first_step_and_why(store, staff_client):
    events = [Ev("decay", "EXPORT_COMPLETED", days_ago(d)) for d in range(7, 30) for _ in range(2)]
    events += [Ev("decay", "EXPORT_COMPLETED", days_ago(2)), Ev("decay", "INCIDENT_VIEWED", days_ago(2))]
    events += [Ev("policy", "POLICY_BLOCK_REPEAT", days_ago(d), session_id=f"p{d}") for d in range(4)]
    events += [Ev("policy", "INCIDENT_VIEWED", days_ago(d)) for d in range(0, 28)]
    events += [Ev("healthy", "INCIDENT_VIEWED", days_ago(d)) for d in range(0, 28)]
    store(events)
    metrics_recompute()
    body = _today(staff_client)
    start = body.index('<table class="at-risk">')
    call_list = body[start : body.index("</table>", start)]
    assert call_list.index('href="/customers/decay/"') < call_list.index('href="/customers/policy/"')
    assert "/customers/healthy/" not in call_list
    assert "54.3" in call_list and "24.0" in call_list
    # The engagement_decay playbook (stickiness_delta < 0.5, critical) raises "decay" to critical;
    # "policy" matches policy_friction (named "Repeatedly blocked" since issue 15). Each first step
    # is its own playbook's first action, not one sentence for every critical customer (issue 17).
    assert "<strong>Day 0: Look for what changed</strong>" in call_list
    assert "because playbook &#x27;Engagement decay&#x27; matched" in call_list
    assert "<strong>Day 0: Find what blocks them and decide whether the blocks are right</strong>" in call_list
    assert "because playbook &#x27;Repeatedly blocked&#x27; matched" in call_list
    assert call_list.count('data-state="to_call"') == 2
    assert '<td data-label="Playbook">Repeatedly blocked</td>' in call_list
    assert "none matched" not in call_list


def test_it_calls_a_critical_customer_before_a_stronger_high_one(store, staff_client):
    """A playbook raised "globex" to critical at strength 45: it is called before "acme" (high, 55)."""
    metrics_rows_store(RANKED_TENANTS)
    body = _today(staff_client)
    start = body.index('<table class="at-risk">')
    call_list = body[start : body.index("</table>", start)]
    assert re.findall(r'href="/customers/([^/"]+)/"', call_list) == RANKED_AT_RISK
    globex = call_list[call_list.index('href="/customers/globex/"') : call_list.index('href="/customers/acme/"')]
    assert '<span class="status level-critical">critical</span>' in globex and "45.0" in globex


def test_it_says_when_nobody_is_at_risk_and_metrics_never_ran(store, staff_client):
    body = _today(staff_client)
    assert "Nobody is at risk right now (metrics have not been computed yet)." in body
    assert "<strong>Stale:</strong> customer metrics have never been computed." in body
    assert "Getting started: send your first event" in body
    assert "No open alerts." in body


def test_it_shows_daily_and_monthly_real_users_against_their_targets(store, staff_client):
    _real_user("u1", NOW - timedelta(hours=1))
    _real_user("u2", NOW - timedelta(hours=23))
    _real_user("u3", NOW - timedelta(days=10))
    _real_user("u4", NOW - timedelta(days=31))
    body = _today(staff_client)
    assert '<td class="num" data-testid="dau">2</td><td class="num muted">target 10</td>' in body
    assert '<td class="num" data-testid="mau">3</td><td class="num muted">target 50</td>' in body
    assert body.count('<span class="status status-warning">below target</span>') == 2
    assert "<title>Real users per day, last 30 days</title>" in body

    NorthStarSettings.objects.update(dau_target=2, mau_target=3)
    assert _today(staff_client).count('<span class="status status-active">on target</span>') == 2


def test_its_daily_real_users_count_each_user_once_a_day_from_the_rollup(store):
    store(
        [
            Ev("a", "INCIDENT_VIEWED", days_ago(1), user_id="u1"),
            Ev("a", "EXPORT_COMPLETED", days_ago(1), user_id="u1"),
            Ev("a", "INCIDENT_VIEWED", days_ago(1), user_id="u2"),
            Ev("b", "INCIDENT_VIEWED", days_ago(1), user_id="u1"),  # same person in another tenant
            Ev("b", "INCIDENT_VIEWED", days_ago(3), user_id="u3"),
            Ev("b", "INCIDENT_VIEWED", days_ago(3), user_id="u9", is_real=False),  # test traffic
            Ev("b", "INCIDENT_VIEWED", days_ago(40), user_id="u4"),  # outside the 30 days
        ]
    )
    metrics_recompute()
    series = real_users_daily(as_of=NOW.date(), days=30)
    assert len(series) == 30
    assert series[0] == (date(2026, 2, 14), 0)
    assert series[-4:] == [
        (date(2026, 3, 12), 1),
        (date(2026, 3, 13), 0),
        (date(2026, 3, 14), 2),
        (date(2026, 3, 15), 0),
    ]
    assert sum(users for _, users in series) == 3


def test_its_users_chart_follows_each_metrics_run(store, staff_client):
    store([Ev("a", "INCIDENT_VIEWED", days_ago(1), user_id=f"u{i}") for i in range(2)])
    metrics_recompute()
    assert "Users with a real event that day 14 Mar: 2</title>" in _today(staff_client)
    store([Ev("a", "INCIDENT_VIEWED", days_ago(1), user_id="u7")])
    assert "14 Mar: 2</title>" in _today(staff_client)  # the same run: the same figures
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        metrics_recompute()
        assert "Users with a real event that day 14 Mar: 3</title>" in _today(staff_client)


def test_it_says_how_old_the_metrics_are_and_calls_them_stale_after_fifteen_minutes(store, staff_client):
    store([Ev("a", "INCIDENT_VIEWED", days_ago(1))])
    metrics_recompute()
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        body = _today(staff_client)
    assert "Customer metrics computed 5 minutes ago (12:00)." in body
    assert "Stale" not in body
    with time_machine.travel(NOW + timedelta(minutes=20), tick=False):
        body = _today(staff_client)
    assert "<strong>Stale:</strong> customer metrics were computed 20 minutes ago" in body
    assert 'class="freshness stale"' in body


def test_it_lists_open_alerts(store, staff_client):
    AlertState.objects.update_or_create(pk=1, defaults={"status": "critical", "changed_at": NOW - timedelta(days=2)})
    AlertNotification.objects.create(
        kind="transition",
        channel="slack",
        dedupe_key="t1",
        subject="ALERT: 7+",
        body="...",
        target="hooks.slack.com",
        state=DeliveryState.FAILED,
        last_error="HTTP 404 from hooks.slack.com",
    )
    AlertNotification.objects.create(
        kind="transition", channel="email", dedupe_key="t2", subject="sent", body="...", target="a@b.c", state="sent"
    )
    body = _today(staff_client)
    assert "<strong>North star: ALERT</strong> since" in body
    assert "No real users in 1 week. Action: Schedule launch sprint." in body
    assert "<strong>Alert delivery failed (slack)</strong>" in body
    assert "ALERT: 7+ — HTTP 404 from hooks.slack.com" in body
    assert "delivery sent" not in body
    assert "No open alerts." not in body


def _tenants_at_risk(count: int) -> list[Ev]:
    return [
        Ev(f"t{i:03d}", "POLICY_BLOCK_REPEAT", days_ago(d), session_id=f"s{i}-{d}")
        for i in range(count)
        for d in range(4)
    ]


def test_it_renders_with_the_same_number_of_queries_for_5_and_50_tenants(store, staff_client):
    counts = []
    for total in (5, 50):
        store(_tenants_at_risk(total))
        metrics_recompute()
        staff_client.get("/")  # warm the session and content types
        with CaptureQueriesContext(connection) as queries:
            body = _today(staff_client)
        assert body.count('href="/customers/t') == min(total, 10)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_it_reads_matched_playbooks_in_any_shape_the_playbooks_app_gives():
    assert _playbook_labels({}) == []
    assert _playbook_labels({"matched_playbooks": ["silent_churn", "abandonment"]}) == ["silent_churn", "abandonment"]
    assert _playbook_labels({"matched_playbooks": [{"id": "silent_churn", "name": "Silent churn"}]}) == ["Silent churn"]
    assert _playbook_labels({"matched_playbook": {"id": "legal_only"}}) == ["legal_only"]


def test_it_links_to_the_validation_page_whether_or_not_anyone_is_at_risk(store, staff_client):
    link = re.compile(r'data-testid="validation-link">Does the risk signal predict churn\? <a href="/validation/">')
    assert link.search(_today(staff_client))  # nobody at risk, metrics never ran
    events_store(_tenants_at_risk(2))
    metrics_recompute(full=True)
    cache.clear()
    body = _today(staff_client)
    assert 'data-testid="call-row-' in body and link.search(body)
    assert staff_client.get("/validation/").status_code == 200


def test_admin_links_back_to_the_console(staff_client):
    get_user_model().objects.filter(username="founder").update(is_superuser=True)
    body = staff_client.get("/admin/").content.decode()
    assert '<a href="/">View site</a>' in body


def test_a_tenant_matched_only_by_a_playbook_gets_the_playbooks_first_step(store, staff_client):
    """Abandoned replays trigger no intervention rule of the spec, only the abandonment playbook:
    the first step is that playbook's first action, with the condition that matched."""
    events = [Ev("quitter", "INCIDENT_VIEWED", days_ago(d)) for d in range(0, 28)]
    events += [Ev("quitter", "REPLAY_ABORTED", days_ago(1), session_id=f"q{i}") for i in range(3)]
    store(events)
    metrics_recompute()
    body = _today(staff_client)
    start = body.index('<table class="at-risk">')
    row = body[start : body.index("</table>", start)]
    assert 'href="/customers/quitter/"' in row
    assert "<strong>Day 0: Reconstruct what happened</strong>" in row
    assert "· Internal (no customer contact)" in row
    assert "because playbook &#x27;Abandoned workflows&#x27; matched" in row
    assert '<span class="muted">—</span>' not in row
    # The north star's own action line is untouched by the playbook step.
    north_star = body[: body.index('<table class="at-risk">')]
    assert "<strong>Action:</strong>" in north_star and "Reconstruct what happened" not in north_star


def _call_list(body: str) -> str:
    start = body.index('<table class="at-risk">')
    return body[start : body.index("</table>", start)]


def test_a_snooze_saved_by_another_web_process_shows_on_the_next_page(store, staff_client, settings):
    """The call list is kept until the next recompute or founder action; a snooze saved by another
    process, while this one trusts its last version check for an hour, still shows at once."""
    settings.METRICS_VERSION_CHECK_SECONDS = 3600
    store(_tenants_at_risk(2))
    metrics_recompute()
    assert 'data-testid="call-row-t000"' in _call_list(_today(staff_client))
    seen = read_cache._version_seen[1]
    response = staff_client.post(
        "/playbooks/snoozes/new/", {"tenant_id": "t000", "until": "2026-03-20", "reason": "On holiday", "next": "/"}
    )
    assert response.status_code == 302
    # Another process served the form: this one checked the version a moment ago, before the snooze.
    read_cache._version_seen = (time.monotonic(), seen)
    body = _today(staff_client)
    assert 'data-testid="call-row-t000"' not in _call_list(body)
    assert 'data-testid="parked-t000" data-state="snoozed"' in body
    assert "Snoozed until Fri 20 Mar: On holiday" in body


def test_each_browser_posts_its_own_csrf_token_from_the_kept_call_list(store, staff_user):
    store(_tenants_at_risk(2))
    metrics_recompute()
    tokens = {}
    browsers = {name: Client(enforce_csrf_checks=True) for name in ("laptop", "phone")}
    for name, browser in browsers.items():  # the phone is served the call list the laptop's view rendered
        browser.force_login(staff_user)
        form = _today(browser).split('data-testid="snooze-form-t001"', 1)[1]
        tokens[name] = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)[1]
    for name, browser in reversed(browsers.items()):
        response = browser.post(
            "/playbooks/snoozes/new/",
            {"csrfmiddlewaretoken": tokens[name], "tenant_id": "t001", "until": "2026-03-20", "reason": name},
        )
        assert response.status_code == 302, name
