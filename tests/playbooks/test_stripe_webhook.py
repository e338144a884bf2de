"""POST /api/v1/stripe/webhook: signatures made by the stripe package itself."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import pytest
import stripe
from django.test import Client

from customers.models import Tenant
from playbooks.billing import stripe_customer_map
from playbooks.models import ChurnRecord, PlanChangeRecord, StripeCustomerLink, StripeEvent
from tests.conftest import owner_login
from tests.playbooks.stripe_events import STRIPE_SECRET, WEBHOOK_URL, stripe_event, stripe_post


@pytest.fixture(autouse=True)
def _secret(settings: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET


@pytest.mark.django_db
def test_a_signed_subscription_deletion_records_the_churn_of_the_tenant_in_its_metadata(client: Client):
    Tenant.objects.create(tenant_id="acme")
    response = stripe_post(
        client, stripe_event("evt_1", "customer.subscription.deleted", customer="cus_1", metadata={"tenant_id": "acme"})
    )
    assert response.status_code == 200
    assert response.json()["status"] == "recorded"
    churn = ChurnRecord.objects.get()
    assert (churn.tenant_id, churn.date, churn.created_by) == ("acme", date(2026, 3, 10), "stripe")
    assert StripeCustomerLink.objects.get(stripe_customer_id="cus_1").tenant_id == "acme"


@pytest.mark.django_db
def test_a_replayed_event_records_nothing_twice(client: Client):
    Tenant.objects.create(tenant_id="acme")
    payload = stripe_event("evt_1", "customer.subscription.deleted", customer="cus_1", metadata={"tenant_id": "acme"})
    assert stripe_post(client, payload).json()["duplicate"] is False
    again = stripe_post(client, payload)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert ChurnRecord.objects.count() == 1 and StripeEvent.objects.count() == 1


@pytest.mark.django_db
def test_an_invalid_signature_is_a_400_and_stores_nothing(client: Client):
    Tenant.objects.create(tenant_id="acme")
    payload = stripe_event("evt_1", "customer.subscription.deleted", customer="cus_1", metadata={"tenant_id": "acme"})
    wrong = stripe_post(client, payload, secret="whsec_someone_else")
    assert wrong.status_code == 400 and "signature" in wrong.json()["detail"].lower()
    stale = stripe_post(client, payload, timestamp=int(time.time()) - 3600)
    assert stale.status_code == 400
    missing = client.post(WEBHOOK_URL, data=payload, content_type="application/json")
    assert missing.status_code == 400
    tampered_header = stripe.WebhookSignature.generate_signature_header(payload, STRIPE_SECRET)
    tampered = client.post(
        WEBHOOK_URL,
        data=payload.replace("acme", "acmf"),
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=tampered_header,
    )
    assert tampered.status_code == 400
    assert not StripeEvent.objects.exists() and not ChurnRecord.objects.exists()


@pytest.mark.django_db
def test_an_unknown_customer_is_acknowledged_kept_and_recorded_once_mapped(client: Client):
    Tenant.objects.create(tenant_id="acme")
    response = stripe_post(client, stripe_event("evt_9", "customer.subscription.deleted", customer="cus_new"))
    assert response.status_code == 200 and response.json()["status"] == "unmapped"
    assert not ChurnRecord.objects.exists()
    link = StripeCustomerLink.objects.get(stripe_customer_id="cus_new")
    assert link.tenant_id is None  # listed in admin for mapping
    assert stripe_customer_map(stripe_customer_id="cus_new", tenant_id="acme") == 1
    assert ChurnRecord.objects.get().tenant_id == "acme"
    assert StripeEvent.objects.get().status == "recorded"
    # Mapped now: the next event of that customer is recorded at once.
    later = stripe_event(
        "evt_10",
        "customer.subscription.updated",
        customer="cus_new",
        plan={"id": "price_pro", "nickname": "Pro"},
        previous_attributes={"plan": {"id": "price_basic"}},
    )
    assert stripe_post(client, later).json()["status"] == "recorded"
    change = PlanChangeRecord.objects.get()
    assert (change.tenant_id, change.previous_plan, change.plan) == ("acme", "price_basic", "Pro")


@pytest.mark.django_db
def test_a_subscription_update_without_a_plan_change_is_acknowledged_and_ignored(client: Client):
    Tenant.objects.create(tenant_id="acme")
    payload = stripe_event(
        "evt_2",
        "customer.subscription.updated",
        customer="cus_1",
        metadata={"tenant_id": "acme"},
        previous_attributes={"cancel_at_period_end": False},
    )
    assert stripe_post(client, payload).json()["status"] == "ignored"
    assert not PlanChangeRecord.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payload", ["not json", "[]", '{"id": "evt_x"}', '{"id": "evt_x", "type": "a", "created": 1, "data": 3}']
)
def test_signed_garbage_is_a_400_never_a_500(client: Client, payload: str):
    assert stripe_post(client, payload).status_code == 400
    assert not StripeEvent.objects.exists()


@pytest.mark.django_db
def test_without_a_secret_the_webhook_refuses_with_a_400_so_stripe_retries(client: Client, settings: Any):
    settings.STRIPE_WEBHOOK_SECRET = ""
    payload = stripe_event("evt_1", "customer.subscription.deleted", customer="cus_1")
    response = stripe_post(client, payload)
    assert response.status_code == 400 and "STRIPE_WEBHOOK_SECRET" in response.json()["detail"]
    assert not StripeEvent.objects.exists()


@pytest.mark.django_db
def test_admin_lists_the_unmapped_customer_and_mapping_it_there_records_its_churn(client: Client):
    Tenant.objects.create(tenant_id="acme")
    stripe_post(client, stripe_event("evt_5", "customer.subscription.deleted", customer="cus_lost"))
    admin = owner_login()
    listing = admin.get("/admin/playbooks/stripecustomerlink/").content.decode()
    assert "cus_lost" in listing
    response = admin.post("/admin/playbooks/stripecustomerlink/cus_lost/change/", {"tenant": "acme"})
    assert response.status_code == 302
    assert ChurnRecord.objects.get().tenant_id == "acme"
    assert StripeEvent.objects.get(event_id="evt_5").status == "recorded"
