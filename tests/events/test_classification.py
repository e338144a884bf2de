"""Real or not: every exclusion reason, the rules in admin, and reclassification of history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from customers.models import Tenant
from events.classification import classification_pass, events_reclassify
from events.models import ClassificationState, Event, InternalUserRule, RealUser, UserAgentPattern
from events.rules import internal_user_rule_save
from events.selectors import real_users_summary
from tests.conftest import owner_login

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 2, 8, 12, 0, tzinfo=UTC)
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15"


def event(**fields: Any) -> dict[str, Any]:
    item = {"event_id": str(uuid.uuid4()), "event_type": "LOGIN", "user_id": "u1", "tenant_id": "acme"}
    item.update(fields)
    return item


def stored(event_id: str) -> tuple[bool, str]:
    row = Event.objects.get(event_id=event_id)
    return row.is_real, row.exclusion_reason


@pytest.fixture
def superuser_client(db: Any) -> APIClient:
    return owner_login(APIClient())


@pytest.mark.parametrize(
    ("fields", "setup", "reason"),
    [
        (
            {"user_id": "founder"},
            lambda: InternalUserRule.objects.create(kind="user_id", value="founder"),
            "internal_user",
        ),
        (
            {"metadata": {"email": "Me@Team.Example"}},
            lambda: InternalUserRule.objects.create(kind="email_domain", value="team.example"),
            "internal_user",
        ),
        (
            {"tenant_id": "ourselves"},
            lambda: Tenant.objects.create(tenant_id="ourselves", kind="internal"),
            "internal_tenant",
        ),
        ({"tenant_id": "qa"}, lambda: Tenant.objects.create(tenant_id="qa", kind="test"), "test_traffic"),
        ({"tenant_id": "showroom"}, lambda: Tenant.objects.create(tenant_id="showroom", kind="demo"), "demo"),
        ({"metadata": {"test": True}}, None, "test_traffic"),
        ({"metadata": {"test": "yes"}}, None, "test_traffic"),
        ({"metadata": {"demo": "true"}}, None, "demo"),
        ({"metadata": {"user_agent": "curl/8.5.0"}}, None, "automation_client"),
        ({"metadata": {"user_agent": "python-requests/2.32.3"}}, None, "automation_client"),
        ({"metadata": {"user_agent": "HTTPie/3.2.2"}}, None, "automation_client"),
        ({"metadata": {"user_agent": "Go-http-client/1.1"}}, None, "automation_client"),
        ({"metadata": {"user_agent": "Wget/1.21.4"}}, None, "automation_client"),
        ({"metadata": {"user_agent": "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0"}}, None, "bot"),
        (
            {"metadata": {"user_agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}},
            None,
            "bot",
        ),
        ({"metadata": {"user_agent": "Mozilla/5.0 (compatible; AhrefsBot/7.0)"}}, None, "bot"),
    ],
)
def test_it_excludes_each_kind_of_unreal_traffic_at_ingestion(ingest, fields, setup, reason):
    if setup:
        setup()
    item = event(**fields)
    ingest(item)
    assert stored(item["event_id"]) == (False, reason)


def test_it_excludes_everything_sent_with_an_automation_key(ingest, make_key):
    key, _ = make_key("ingest", "ci", is_automation=True)
    item = event(metadata={"user_agent": BROWSER})
    ingest(item, source=key)
    assert stored(item["event_id"]) == (False, "automation_client")


def test_it_counts_a_browser_user_and_ignores_flags_that_are_false(ingest):
    items = [event(metadata={"user_agent": BROWSER}), event(metadata={"test": False, "demo": "no", "test_x": 1})]
    ingest(*items)
    assert [stored(i["event_id"]) for i in items] == [(True, ""), (True, "")]


def test_it_never_classifies_by_the_ingestion_requests_own_user_agent(db, make_key):
    _, raw = make_key("ingest", "backend")
    client = APIClient(HTTP_USER_AGENT="curl/8.5.0")  # the product's backend (or the emitter) sending
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    item = event(metadata={"user_agent": BROWSER})
    response = client.post("/api/v1/events", item, format="json")
    assert response.status_code == 200, response.content
    assert stored(item["event_id"]) == (True, "")


def test_it_classifies_a_batch_with_one_query_however_many_events(ingest):
    Tenant.objects.create(tenant_id="qa", kind="test")
    InternalUserRule.objects.create(kind="user_id", value="founder")
    ingest(event())  # warm the per-process rules cache
    from events.ingestion.classify import classify_batch
    from events.ingestion.validation import event_row_validate, ingest_names

    registry = ingest_names()
    rows = [
        event_row_validate(event(user_id=f"u{i}", tenant_id=("qa" if i % 3 else "acme")), now=NOW, registry=registry)[0]
        for i in range(200)
    ]
    with CaptureQueriesContext(connection) as queries:
        classify_batch(rows, source=None)
    assert len(queries) == 1
    assert sum(1 for r in rows if r.exclusion_reason == "test_traffic") == 133


def test_it_judges_a_lone_page_view_a_single_page_visit_once_the_session_is_quiet(ingest):
    lone = event(event_type="PAGE_VIEW", session_id="s-lone", occurred_at="2026-02-08T11:00:00+00:00")
    browsing = [
        event(event_type="PAGE_VIEW", session_id="s-two", occurred_at="2026-02-08T11:00:00+00:00"),
        event(event_type="PAGE_VIEW", session_id="s-two", occurred_at="2026-02-08T11:02:00+00:00"),
    ]
    fresh = event(event_type="PAGE_VIEW", session_id="s-fresh", occurred_at="2026-02-08T11:50:00+00:00")
    ingest(lone, *browsing, fresh, now=NOW)
    assert stored(lone["event_id"]) == (True, "")  # ingestion cannot know yet

    classification_pass(now=NOW)  # first pass: rules never applied, so all history is classified

    assert stored(lone["event_id"]) == (False, "single_page_visit")
    assert [stored(b["event_id"]) for b in browsing] == [(True, ""), (True, "")]
    assert stored(fresh["event_id"]) == (True, "")  # 10 minutes old: the visit may go on

    classification_pass(now=NOW + timedelta(minutes=25))  # incremental: fresh is now 35 minutes quiet
    assert stored(fresh["event_id"]) == (False, "single_page_visit")


def test_the_sql_reclassification_agrees_with_ingestion_for_every_rule(ingest, make_key):
    InternalUserRule.objects.create(kind="user_id", value="founder")
    InternalUserRule.objects.create(kind="email_domain", value="team.example")
    Tenant.objects.create(tenant_id="ourselves", kind="internal")
    Tenant.objects.create(tenant_id="qa", kind="test")
    Tenant.objects.create(tenant_id="showroom", kind="demo")
    automation, _ = make_key("ingest", "ci", is_automation=True)
    items = [
        event(user_id="founder"),
        event(metadata={"email": "x@TEAM.example"}),
        event(metadata={"email": "x@team.example.org"}),
        event(tenant_id="ourselves"),
        event(tenant_id="qa", metadata={"demo": True}),
        event(tenant_id="showroom"),
        event(metadata={"test": "1", "user_agent": "curl/8"}),
        event(metadata={"test": 1}),
        event(metadata={"demo": "YES"}),
        event(metadata={"user_agent": "Wget/1.2"}),
        event(metadata={"user_agent": "Mozilla/5.0 (compatible; bingbot/2.0)"}),
        event(metadata={"user_agent": "CUBOT_X19 Mobile Safari"}),
        event(metadata={"user_agent": ["curl"]}),
        event(metadata={"user_agent": BROWSER, "email": "someone@customer.example"}),
    ]
    ingest(*items, now=NOW)
    ingest(event(metadata={"user_agent": BROWSER}), source=automation, now=NOW)
    at_ingestion = {str(e.event_id): (e.is_real, e.exclusion_reason) for e in Event.objects.all()}
    # Scramble the stored classification, then let the SQL recompute it from the rules.
    Event.objects.update(is_real=True, exclusion_reason="")
    events_reclassify(now=NOW)
    recomputed = {str(e.event_id): (e.is_real, e.exclusion_reason) for e in Event.objects.all()}
    assert recomputed == at_ingestion
    # Real: team.example.org (another domain), test=1 (a number is not a flag), CUBOT (a phone,
    # not a bot), a user_agent that is not a string, and the browser with a customer's email.
    assert list(at_ingestion.values()).count((True, "")) == 5
    assert sorted(r for _, r in at_ingestion.values() if r) == sorted(
        [
            *("internal_user", "internal_user", "internal_tenant", "test_traffic", "demo"),
            *("test_traffic", "demo", "automation_client", "bot", "automation_client"),
        ]
    )


def test_a_rule_added_in_admin_reclassifies_history_and_moves_the_metric(
    ingest, superuser_client, eager_celery, django_capture_on_commit_callbacks
):
    with time_machine.travel(NOW - timedelta(days=3), tick=False):
        ingest(event(user_id="customer-1", event_type="SIGNUP"))
    with time_machine.travel(NOW - timedelta(hours=2), tick=False):
        ingest(event(user_id="founder", event_type="CORE_ACTION"))
    with time_machine.travel(NOW, tick=False):
        before = real_users_summary()
        assert (before.total_users, before.status) == (2, "active")
        assert before.days_since_last == pytest.approx(2 / 24)

        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = superuser_client.post(
                "/admin/events/internaluserrule/add/", {"kind": "user_id", "value": " founder ", "note": "me"}
            )
        assert response.status_code == 302, response.content.decode()[:2000]
        assert len(callbacks) == 1  # the reclassification task, queued on commit

        after = real_users_summary()
    assert Event.objects.get(user_id="founder").exclusion_reason == "internal_user"
    assert (after.total_users, after.status) == (1, "warning")
    assert after.days_since_last == pytest.approx(3.0)
    assert list(RealUser.objects.values_list("user_id", flat=True)) == ["customer-1"]

    # Deleting the rule in admin puts the founder's event back.
    rule = InternalUserRule.objects.get()
    with time_machine.travel(NOW, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            response = superuser_client.post(f"/admin/events/internaluserrule/{rule.pk}/delete/", {"post": "yes"})
        assert response.status_code == 302
        assert real_users_summary().total_users == 2


def test_a_tenant_flagged_internal_outside_the_events_admin_is_caught_by_the_periodic_pass(ingest):
    ingest(event(tenant_id="acme", user_id="u1", occurred_at="2026-02-08T10:00:00+00:00"), now=NOW)
    events_reclassify(now=NOW)
    assert real_users_summary(now=NOW).total_users == 1
    Tenant.objects.filter(tenant_id="acme").update(kind="internal")  # e.g. the customers admin

    classification_pass(now=NOW)

    assert stored(Event.objects.get().event_id) == (False, "internal_tenant")
    assert real_users_summary(now=NOW).total_users == 0


def test_a_user_agent_pattern_that_postgresql_cannot_run_is_refused_in_admin(superuser_client):
    response = superuser_client.post(
        "/admin/events/useragentpattern/add/", {"pattern": r"\bbot\b", "reason": "bot", "is_active": "on"}
    )
    assert response.status_code == 200  # the form again, with the error
    assert "no \\b" in response.content.decode()
    response = superuser_client.post(
        "/admin/events/useragentpattern/add/", {"pattern": "(unclosed", "reason": "bot", "is_active": "on"}
    )
    assert response.status_code == 200
    assert not UserAgentPattern.objects.filter(pattern__in=[r"\bbot\b", "(unclosed"]).exists()


def test_an_email_domain_rule_is_normalised_and_a_bad_one_refused(db):
    rule = internal_user_rule_save(rule=InternalUserRule(kind="email_domain", value=" @Team.Example "))
    assert rule.value == "team.example"
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        internal_user_rule_save(rule=InternalUserRule(kind="email_domain", value="not a domain"))
    assert InternalUserRule.objects.count() == 1
    assert ClassificationState.objects.get(pk=1).rules_version == 1


def test_reclassify_events_command_reports_what_changed(ingest, capsys):
    ingest(event(user_id="founder"), event(user_id="someone"), now=NOW)
    InternalUserRule.objects.create(kind="user_id", value="founder")  # bypassing the services
    from django.core.management import call_command

    call_command("reclassify_events", "--chunk-rows", "1")
    out = capsys.readouterr().out
    assert "1 event(s) changed" in out
    assert Event.objects.filter(is_real=False).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_periodic_pass_rechecks_rows_committed_since_it_last_ran(ingest):
    ingest(event(user_id="u1"), now=None)
    classification_pass()  # full pass: applies the rules, sets the watermark
    # A rule that appears without the services (no version bump, no queued task) while the
    # ingesting process still holds the old rules in its cache: the row is stored as real.
    from events import classification
    from events.ingestion import classify

    classify.classification_rules(version=ClassificationState.objects.get(pk=1).rules_version)
    InternalUserRule.objects.create(kind="user_id", value="late")
    ClassificationState.objects.filter(pk=1).update(applied_fingerprint=classification.rules_fingerprint())
    item = event(user_id="late")
    ingest(item)
    assert stored(item["event_id"]) == (True, "")
    # The pass only trusts rows below the oldest running transaction in the cluster; on a
    # shared server another session may hold that back for a moment, so wait for it.
    _wait_until_no_older_transaction_runs(Event.objects.get(event_id=item["event_id"]).pk)

    classification_pass()

    assert stored(item["event_id"]) == (False, "internal_user")


def _wait_until_no_older_transaction_runs(event_pk: int) -> None:
    import time

    # Five minutes: with the suite spread over processes, another worker's test may hold a
    # transaction for as long as that test runs.
    for _ in range(600):
        with connection.cursor() as cursor:
            # Two statements: on Citus the row's query runs on a worker, whose snapshot is not the
            # coordinator's (ingest_xid is the coordinator's xid).
            cursor.execute("SELECT ingest_xid::text AS xid FROM ops_events WHERE id = %s", [event_pk])
            xid = cursor.fetchone()[0]
            cursor.execute("SELECT %s::xid8 < pg_snapshot_xmin(pg_current_snapshot())", [xid])
            if cursor.fetchone()[0]:
                return
        time.sleep(0.5)
    pytest.fail("another transaction on the server stayed open for five minutes; cannot test the xid window")


def test_a_new_user_agent_pattern_applies_to_a_user_agent_already_judged_real(ingest):
    """Each process remembers the verdict per user agent; a rule edit must not be hidden by it."""
    from events.rules import user_agent_pattern_save

    first = event(metadata={"user_agent": "AcmeMonitor/2.0"})
    ingest(first)
    assert stored(first["event_id"]) == (True, "")
    user_agent_pattern_save(pattern=UserAgentPattern(pattern=r"acmemonitor", reason="bot"))
    second = event(metadata={"user_agent": "AcmeMonitor/2.0"})
    ingest(second)
    assert stored(second["event_id"]) == (False, "bot")
