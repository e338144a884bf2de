"""Browser tests: Playwright driving Debian's Chromium against the live test server.

Without /usr/bin/chromium they skip with the reason (fail under REQUIRE_SERVICES=1).
Screenshots of every page visited go to test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import skip_or_fail

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"


# Module scope: the sync API keeps an event loop running in the main thread while
# the browser is open, which would make every later ORM call outside this module fail.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        skip_or_fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed (pip install -r requirements-dev.txt)")
    # Playwright's sync API runs an event loop in the test thread; the ORM calls the
    # tests themselves make (fixtures, database flushes) are still synchronous and safe.
    # Set only while this module's browser is open: it must never reach a deployment.
    with pytest.MonkeyPatch.context() as env, sync_playwright() as playwright:
        env.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(
    page: Any, base_url: str, *, username: str = "founder", password: str = "pw-founder-1", next_path: str = "/"
) -> None:
    page.goto(f"{base_url}/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


# Each shown chart text's size as drawn, in CSS px: its computed font size (in the SVG's user
# units) times the SVG's scale on the screen (CSS px per user unit).
_CHART_TEXT_SIZES = """
[...document.querySelectorAll('svg.chart')].flatMap(svg => {
  const scale = svg.getScreenCTM().a;
  return [...svg.querySelectorAll('text')].filter(t => t.getClientRects().length)
    .map(t => [t.textContent, parseFloat(getComputedStyle(t).fontSize) * scale]);
})
"""


def chart_text_sizes(page: Any) -> list[tuple[str, float]]:
    """(text, size in CSS px) of every chart text shown on the page (folded charts are not shown)."""
    return [(text, size) for text, size in page.evaluate(_CHART_TEXT_SIZES)]
