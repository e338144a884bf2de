"""A new founder's first week, in Chromium at a laptop's and a phone's width, with no error in the
browser's console: a clean install (no demo data), the first login made as the README says, the
product's own event names sent with an ingest key and parked, then described on the Vocabulary page
(registered in admin from its Register links), the example types retired in one action, a recompute,
the first morning on Today in the product's own words, a churn recorded (after its confirmation)
and undone on the Customer page, and a risk weight edited in admin.

The product is a project-management SaaS with ten customer accounts.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from customers.models import RiskWeights, Tenant
from events.ingestion.validation import ingest_names
from events.models import Event, EventType
from playbooks.models import ChurnRecord
from tests.browser.conftest import chart_text_sizes, log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
ACCOUNTS = [
    "northwind",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "soylent",
    "vandelay",
    "wonka",
    "stark",
    "tyrell",
]
# The account that went quiet a week ago: the first morning's call.
QUIET = "globex"
# The product's own names, and how the founder describes each on the admin form the Vocabulary page links to.
OWN_TYPES: dict[str, dict[str, Any]] = {
    "Task Created": {
        "label": "Task created",
        "category": "value",
        "core_value": True,
        "engagement_weight": "1",
        "north_star_role": "core_action",
        "counts_as_real_interaction": True,
    },
    "Board Shared": {
        "label": "Board shared",
        "category": "engagement",
        "engagement_weight": "2",
        "counts_as_real_interaction": True,
    },
    "Sprint Closed": {
        "label": "Sprint closed",
        "category": "value",
        "engagement_weight": "3",
        "north_star_role": "decision",
        "counts_as_real_interaction": True,
    },
    "Export Failed": {
        "label": "Export failed",
        "category": "friction",
        "friction_signal": "system_issue",
        "friction_weight": "4",
    },
}
# What the seeded example vocabulary would have said in the product's place.
EXAMPLE_WORDS = ("Incident viewed", "INCIDENT_VIEWED", "Replay", "REPLAY_", "Policy block", "POLICY_BLOCK")
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def _events(now: datetime) -> list[dict[str, Any]]:
    """30 days of use: two users per account create tasks and share boards every day, close a
    sprint each week; one account hits failing exports this week; the quiet one stopped a week ago."""
    events = []
    for account in ACCOUNTS:
        for day in range(30):
            if account == QUIET and day < 8:
                continue
            for user in (1, 2):
                at = now - timedelta(days=day, hours=2 + user)
                session = f"{account}-{user}-{day}"
                names = ["Task Created", "Task Created", "Board Shared"] + (["Sprint Closed"] if day % 7 == 3 else [])
                if account == "initech" and day < 5:
                    names.append("Export Failed")
                for minute, name in enumerate(names):
                    events.append(
                        {
                            "event_id": str(uuid.uuid4()),
                            "tenant_id": account,
                            "user_id": f"{account}-u{user}",
                            "session_id": session,
                            "event_type": name,
                            "occurred_at": (at + timedelta(minutes=minute)).isoformat(),
                            "metadata": {"user_agent": USER_AGENT},
                        }
                    )
    return events


def _fill_event_type(page: Any, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        selector = f"#id_{name}"
        if isinstance(value, bool):
            page.locator(selector).set_checked(value)
        elif page.locator(selector).evaluate("e => e.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_a_new_founders_first_week(page: Any, live_server: Any, monkeypatch: Any, viewport: dict[str, int]) -> None:
    size = "laptop" if viewport is LAPTOP else "phone"
    base = live_server.url
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.set_viewport_size(viewport)

    # The live server shares this process's ingest cache of registered names, which an earlier test
    # (on the database since flushed) may have filled: a fresh install starts with none of them.
    ingest_names(refresh=True)

    # Day 1, a clean start: no demo customers, no demo login; the first login is made as the README says.
    assert not Tenant.objects.exists() and not get_user_model().objects.exists()
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "pw-maya-first-week")
    call_command("createsuperuser", interactive=False, username="maya", email="maya@taskboard.example")
    log_in(page, base, username="maya", password="pw-maya-first-week")
    page.wait_for_url(f"{base}/")
    assert "Getting started" in page.locator("main").inner_text()
    screenshot(page, f"first-week-{size}-1-empty-today")

    # The backend sends the product's own names with an ingest key: each is parked, and named in the answer.
    out = io.StringIO()
    call_command("create_api_key", "backend-prod", "--scope", "ingest", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    events = _events(timezone.now())
    for start in range(0, len(events), 1000):
        response = page.request.post(
            f"{base}/api/v1/events",
            data=json.dumps({"events": events[start : start + 1000]}),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        assert response.status in (200, 202), response.text()
        receipt = response.json()
        assert receipt["rejected"] == [], receipt["rejected"][:3]
    assert Event.objects.count() == len(events)
    assert not Event.objects.filter(is_real=True).exists()  # parked: kept, never counted

    # The Vocabulary page lists them as not registered; each Register link opens admin's form with the name filled in.
    page.goto(f"{base}/vocabulary/")
    for name in OWN_TYPES:
        assert "no" in page.get_by_test_id(f"seen-{name}").inner_text()
    screenshot(page, f"first-week-{size}-2-vocabulary-parked")
    for name, fields in OWN_TYPES.items():
        page.goto(f"{base}/vocabulary/")
        page.get_by_test_id(f"seen-{name}").get_by_role("link", name="Register").click()
        page.wait_for_url("**/admin/events/eventtype/add/**")
        assert page.input_value("#id_name") == name
        _fill_event_type(page, fields)
        page.click("input[name=_save]")
        page.wait_for_url(f"{base}/admin/events/eventtype/")
    page.goto(f"{base}/vocabulary/")
    for name, fields in OWN_TYPES.items():
        row = page.get_by_test_id(f"seen-{name}").inner_text()
        assert "yes" in row and fields["label"] in row, row

    # The examples go in one action; the product's own types stay.
    examples = EventType.objects.exclude(name__in=OWN_TYPES).count()
    assert examples > 0
    page.get_by_role("button", name="Remove the example types your product never sent").click()
    page.wait_for_url(f"{base}/vocabulary/")
    assert f"Removed {examples} example types your product never sent" in page.locator(".messages").inner_text()
    assert sorted(EventType.objects.values_list("name", flat=True)) == sorted(OWN_TYPES)
    assert page.get_by_test_id("remove-examples").count() == 0
    screenshot(page, f"first-week-{size}-3-vocabulary-described")

    # The recompute the worker runs: the parked history counts now, in the product's words.
    call_command("reclassify_events", stdout=io.StringIO())
    call_command("recompute_metrics", "--full", stdout=io.StringIO())
    assert Event.objects.filter(is_real=True).count() == len(events)

    # The first morning: Today speaks the product's language, and the quiet account is the call.
    page.goto(f"{base}/")
    today = page.locator("main").inner_text()
    screenshot(page, f"first-week-{size}-4-today")
    # The reasons speak of the product's own types (its failing exports), never of an example's.
    assert "Export failed" in page.get_by_test_id("call-row-initech").inner_text()
    # Its chart of active users is readable on either screen, and nothing is wider than the screen.
    sizes = chart_text_sizes(page)
    assert sizes and min(size for _, size in sizes) >= 11, sorted(sizes, key=lambda s: s[1])[:3]
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    for word in EXAMPLE_WORDS:
        assert word.lower() not in today.lower(), f"Today says {word!r}"
    row = page.get_by_test_id(f"call-row-{QUIET}")
    assert row.count() == 1, today

    # A churn recorded on the Customer page, confirmed, then taken back.
    row.locator("a[href^='/customers/']").first.click()
    page.wait_for_url(f"{base}/customers/{QUIET}/")
    assert "Last Task created" in page.locator("main").inner_text()  # the core value, in its own label
    customer = page.locator("main").text_content()  # the folded sections too: talk tracks, components
    for word in EXAMPLE_WORDS:
        assert word.lower() not in customer.lower(), f"the Customer page says {word!r}"
    assert page.get_by_test_id("follow-up").get_attribute("data-state") == "to_call"
    page.fill("#pb-churn-reason", "Moved to a spreadsheet")
    page.get_by_role("button", name="Record churn…").click()
    assert "Moved to a spreadsheet" in page.get_by_test_id("churn-confirm").inner_text()
    assert not ChurnRecord.objects.exists()  # nothing until it is confirmed
    page.get_by_role("button", name="Yes, record the churn").click()
    page.wait_for_url(f"{base}/customers/{QUIET}/")
    assert page.get_by_test_id("follow-up").get_attribute("data-state") == "churned"
    screenshot(page, f"first-week-{size}-5-customer-churned")
    page.get_by_test_id("churn-undo-latest").get_by_role("button").click()
    page.wait_for_url(f"{base}/customers/{QUIET}/")
    assert "back on the at-risk lists at the next recompute" in page.locator("main").inner_text()
    assert page.get_by_test_id("follow-up").get_attribute("data-state") != "churned"
    assert not ChurnRecord.objects.exists() and Tenant.objects.get(tenant_id=QUIET).churned_at is None
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    screenshot(page, f"first-week-{size}-6-customer-undone")

    # A risk weight edited in admin: a new version of the weights, from the admin index.
    before = set(RiskWeights.objects.values_list("pk", flat=True))
    page.goto(f"{base}/admin/")
    page.get_by_role("link", name="Risk weights versions").click()
    page.wait_for_url(f"{base}/admin/customers/riskweights/")
    page.goto(f"{base}/admin/customers/riskweights/add/")
    page.fill("#id_max_silent_churn", "40")
    page.fill("#id_note", "a quiet week matters less for a sprint tool")
    page.click("input[name=_save]")
    page.wait_for_url(f"{base}/admin/customers/riskweights/")
    assert "was added successfully" in page.locator(".messagelist").inner_text()
    (added,) = RiskWeights.objects.exclude(pk__in=before)
    assert added.weights["silent_churn"] == 40.0
    screenshot(page, f"first-week-{size}-7-admin-weights")

    assert problems == [], problems
