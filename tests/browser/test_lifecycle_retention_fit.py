"""The lifecycle chart (Today, Customers) and the Retention page in Chromium at 1366 and 390 px: drawn,
no page wider than the screen, the charts scrolling sideways on a phone (opened on the latest
weeks) with their text at least 11 px, the cohort table scrolling inside its card."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from customers.metrics.recompute import metrics_recompute
from opsconsole.demo import seed_demo
from tests.browser.conftest import chart_text_sizes, log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

# Per chart wrapper: is the chart wider than its wrapper, and how far its right edge is past the wrapper's.
_WRAPS = """
[...document.querySelectorAll('.chart-wrap')].map(w => { const s = w.firstElementChild.getBoundingClientRect();
  const r = w.getBoundingClientRect(); return [w.dataset.testid || '', s.width > r.width, Math.round(s.right - r.right)]; })
"""


@pytest.fixture
def demo(transactional_db: Any) -> None:
    get_user_model().objects.create_superuser("founder", "founder@example.com", "pw-founder-1")
    seed_demo(tenants=30, days=60, now=timezone.now())
    metrics_recompute(full=True)


def _width(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_lifecycle_and_retention_fit_the_screen(page: Any, live_server: Any, demo: None, viewport: dict) -> None:
    size = "laptop" if viewport is LAPTOP else "phone"
    page.set_viewport_size(viewport)
    log_in(page, live_server.url)
    page.wait_for_url(f"{live_server.url}/")
    for path in ("/", "/customers/", "/retention/"):
        page.goto(f"{live_server.url}{path}")
        chart = page.locator("[data-testid=lifecycle-chart] svg.chart")
        assert chart.is_visible(), path
        # The demo's accounts have weeks of history: bars, not the empty chart.
        assert chart.locator("rect title").count() > 0, path
        assert _width(page) <= viewport["width"], f"{path} is {_width(page)}px wide at {viewport['width']}px"
        small = [(text, round(px, 1)) for text, px in chart_text_sizes(page) if px < 11]
        assert not small, f"{path}: chart text under 11px at {viewport['width']}px: {small[:5]}"
        wraps = page.evaluate(_WRAPS)
        if viewport is PHONE:
            # Wider than the phone: it scrolls sideways and opens on its right end (the latest weeks).
            assert all(wider and right <= 1 for _, wider, right in wraps), (path, wraps)
        else:
            assert not any(wider for _, wider, _ in wraps), (path, wraps)
        screenshot(page, f"lifecycle-{size}" + path.replace("/", "-").rstrip("-"))

    page.goto(f"{live_server.url}/retention/")
    assert page.locator("nav a[aria-current=page]").inner_text() == "Retention"
    cohorts = page.locator("table.retention tbody tr")
    assert cohorts.count() >= 2  # 60 days of demo history: at least two months of first activity
    assert page.locator("[data-testid=retention-chart] svg.chart path").count() >= 1
    table = page.locator("[data-testid=retention-cohorts] .table-wrap")
    box = table.bounding_box()
    assert box is not None and box["x"] + box["width"] <= viewport["width"] + 1
    screenshot(page, f"retention-{size}")
