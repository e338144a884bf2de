"""MRR from the Stripe webhook: events signed by the stripe package, values computed by hand."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import stripe
import time_machine
from django.test import Client

from customers.models import Tenant, TenantRevenue, TenantRevenueDay
from playbooks.models import StripeEvent

SECRET = "whsec_test_secret_for_ops_console"
URL = "/api/v1/stripe/webhook"
MAR_1 = datetime(2026, 3, 1, 9, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _secret(settings: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRET = SECRET


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(datetime(2026, 3, 20, 12, tzinfo=UTC), tick=False):
        yield


def _item(unit_amount: Any, *, quantity: int = 1, interval: str = "month", interval_count: int = 1) -> dict:
    return {
        "id": "si_1",
        "quantity": quantity,
        "price": {
            "id": f"price_{unit_amount}",
            "nickname": f"Plan {unit_amount}",
            "currency": "usd",
            "unit_amount": unit_amount,
            "recurring": {"interval": interval, "interval_count": interval_count},
        },
    }


def _event(event_id: str, kind: str, *, day: int, items: list[dict], status: str = "active", **obj: Any) -> str:
    created = int(datetime(2026, 3, day, 10, tzinfo=UTC).timestamp())
    subscription = {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_1",
        "currency": obj.pop("currency", "usd"),
        "metadata": {"tenant_id": "acme"},
        "status": status,
        "items": {"object": "list", "data": items},
        **obj,
    }
    body = {"id": event_id, "object": "event", "type": kind, "created": created, "data": {"object": subscription}}
    return json.dumps(body)


def _post(client: Client, payload: str) -> Any:
    header = stripe.WebhookSignature.generate_signature_header(payload, SECRET)
    return client.post(URL, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


def _mrr() -> tuple[Decimal | None, str, str]:
    row = TenantRevenue.objects.get(tenant_id="acme")
    return row.mrr, row.currency, row.source


@pytest.fixture
def acme(db: Any) -> Tenant:
    return Tenant.objects.create(tenant_id="acme")


@pytest.mark.django_db
def test_a_created_subscription_sets_its_price_times_quantity_as_mrr(client: Client, acme: Tenant):
    assert (
        _post(client, _event("evt_1", "customer.subscription.created", day=2, items=[_item(4900)])).status_code == 200
    )
    assert _mrr() == (Decimal("49.00"), "USD", "stripe")
    assert list(TenantRevenueDay.objects.values_list("day", "mrr")) == [(date(2026, 3, 2), Decimal("49.00"))]


@pytest.mark.django_db
def test_upgrade_downgrade_quantity_and_cancel_each_set_the_hand_computed_mrr(client: Client, acme: Tenant):
    _post(client, _event("evt_1", "customer.subscription.created", day=2, items=[_item(4900)]))
    _post(client, _event("evt_2", "customer.subscription.updated", day=5, items=[_item(9900)]))
    assert _mrr()[0] == Decimal("99.00")
    _post(client, _event("evt_3", "customer.subscription.updated", day=8, items=[_item(1900)]))
    assert _mrr()[0] == Decimal("19.00")
    _post(client, _event("evt_4", "customer.subscription.updated", day=9, items=[_item(1900, quantity=3)]))
    assert _mrr()[0] == Decimal("57.00")
    _post(client, _event("evt_5", "customer.subscription.deleted", day=12, items=[_item(1900, quantity=3)]))
    assert _mrr()[0] == Decimal("0.00")
    history = dict(TenantRevenueDay.objects.values_list("day", "mrr"))
    assert history == {
        date(2026, 3, 2): Decimal("49.00"),
        date(2026, 3, 5): Decimal("99.00"),
        date(2026, 3, 8): Decimal("19.00"),
        date(2026, 3, 9): Decimal("57.00"),
        date(2026, 3, 12): Decimal("0.00"),
    }


@pytest.mark.django_db
def test_intervals_are_normalised_to_a_month(client: Client, acme: Tenant):
    # 1,200.00 a year x 2 seats = 200.00 a month; 10.00 a week = 10 x 52 / 12 = 43.33; 90.00 every 3 months = 30.00.
    _post(
        client,
        _event("evt_1", "customer.subscription.created", day=2, items=[_item(120000, quantity=2, interval="year")]),
    )
    assert _mrr()[0] == Decimal("200.00")
    _post(client, _event("evt_2", "customer.subscription.updated", day=3, items=[_item(1000, interval="week")]))
    assert _mrr()[0] == Decimal("43.33")
    _post(client, _event("evt_3", "customer.subscription.updated", day=4, items=[_item(9000, interval_count=3)]))
    assert _mrr()[0] == Decimal("30.00")


@pytest.mark.django_db
def test_discounts_apply_percent_and_amount_off(client: Client, acme: Tenant):
    percent = {"coupon": {"id": "C25", "percent_off": 25, "duration": "repeating"}}
    _post(client, _event("evt_1", "customer.subscription.created", day=2, items=[_item(10000)], discount=percent))
    assert _mrr()[0] == Decimal("75.00")
    amount = {"coupon": {"id": "OFF15", "amount_off": 1500, "currency": "usd", "duration": "forever"}}
    _post(client, _event("evt_2", "customer.subscription.updated", day=3, items=[_item(10000)], discount=amount))
    assert _mrr()[0] == Decimal("85.00")


@pytest.mark.django_db
def test_an_older_event_delivered_late_does_not_undo_a_newer_one(client: Client, acme: Tenant):
    _post(client, _event("evt_2", "customer.subscription.updated", day=6, items=[_item(4900, quantity=3)]))
    _post(client, _event("evt_1", "customer.subscription.created", day=2, items=[_item(4900)]))
    assert _mrr()[0] == Decimal("147.00")


@pytest.mark.django_db
def test_a_replayed_event_changes_nothing(client: Client, acme: Tenant):
    payload = _event("evt_1", "customer.subscription.created", day=2, items=[_item(4900)])
    _post(client, payload)
    _post(client, _event("evt_2", "customer.subscription.updated", day=4, items=[_item(9900)]))
    again = _post(client, payload)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert _mrr()[0] == Decimal("99.00")
    assert TenantRevenueDay.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("items", "extra", "words"),
    [
        ([_item("49,00")], {}, "not a stripe amount"),
        ([_item(-100)], {}, "not a stripe amount"),
        ([_item(4900)], {"currency": "xyz"}, "unknown currency"),
        ([_item(4900, interval="fortnight")], {}, "interval"),
    ],
)
def test_a_malformed_subscription_is_a_400_and_writes_nothing(client: Client, acme: Tenant, items, extra, words):
    response = _post(client, _event("evt_1", "customer.subscription.created", day=2, items=items, **extra))
    assert response.status_code == 400 and words in response.json()["detail"].lower()
    assert not StripeEvent.objects.exists() and not TenantRevenue.objects.exists()
