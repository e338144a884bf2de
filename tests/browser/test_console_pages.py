from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.browser.conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def founder(transactional_db):
    return get_user_model().objects.create_user("founder", "founder@example.com", "pw-founder-1", is_staff=True)


def test_anonymous_users_are_redirected_to_login(page, live_server):
    page.goto(f"{live_server.url}/infra/")
    assert page.url == f"{live_server.url}/login/?next=/infra/"
    assert page.locator("h1").inner_text() == "Log in"


def test_the_founder_logs_in_and_sees_the_infrastructure_runway(page, live_server, founder):
    log_in(page, live_server.url, next_path="/infra/")
    page.wait_for_url(f"{live_server.url}/infra/")
    assert page.locator("h1").inner_text() == "How long does the infrastructure last?"
    assert page.locator("svg.chart").count() == 2
    assert "Getting started: send your first event" in page.content()
    screenshot(page, "infra")
