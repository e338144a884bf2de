"""The founder's morning on the demo, in Chromium at desktop (1366x900) and phone (390x844) sizes
(issue 17): call a customer, log the outcome, see Today change and the next step come due; record
a churn and see it leave every list; snooze one. Every page visited is screenshotted under
test-artifacts/; with UPDATE_README_SCREENSHOT=1 docs/screenshots/today.png shows Today's states.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from customers.metrics.recompute import metrics_recompute
from customers.selectors import tenants_at_risk
from opsconsole.demo import seed_demo
from tests.browser.conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

README_SCREENSHOT = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots" / "today.png"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def founder(transactional_db: Any) -> Any:
    return get_user_model().objects.create_superuser("founder", "founder@example.com", "pw-founder-1")


@pytest.fixture
def demo(transactional_db: Any) -> list[str]:
    """30 demo tenants over 60 days, ending now; returns the top four to call."""
    seed_demo(tenants=30, days=60, now=timezone.now())
    metrics_recompute(full=True)
    return [row.tenant_id for row in tenants_at_risk(limit=4)]


def _rows(page: Any) -> list[tuple[str, str]]:
    """(tenant_id, state) of Today's call list, top to bottom."""
    rows = page.evaluate(
        "[...document.querySelectorAll('table.at-risk tbody tr')].map(r => "
        "[r.dataset.testid.replace('call-row-', ''), r.dataset.state])"
    )
    return [(tenant_id, state) for tenant_id, state in rows]


def _at_risk_api(page: Any, base_url: str) -> dict[str, dict[str, Any]]:
    response = page.request.get(f"{base_url}/ops/customers/at-risk?limit=100")
    assert response.status == 200
    return {entry["tenant_id"]: entry["follow_up"] for entry in json.loads(response.text())}


def _at_risk_contacts(page: Any, base_url: str) -> dict[str, list[dict[str, Any]]]:
    response = page.request.get(f"{base_url}/ops/customers/at-risk?limit=100")
    assert response.status == 200
    return {entry["tenant_id"]: entry["contacts"] for entry in json.loads(response.text())}


def _width(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_founders_morning(page: Any, live_server: Any, founder: Any, demo: list[str], viewport: dict) -> None:
    size = "desktop" if viewport is DESKTOP else "phone"
    called, churned, snoozed, started = demo
    page.set_viewport_size(viewport)
    log_in(page, live_server.url)
    page.wait_for_url(f"{live_server.url}/")
    assert [state for _, state in _rows(page)[:3]] == ["to_call"] * 3
    assert _width(page) <= viewport["width"]
    # Whom to call, on every row: its champion by name and email (the demo's identify traits), and the
    # account's admin and buyer where its traits name them, each inside the page's width.
    people = _at_risk_contacts(page, live_server.url)
    for tenant_id, _ in _rows(page):
        contact = page.get_by_test_id(f"contact-{tenant_id}-1")
        assert contact.is_visible(), tenant_id
        box = contact.bounding_box()
        assert box is not None and box["x"] + box["width"] <= viewport["width"], (tenant_id, box)
        champion = people[tenant_id][0]
        assert champion["role"] == "champion" and champion["name"] and champion["email"], champion
        assert champion["name"] in contact.inner_text() and "champion" in contact.inner_text()
        row = page.get_by_test_id(f"call-row-{tenant_id}").inner_text()
        for person in people[tenant_id]:
            assert person["name"] in row, (tenant_id, person)
    screenshot(page, f"morning-{size}-1-today")

    # 1. Call the top customer: logged on its page as done four days ago, on its matched playbook.
    page.goto(f"{live_server.url}/customers/{called}/")
    assert page.get_by_test_id("follow-up").get_attribute("data-state") == "to_call"
    page.fill("#pb-action", "Called the CTO about the drop")
    page.select_option("#pb-channel", "call")
    page.fill("#pb-date", (timezone.localdate() - timedelta(days=4)).isoformat())
    page.get_by_role("button", name="Log intervention").click()
    page.wait_for_url(f"{live_server.url}/customers/{called}/")
    follow_up = page.get_by_test_id("follow-up")
    assert follow_up.get_attribute("data-state") == "in_progress"
    assert "Called the CTO about the drop" in follow_up.inner_text()
    assert _width(page) <= viewport["width"]
    screenshot(page, f"morning-{size}-2-customer-called")

    # 2. Today: its next step came due four days on, so it is overdue and at the top.
    page.goto(f"{live_server.url}/")
    assert _rows(page)[0] == (called, "in_progress")
    top = page.get_by_test_id(f"call-row-{called}")
    assert "Overdue" in top.get_by_test_id(f"state-{called}").inner_text()
    assert "Done: Called the CTO about the drop" in top.inner_text() and "overdue" in top.inner_text()
    api = _at_risk_api(page, live_server.url)
    assert api[called]["state"] == "in_progress" and api[called]["overdue"] is True
    screenshot(page, f"morning-{size}-3-today-overdue")

    # 3. The outcome: the picker starts empty; "Retained" wins it back.
    page.goto(f"{live_server.url}/customers/{called}/")
    picker = page.locator("select[name=outcome]").first
    assert picker.input_value() == ""
    picker.select_option("retained")
    page.get_by_role("button", name="Save outcome").first.click()
    page.wait_for_url(f"{live_server.url}/customers/{called}/")
    assert page.get_by_test_id("follow-up").get_attribute("data-state") == "won_back"
    page.goto(f"{live_server.url}/")
    assert called not in dict(_rows(page))
    assert "Won back" in page.get_by_test_id(f"parked-{called}").inner_text()

    # 4. A churn: the second customer leaves every list at once.
    page.goto(f"{live_server.url}/customers/{churned}/")
    page.fill("#pb-churn-reason", "Moved to a competitor")
    page.get_by_role("button", name="Record churn…").click()
    # Never one click: a confirmation page says what it does first.
    assert "Moved to a competitor" in page.get_by_test_id("churn-confirm").inner_text()
    page.get_by_role("button", name="Yes, record the churn").click()
    page.wait_for_url(f"{live_server.url}/customers/{churned}/")
    assert page.get_by_test_id("follow-up").get_attribute("data-state") == "churned"
    assert "churned" in page.locator("h1 .status").first.inner_text()
    screenshot(page, f"morning-{size}-4-customer-churned")
    page.goto(f"{live_server.url}/")
    assert churned not in dict(_rows(page))
    assert churned not in _at_risk_api(page, live_server.url)
    page.goto(f"{live_server.url}/customers/?level=at_risk")
    assert page.locator(f'table.customers tbody tr[data-tenant="{churned}"]').count() == 0
    page.goto(f"{live_server.url}/playbooks/")
    for slug in page.evaluate(
        "[...document.querySelectorAll('tr[data-testid^=playbook-]')].map(r => r.dataset.testid)"
    ):
        page.goto(f"{live_server.url}/playbooks/{slug.removeprefix('playbook-')}/")
        assert f"/customers/{churned}/" not in page.locator("main").inner_html().split("Does it work?")[0]
        assert _width(page) <= viewport["width"], f"{page.url} is {_width(page)}px wide"
    screenshot(page, f"morning-{size}-5-playbook")
    metrics = page.request.get(f"{live_server.url}/metrics").text()
    assert f'tenant="{churned}"' not in metrics

    # 5. Snooze the third from Today, with a reason.
    page.goto(f"{live_server.url}/")
    row = page.get_by_test_id(f"call-row-{snoozed}")
    row.locator("details.snooze summary").click()
    row.locator("input[name=reason]").fill("On holiday until next week")
    row.get_by_role("button", name="Snooze").click()
    page.wait_for_url(f"{live_server.url}/")
    assert snoozed not in dict(_rows(page))
    assert "On holiday until next week" in page.get_by_test_id(f"parked-{snoozed}").inner_text()
    assert _width(page) <= viewport["width"]

    # 6. A call logged today: in progress, its next step not due yet, below whom to call.
    page.goto(f"{live_server.url}/customers/{started}/")
    page.fill("#pb-action", "Read their page before calling")
    page.select_option("#pb-channel", "internal")
    page.get_by_role("button", name="Log intervention").click()
    page.wait_for_url(f"{live_server.url}/customers/{started}/")
    page.goto(f"{live_server.url}/")
    states = dict(_rows(page))
    assert states[started] == "in_progress"
    assert list(states.values()).index("in_progress") > list(states.values()).index("to_call")
    assert "Overdue" not in page.get_by_test_id(f"state-{started}").inner_text()
    screenshot(page, f"morning-{size}-6-today-after")
    if size == "desktop" and os.environ.get("UPDATE_README_SCREENSHOT") == "1":
        README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        # The whole page: the north star, then the call list with every state, then the parked ones.
        page.screenshot(path=str(README_SCREENSHOT), full_page=True)


def test_on_a_phone_charts_open_on_the_latest_weeks_and_no_page_is_wider(
    page: Any, live_server: Any, founder: Any, demo: list[str]
) -> None:
    page.set_viewport_size(PHONE)
    log_in(page, live_server.url)
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/customers/{demo[0]}/")
    page.locator("details[data-testid=charts] > summary").click()
    wraps = page.evaluate(
        "[...document.querySelectorAll('.chart-wrap')].map(w => { const s = w.firstElementChild.getBoundingClientRect();"
        " const r = w.getBoundingClientRect(); return [s.width > r.width, Math.round(s.right - r.right)]; })"
    )
    assert wraps and all(wider and right <= 1 for wider, right in wraps), wraps  # scrolled to the right end
    screenshot(page, "phone-customer-charts")
    for path in ("/", "/customers/", f"/customers/{demo[0]}/", "/playbooks/", "/playbooks/silent_churn/", "/infra/"):
        page.goto(f"{live_server.url}{path}")
        assert _width(page) <= PHONE["width"], f"{path} is {_width(page)}px wide on a 390px phone"
        screenshot(page, "phone" + path.replace("/", "-").rstrip("-"))


def test_the_admin_playbook_form_fits_1366_and_its_headings_read_right(page: Any, live_server: Any, founder: Any):
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server.url, next_path="/admin/playbooks/playbook/silent_churn/change/")
    page.wait_for_url("**/admin/playbooks/playbook/silent_churn/change/")
    assert _width(page) <= DESKTOP["width"], f"the admin form is {_width(page)}px wide"
    headings = page.locator(".inline-group h2").all_inner_texts()
    assert "TRIGGER CONDITIONS (ALL MUST HOLD)" in [h.upper() for h in headings], headings
    screenshot(page, "admin-playbook-form")


def test_an_unknown_customer_is_a_styled_404_and_the_favicon_loads(page: Any, live_server: Any, founder: Any):
    log_in(page, live_server.url)
    page.wait_for_url(f"{live_server.url}/")
    response = page.goto(f"{live_server.url}/customers/nope/")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Not found" and page.locator("header.top").is_visible()
    assert page.request.get(f"{live_server.url}/favicon.ico").status == 200
    screenshot(page, "not-found")
