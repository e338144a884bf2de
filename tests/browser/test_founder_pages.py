"""The founder's pages in a real browser: Today, Customers, Customer, Infrastructure.

Seeds the demo history through the ingestion service and recomputes the metrics,
then clicks through as the founder would. Screenshots go to test-artifacts/
(the README's picture is made by test_founder_morning.py, which shows the follow-up states).
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from customers.metrics.recompute import metrics_recompute
from customers.selectors import tenants_at_risk
from opsconsole.demo import seed_demo
from tests.browser.conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = ["/", "/customers/", "/customers/acme/", "/customers/at-risk.csv", "/infra/"]


@pytest.fixture
def founder(transactional_db):
    return get_user_model().objects.create_user("founder", "founder@example.com", "pw-founder-1", is_staff=True)


@pytest.fixture
def demo(transactional_db):
    """30 demo tenants over 60 days, ending now (the browser's cookies need the real clock)."""
    seed_demo(tenants=30, days=60, now=timezone.now())
    metrics_recompute(full=True)


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_users_are_redirected_to_login(page, live_server, path):
    page.goto(f"{live_server.url}{path}")
    assert page.url == f"{live_server.url}/login/?next={path}"
    assert page.locator("h1").inner_text() == "Log in"


def test_the_founder_sees_whom_to_call_and_opens_the_customer(page, live_server, founder, demo):
    top = tenants_at_risk(limit=1)[0]
    log_in(page, live_server.url)
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("h1").inner_text() == "Today"
    # The demo has real users in the last day: healthy, said in words next to the number.
    assert page.get_by_test_id("north-star-status").inner_text() == "HEALTHY"
    assert "Action: Continue collecting feedback." in page.locator(".action-line").inner_text()
    assert "Customer metrics computed 0 minutes ago" in page.get_by_test_id("freshness").inner_text()
    call_list = page.locator("table.at-risk")
    assert call_list.locator("tbody tr").first.locator("a[href^='/customers/']").inner_text() == (
        top.tenant.name or top.tenant_id
    )
    # Two charts: real users per day, and the accounts' lifecycle week by week.
    assert page.locator("svg.chart").count() == 2
    assert page.locator("#lifecycle-title").inner_text() == "Accounts' lifecycle, week by week"
    screenshot(page, "today")

    call_list.locator("tbody tr").first.locator("a[href^='/customers/']").click()
    page.wait_for_url(f"{live_server.url}/customers/{top.tenant_id}/")
    assert page.locator("h1").inner_text().startswith(top.tenant.name or top.tenant_id)
    assert page.locator("h1 .status").first.inner_text() == f"{top.risk_level} risk"
    # The stickiness lines and the friction bars, both server-rendered SVG, folded under their summary.
    assert page.locator("svg.chart").count() == 2
    assert page.locator("svg.chart title").first.text_content().startswith("Stickiness")
    page.locator("details[data-testid=charts] > summary").click()
    assert page.locator("svg.chart").first.is_visible()
    # The timeline opens on its latest 10 events; older ones page 50 at a time.
    assert page.locator("table.timeline tbody tr").count() == 10
    screenshot(page, "customer")

    page.get_by_role("link", name="Older events →").click()
    # The URL changes when the navigation commits, before the new page has loaded.
    page.wait_for_url("**/?before=**")
    assert page.locator("table.timeline tbody tr").count() == 50

    page.goto(f"{live_server.url}/customers/")
    rows = page.locator("table.customers tbody tr")
    assert rows.count() == 27  # 30 demo tenants, 3 of them internal (not customers)
    assert rows.first.get_attribute("data-tenant") == top.tenant_id
    screenshot(page, "customers")
    page.get_by_label("Level").select_option(top.risk_level)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(f"**level={top.risk_level}**")
    levels = page.locator("table.customers tbody tr td:nth-child(2)").all_inner_texts()
    assert levels and set(levels) == {top.risk_level}

    page.goto(f"{live_server.url}/infra/")
    assert page.locator("h1").inner_text() == "How long does the infrastructure last?"
    screenshot(page, "infra-demo")


def test_today_fits_a_phone(page, live_server, founder, demo):
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url)
    page.wait_for_url(f"{live_server.url}/")
    # Nothing wider than the screen except inside scrollable table wrappers.
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 390, f"the page is {overflow}px wide on a 390px phone"
    assert page.get_by_test_id("north-star-status").is_visible()
    screenshot(page, "today-mobile")
    # The Customer page too: its wide charts and tables scroll inside their cards.
    page.goto(f"{live_server.url}/customers/{tenants_at_risk(limit=1)[0].tenant_id}/")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the Customer page is {width}px wide on a 390px phone"
    screenshot(page, "customer-mobile")
    # The Customers list: one card per customer, so nothing scrolls sideways, not even inside the table's wrapper.
    page.goto(f"{live_server.url}/customers/")
    width, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= viewport, f"the Customers page is {width}px wide on a {viewport}px phone"
    table, wrap = page.evaluate("(w => [w.scrollWidth, w.clientWidth])(document.querySelector('.table-wrap'))")
    assert table <= wrap, f"the customer table is {table}px wide in its {wrap}px wrapper"
    first = page.locator("table.customers tbody tr").first
    assert first.get_attribute("data-tenant") == tenants_at_risk(limit=1)[0].tenant_id
    assert first.locator('td[data-label="Signal"]').is_visible()
    assert page.get_by_role("link", name="Signal").is_visible()  # the sort links stay, above the cards
    screenshot(page, "customers-mobile")


def test_every_page_renders_on_an_empty_install(page, live_server, founder):
    log_in(page, live_server.url)
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_test_id("north-star-status").inner_text() == "NO REAL USERS YET"
    assert "Getting started: send your first event" in page.content()
    screenshot(page, "today-empty")
    page.goto(f"{live_server.url}/customers/")
    assert "No customers yet" in page.locator("table.customers").inner_text()
    screenshot(page, "customers-empty")
