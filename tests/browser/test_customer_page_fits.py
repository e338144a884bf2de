"""The Customer page answers "what happened and what do I do" in two screens at 1366x768, and on a
390 px phone every form stays on screen and every chart's text is at least 11 px as drawn.

The demo history (30 customers over 60 days) with a step logged on the top customer, so its page
carries every form: log a step, its outcome, undo it, snooze, record a churn.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from customers.metrics.recompute import metrics_recompute
from customers.selectors import tenants_at_risk
from opsconsole.demo import seed_demo
from playbooks.services import intervention_create
from tests.browser.conftest import chart_text_sizes, log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
# Every form the founder acts with on the page (the snooze form sits in its folded <details>).
FORMS = (
    "form[data-testid=intervention-form]",
    "form[data-testid=churn-form]",
    "form[data-testid^=outcome-form-]",
    "form[data-testid^=intervention-undo-]",
    "details.snooze",
)


@pytest.fixture
def founder(transactional_db: Any) -> Any:
    return get_user_model().objects.create_superuser("founder", "founder@example.com", "pw-founder-1")


@pytest.fixture
def customer(transactional_db: Any) -> str:
    """The top customer to call, with one step logged and no outcome yet."""
    seed_demo(tenants=30, days=60, now=timezone.now())
    metrics_recompute(full=True)
    tenant_id = tenants_at_risk(limit=1)[0].tenant_id
    intervention_create(tenant_id=tenant_id, action="Emailed the CTO", channel="email")
    return tenant_id


def _customer_page_open(page: Any, base: str, customer: str, *, size: dict[str, int]) -> None:
    """The founder logs in on a screen of ``size`` and lands on the customer's page."""
    page.set_viewport_size(size)
    log_in(page, base, next_path=f"/customers/{customer}/")
    page.wait_for_url(f"{base}/customers/{customer}/")


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not shown"
    return box


def test_the_customer_page_answers_and_offers_every_form_in_two_laptop_screens(
    page: Any, live_server: Any, founder: Any, customer: str
) -> None:
    _customer_page_open(page, live_server.url, customer, size=LAPTOP)
    screenshot(page, "customer-laptop")
    two_screens = 2 * LAPTOP["height"]
    # The answer: the chance of churn or the primary reason, and the follow-up with its next step.
    for selector in ("[data-testid=where-it-stands]", "[data-testid=follow-up]", *FORMS):
        box = _box(page, selector)
        assert box["y"] + box["height"] <= two_screens, f"{selector} ends at {box['y'] + box['height']:.0f}px"
    # What is long is folded (and opens on a click), the timeline's first page is short; the
    # whole page stays within three screens.
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height <= 3 * LAPTOP["height"], f"the Customer page is {height}px tall at 1366px"
    assert page.locator("table.timeline tbody tr").count() == 10
    for fold in ("charts", "components", "interventions-suggested", "playbook-panel", "intervention-history"):
        details = page.locator(f"details[data-testid={fold}]")
        assert details.get_attribute("open") is None, fold
        details.locator("> summary").click()
        assert details.get_attribute("open") is not None, fold
    assert page.locator("svg.chart").first.is_visible()
    screenshot(page, "customer-laptop-opened")

    page.get_by_role("link", name="Older events →").click()
    # The URL changes when the navigation commits, before the new page has loaded.
    page.wait_for_url("**/?before=**")
    assert page.locator("table.timeline tbody tr").count() == 50


def test_on_a_phone_every_form_stays_on_screen_and_chart_text_is_readable(
    page: Any, live_server: Any, founder: Any, customer: str
) -> None:
    _customer_page_open(page, live_server.url, customer, size=PHONE)
    page.locator("details.snooze summary").click()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the Customer page is {width}px wide on a 390px phone"
    fields = page.locator(
        ", ".join(f"{form} :is(input:not([type=hidden]), select, textarea, button)" for form in FORMS)
    )
    assert fields.count() >= 10
    for field in fields.all():
        box = field.bounding_box()
        name = field.get_attribute("name") or field.inner_text()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (name, box)
    # Text inputs fill their form's width on a phone, so what is typed can be read.
    for selector in ("#pb-action", "#pb-churn-reason", "#pb-snooze-reason"):
        field, form = _box(page, selector), page.locator(selector).locator("xpath=ancestor::form").bounding_box()
        assert field["width"] >= form["width"] - 2, selector
    screenshot(page, "customer-phone-forms")

    for fold in page.locator("details.fold > summary").all():
        fold.click()
    sizes = chart_text_sizes(page)
    assert len(sizes) >= 10
    small = [(text, round(size, 1)) for text, size in sizes if size < 11]
    assert not small, f"chart text under 11px on a phone: {small[:5]}"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the opened Customer page is {width}px wide on a 390px phone"
    screenshot(page, "customer-phone-opened")
