"""Browser flows that need the playbooks app (issue 5): log an intervention from the Customer
page's playbook panel, and edit a playbook threshold in admin, then see the match change after
a recompute.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from customers.metrics.recompute import metrics_recompute
from tests.browser.conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TENANT = "blocked-co"


@pytest.fixture
def founder(transactional_db):
    return get_user_model().objects.create_user(
        "founder", "founder@example.com", "pw-founder-1", is_staff=True, is_superuser=True
    )


@pytest.fixture
def policy_friction_tenant(transactional_db) -> str:
    """A customer with 4 POLICY_BLOCK_REPEAT in the last 7 days (one per session) and daily views:
    it matches the seeded ``policy_friction`` playbook (3+ in 7 days), not one with a threshold of 5."""
    now = timezone.now()
    rows = [("POLICY_BLOCK_REPEAT", now - timedelta(days=d, hours=1), f"p{d}") for d in range(4)]
    rows += [("INCIDENT_VIEWED", now - timedelta(days=d, hours=2), f"v{d}") for d in range(28)]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers_tenant (tenant_id, name, kind, first_seen_at, notes) "
            "VALUES (%s, 'Blocked Co', 'customer', %s, '')",
            [TENANT, now - timedelta(days=40)],
        )
        cursor.executemany(
            "INSERT INTO ops_events (event_id, tenant_id, user_id, session_id, event_type, occurred_at, received_at,"
            " metadata, friction_signal, is_real, exclusion_reason) VALUES (%s, %s, 'u1', %s, %s, %s, %s, '{}', '', true, '')",
            [(str(uuid.uuid4()), TENANT, session, event_type, at, now) for event_type, at, session in rows],
        )
    metrics_recompute(full=True)
    return TENANT


def test_the_founder_logs_an_intervention_from_the_customer_page(page, live_server, founder, policy_friction_tenant):
    from playbooks.models import InterventionRecord

    log_in(page, live_server.url, next_path=f"/customers/{policy_friction_tenant}/")
    page.wait_for_url(f"{live_server.url}/customers/{policy_friction_tenant}/")
    button = page.get_by_role("button", name="Log intervention")
    form = page.locator("form").filter(has=button)
    assert form.count() == 1
    # Fill whatever the form requires: the first real option of each select, a note in each text field.
    for select in form.locator("select[required]").all():
        values = [v for v in select.locator("option").evaluate_all("os => os.map(o => o.value)") if v]
        select.select_option(values[0])
    for field in form.locator("input[required][type=text], textarea[required]").all():
        if not field.input_value():
            field.fill("Called the CTO; policy relaxed")
    button.click()
    page.wait_for_load_state()
    page.wait_for_url(f"{live_server.url}/customers/{policy_friction_tenant}/")
    recorded = InterventionRecord.objects.get(tenant_id=policy_friction_tenant)
    assert recorded.action == "Called the CTO; policy relaxed"
    assert recorded.playbook_id == "policy_friction"  # preselected: the top matched playbook
    assert "Called the CTO; policy relaxed" in page.locator("main").inner_text()
    screenshot(page, "customer-intervention-logged")


def test_a_threshold_edited_in_admin_changes_the_match_after_a_recompute(
    page, live_server, founder, policy_friction_tenant
):
    from playbooks.models import Playbook

    playbook = Playbook.objects.get(pk="policy_friction")
    log_in(page, live_server.url, next_path=f"/customers/{policy_friction_tenant}/")
    page.wait_for_url(f"{live_server.url}/customers/{policy_friction_tenant}/")
    assert page.get_by_test_id("matched-playbook-policy_friction").count() == 1

    page.goto(f"{live_server.url}/admin/playbooks/playbook/{playbook.pk}/change/")
    threshold = page.locator("input[name$='-threshold']").first
    assert float(threshold.input_value()) == 3
    threshold.fill("5")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(f"{live_server.url}/admin/playbooks/playbook/")

    metrics_recompute()
    page.goto(f"{live_server.url}/customers/{policy_friction_tenant}/")
    assert page.get_by_test_id("matched-playbook-policy_friction").count() == 0
    assert "3+ POLICY_BLOCK_REPEAT" not in page.get_by_test_id("playbook-panel").inner_text()
    screenshot(page, "customer-after-threshold-edit")
