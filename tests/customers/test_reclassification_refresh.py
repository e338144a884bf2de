"""A classification rule edit reaches the customer metrics: the reclassified
tenants' rollups are rebuilt from the event table."""

from __future__ import annotations

import pytest

from customers.metrics.recompute import metrics_recompute
from customers.models import TenantMetrics
from events.models import InternalUserRule
from events.rules import internal_user_rule_save
from tests.customers.conftest import Ev, days_ago, events_store

pytestmark = pytest.mark.django_db(transaction=True)


def test_marking_a_user_internal_removes_their_engagement_from_the_tenant(metrics_db, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from opsconsole.celery import app

    app.conf.task_always_eager = True
    try:
        # 5 exports in the last 7 days by u1 (the founder, it turns out) and 1 by a customer.
        events_store([Ev("acme", "EXPORT_COMPLETED", days_ago(1), user_id="u1") for _ in range(5)])
        events_store([Ev("acme", "EXPORT_COMPLETED", days_ago(2), user_id="customer-1")])
        metrics_recompute(full=True)
        assert TenantMetrics.objects.get(tenant_id="acme").stickiness_7d == pytest.approx(6 * 0.5)

        internal_user_rule_save(rule=InternalUserRule(kind="user_id", value="u1", note="the founder"))

        assert TenantMetrics.objects.get(tenant_id="acme").stickiness_7d == pytest.approx(1 * 0.5)
    finally:
        app.conf.task_always_eager = False


def test_flagging_a_tenant_internal_in_admin_reclassifies_its_events(metrics_db, staff_client):
    from opsconsole.celery import app

    app.conf.task_always_eager = True
    try:
        events_store([Ev("acme", "EXPORT_COMPLETED", days_ago(1)) for _ in range(4)])
        metrics_recompute(full=True)
        staff_client.force_login(_superuser())
        response = staff_client.post(
            "/admin/customers/tenant/acme/change/",
            {"tenant_id": "acme", "name": "Acme", "kind": "internal", "notes": "", "monthly_event_limit": ""},
        )
        assert response.status_code == 302, response.content[:2000]
        from events.models import Event

        assert set(Event.objects.filter(tenant_id="acme").values_list("exclusion_reason", flat=True)) == {
            "internal_tenant"
        }
        assert TenantMetrics.objects.get(tenant_id="acme").stickiness_7d == 0
    finally:
        app.conf.task_always_eager = False


def _superuser():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("root-admin", "root@example.com", "pw-root-1")
