"""Risk weights edited in admin, in a real browser: the form shows a field per component and saves."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from customers.models import RiskWeights
from tests.browser.conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def owner(transactional_db: Any) -> Any:
    return get_user_model().objects.create_superuser("founder", "founder@example.com", "pw-founder-1")


def test_the_founder_edits_a_risk_weight_in_admin_and_sees_an_error_in_words(page, live_server, owner):
    before = set(RiskWeights.objects.values_list("pk", flat=True))
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    log_in(page, live_server.url, next_path="/admin/customers/riskweights/add/")
    page.wait_for_url(f"{live_server.url}/admin/customers/riskweights/add/")
    assert page.input_value("#id_max_silent_churn") == "50"
    assert "100 lets this component alone fill the whole signal" in page.content()

    page.fill("#id_max_silent_churn", "150")
    page.click("input[name=_save]")
    assert "Maximum points must lie in 0-100 (got 150)." in page.locator(".errorlist").first.inner_text()
    assert page.input_value("#id_note") == ""  # the form is shown again, nothing saved
    assert set(RiskWeights.objects.values_list("pk", flat=True)) == before

    page.fill("#id_max_silent_churn", "30")
    page.fill("#id_note", "silence matters less for us")
    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/customers/riskweights/")
    assert "was added successfully" in page.locator(".messagelist").inner_text()
    (added,) = RiskWeights.objects.exclude(pk__in=before)
    assert (added.weights["silent_churn"], added.note, added.is_active) == (30.0, "silence matters less for us", False)
    screenshot(page, "admin-risk-weights")
    assert errors == []
