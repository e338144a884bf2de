"""Churns and plan changes that arrive from billing (Stripe webhooks).

A recorded churn is the ground truth the risk signal is validated against, so it
should not depend on the founder remembering to type it in. ``POST
/api/v1/stripe/webhook`` (playbooks/apis.py) hands the raw body and its
``Stripe-Signature`` header to ``stripe_event_receive``:

* the signature is checked with the ``stripe`` package's own verification
  (``stripe.WebhookSignature.verify_header``, secret STRIPE_WEBHOOK_SECRET,
  tolerance STRIPE_WEBHOOK_TOLERANCE_SECONDS); a bad one raises
  ``BillingInputError`` and nothing is written;
* every verified event is stored once under Stripe's event id (``StripeEvent``):
  a replay finds the row and records nothing twice, also when two deliveries race
  (the primary key serialises them);
* ``customer.subscription.deleted`` records a churn through the one churn service
  (``playbooks.churns.churn_record``: the customer leaves every at-risk list at once) and
  ``customer.subscription.updated`` with a changed plan a ``PlanChangeRecord``,
  for the tenant named by the subscription's ``metadata.tenant_id`` or mapped to
  the Stripe customer in admin (``StripeCustomerLink``);
* ``customer.subscription.created``, ``.updated`` and ``.deleted`` also set the subscription's
  monthly revenue (``StripeSubscription``: items' price x quantity per month, discounts applied,
  0 once canceled) and the tenant's billed MRR (``customers.revenue``), unless a newer event
  (Stripe's ``created``) already described that subscription: Stripe does not deliver in order.
  A malformed amount, interval or currency is refused (a 400) before anything is written;
* an event whose customer is not known is kept as ``unmapped`` and the customer
  is listed in admin; mapping it there (``stripe_customer_map``) records the
  waiting events. Nothing accepted is lost, and none of it is a 5xx.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.models import Tenant
from customers.revenue import (
    RevenueInputError,
    currency_clean,
    minor_units_to_major,
    per_month,
    tenant_billing_revenue_set,
)
from playbooks.churns import churn_record
from playbooks.models import (
    NOTE_MAX_CHARS,
    ChurnRecord,
    PlanChangeRecord,
    StripeCustomerLink,
    StripeEvent,
    StripeEventStatus,
    StripeSubscription,
)

SUBSCRIPTION_CREATED = "customer.subscription.created"
SUBSCRIPTION_DELETED = "customer.subscription.deleted"
SUBSCRIPTION_UPDATED = "customer.subscription.updated"
SUBSCRIPTION_EVENTS = (SUBSCRIPTION_CREATED, SUBSCRIPTION_UPDATED, SUBSCRIPTION_DELETED)
# The statuses whose subscription is paid for now; a trial, an unpaid, paused or ended one is no revenue.
PAYING_STATUSES = frozenset({"active", "past_due"})
# Who recorded a churn or plan change that came from Stripe (ChurnRecord.created_by).
STRIPE_RECORDER = "stripe"


class BillingInputError(ValueError):
    """A webhook body or signature that cannot be accepted (a 400; nothing is written)."""


class BillingNotConfigured(RuntimeError):
    """STRIPE_WEBHOOK_SECRET is unset: nothing can be verified (a 400; Stripe retries)."""


@dataclass
class StripeReceipt:
    event_id: str
    event_type: str
    status: str
    duplicate: bool
    tenant_id: str | None


def stripe_event_verify(*, payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event in ``payload`` once its signature is verified; raises BillingInputError otherwise."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise BillingNotConfigured("STRIPE_WEBHOOK_SECRET is not set; the event was not verified or stored.")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BillingInputError("The body is not UTF-8.") from exc
    try:
        stripe.WebhookSignature.verify_header(
            text, signature, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError as exc:
        raise BillingInputError(f"Invalid Stripe signature: {exc.user_message or exc}") from exc
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise BillingInputError("The body is not JSON.") from exc
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event["id"]:
        raise BillingInputError("The body is not a Stripe event (no id).")
    if not isinstance(event.get("type"), str) or not isinstance(event.get("created"), int):
        raise BillingInputError("The body is not a Stripe event (no type or created).")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise BillingInputError("The body is not a Stripe event (no data.object).")
    return event


def _customer_id(obj: dict[str, Any]) -> str:
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return customer if isinstance(customer, str) else ""


def _metadata_tenant_id(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata")
    value = metadata.get("tenant_id") if isinstance(metadata, dict) else None
    return value.strip() if isinstance(value, str) else ""


def _utc_day(timestamp: Any, fallback: date) -> date:
    if isinstance(timestamp, int) and timestamp > 0:
        return datetime.fromtimestamp(timestamp, tz=UTC).date()
    return fallback


def _plan_name(obj: Any) -> str:
    """A plan's readable name: the nickname if set, else its id (price or plan)."""
    if not isinstance(obj, dict):
        return ""
    for key in ("nickname", "lookup_key", "id"):
        if isinstance(obj.get(key), str) and obj[key]:
            return obj[key]
    return ""


def _subscription_plan(obj: dict[str, Any]) -> str:
    items = obj.get("items")
    data = items.get("data") if isinstance(items, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        name = _plan_name(data[0].get("price")) or _plan_name(data[0].get("plan"))
        if name:
            return name
    return _plan_name(obj.get("plan"))


@dataclass(frozen=True)
class SubscriptionRevenue:
    """What one subscription object brings in per month (major unit), in its currency."""

    subscription_id: str
    mrr: Decimal
    currency: str
    status: str
    plan: str


def _stripe_amount(value: Any, what: str) -> Decimal:
    """Stripe's amount in the smallest unit: an integer, or a decimal string (``unit_amount_decimal``)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BillingInputError(f"{what} {value!r} is not a Stripe amount (an integer in the smallest unit).")
    try:
        amount = Decimal(value) if isinstance(value, int) else Decimal(value.strip())
    except InvalidOperation:
        raise BillingInputError(f"{what} {value!r} is not a Stripe amount (an integer in the smallest unit).") from None
    if not amount.is_finite() or amount < 0:
        raise BillingInputError(f"{what} {value!r} is not a Stripe amount (negative or not finite).")
    return amount


def _item_per_month(item: Any, currency: str, index: int) -> tuple[Decimal, str]:
    """One subscription item's price x quantity per month (major unit), and its interval."""
    if not isinstance(item, dict):
        raise BillingInputError(f"items.data[{index}] is not an object.")
    price = item.get("price") if isinstance(item.get("price"), dict) else item.get("plan")
    if not isinstance(price, dict):
        raise BillingInputError(f"items.data[{index}] has no price.")
    recurring = price.get("recurring") if isinstance(price.get("recurring"), dict) else price
    raw = price.get("unit_amount")
    if raw is None:
        raw = price.get("unit_amount_decimal", price.get("amount"))
    amount = _stripe_amount(raw, f"items.data[{index}].price.unit_amount")
    quantity = item.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
        raise BillingInputError(f"items.data[{index}].quantity {quantity!r} is not a whole number.")
    interval = recurring.get("interval")
    try:
        monthly = per_month(
            minor_units_to_major(1, currency) * amount * quantity,
            interval=interval if isinstance(interval, str) else "",
            interval_count=recurring.get("interval_count", 1),
        )
    except RevenueInputError as exc:
        raise BillingInputError(f"items.data[{index}]: {exc}.") from exc
    return monthly, interval


def _coupons(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The coupons applying now: ``discount`` (one) and ``discounts`` (expanded objects; bare ids say nothing)."""
    found = []
    for discount in [obj.get("discount"), *(obj.get("discounts") or [])]:
        if isinstance(discount, dict):
            coupon = discount.get("coupon") if isinstance(discount.get("coupon"), dict) else None
            if coupon is None and isinstance(discount.get("source"), dict):
                coupon = (
                    discount["source"].get("coupon") if isinstance(discount["source"].get("coupon"), dict) else None
                )
            if coupon is not None:
                found.append(coupon)
    return found


def subscription_revenue(obj: dict[str, Any], *, ended: bool = False) -> SubscriptionRevenue | None:
    """A subscription object's MRR: each item's price x quantity normalised to a month (day, week,
    month, year with ``interval_count``), then each coupon applying now (``percent_off``, then
    ``amount_off`` per billing period; its ``duration`` is not looked ahead), never below 0. A
    subscription that is not paying now (``PAYING_STATUSES``) or has ended is 0.
    Raises BillingInputError for a malformed amount, quantity, interval or currency."""
    subscription_id = obj.get("id") if isinstance(obj.get("id"), str) else ""
    if not subscription_id:
        raise BillingInputError("The subscription has no id.")
    items = obj.get("items")
    data = items.get("data") if isinstance(items, dict) else None
    if not isinstance(data, list):
        data = []
    first_price = data[0].get("price") if data and isinstance(data[0], dict) else None
    raw_currency = obj.get("currency") or (first_price.get("currency") if isinstance(first_price, dict) else None)
    if raw_currency is None and not data:
        # Neither items nor a currency: the event says nothing about revenue (a named skip, not an error).
        if not ended:
            return None
        known = StripeSubscription.objects.filter(subscription_id=subscription_id[:255]).first()
        if known is None:
            return None
        return SubscriptionRevenue(known.subscription_id, Decimal(0), known.currency, "canceled", known.plan)
    try:
        currency = currency_clean(raw_currency)
    except RevenueInputError as exc:
        raise BillingInputError(f"The subscription's {exc}.") from exc
    total, interval = Decimal(0), "month"
    for index, item in enumerate(data):
        monthly, interval = _item_per_month(item, currency, index)
        total += monthly
    for coupon in _coupons(obj):
        percent = coupon.get("percent_off")
        if percent is not None:
            if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
                raise BillingInputError(f"coupon percent_off {percent!r} is not a percentage.")
            total = total * (Decimal(100) - Decimal(str(percent))) / Decimal(100)
        off = coupon.get("amount_off")
        if off is not None:
            amount = minor_units_to_major(1, currency) * _stripe_amount(off, "coupon amount_off")
            total -= per_month(amount, interval=interval, interval_count=_interval_count(data))
    status = obj.get("status") if isinstance(obj.get("status"), str) else ""
    if ended or status not in PAYING_STATUSES:
        total = Decimal(0)
    mrr = max(total, Decimal(0)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return SubscriptionRevenue(subscription_id[:255], mrr, currency, status[:32], _subscription_plan(obj)[:255])


def _interval_count(data: list[Any]) -> int:
    price = data[0].get("price") if data and isinstance(data[0], dict) else None
    recurring = price.get("recurring") if isinstance(price, dict) else None
    count = recurring.get("interval_count", 1) if isinstance(recurring, dict) else 1
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 1


def subscription_revenue_record(
    *, revenue: SubscriptionRevenue, tenant: Tenant, customer_id: str, described_at: datetime
) -> bool:
    """Keep the subscription's MRR unless a newer event described it, then set the tenant's billed
    MRR (the sum of its subscriptions in the currency of most of it). False: the event was older."""
    current = StripeSubscription.objects.select_for_update().filter(subscription_id=revenue.subscription_id).first()
    if current is not None and current.described_at > described_at:
        return False
    StripeSubscription.objects.update_or_create(
        subscription_id=revenue.subscription_id,
        defaults={
            "stripe_customer_id": customer_id[:255],
            "tenant": tenant,
            "status": revenue.status,
            "mrr": revenue.mrr,
            "currency": revenue.currency,
            "plan": revenue.plan,
            "described_at": described_at,
        },
    )
    sums: dict[str, Decimal] = {}
    for mrr, currency in StripeSubscription.objects.filter(tenant=tenant).values_list("mrr", "currency"):
        sums[currency] = sums.get(currency, Decimal(0)) + mrr
    currency = max(sorted(sums), key=lambda c: sums[c])
    latest = StripeSubscription.objects.filter(tenant=tenant, mrr__gt=0).order_by("-described_at").first()
    tenant_billing_revenue_set(
        tenant_id=tenant.tenant_id,
        mrr=sums[currency],
        currency=currency,
        plan=latest.plan if latest else "",
        moment=described_at,
    )
    return True


def stripe_tenant_resolve(*, customer_id: str, obj: dict[str, Any]) -> Tenant | None:
    """The tenant of the event's customer: metadata.tenant_id if it names a tenant, else the
    admin mapping. An unknown customer gets an unmapped link row, listed in admin."""
    named = _metadata_tenant_id(obj)
    tenant = Tenant.objects.filter(tenant_id=named).first() if named else None
    if not customer_id:
        return tenant
    link = StripeCustomerLink.objects.select_for_update().filter(stripe_customer_id=customer_id).first()
    if link is None:
        hint = f"metadata.tenant_id={named}" if named else ""
        StripeCustomerLink.objects.create(stripe_customer_id=customer_id, tenant=tenant, hint=hint)
        return tenant
    if link.tenant_id is None and tenant is not None:
        link.tenant = tenant
        link.save(update_fields=["tenant", "updated_at"])
    return tenant or link.tenant


def _churn_record(*, tenant: Tenant, obj: dict[str, Any], event_created: date) -> ChurnRecord:
    ended = obj.get("ended_at") or obj.get("canceled_at")
    # A churn cannot be dated in the future (the founder's day may lag UTC's).
    day = min(_utc_day(ended, event_created), timezone.localdate())
    details = obj.get("cancellation_details")
    why = [str(details[k]) for k in ("reason", "feedback", "comment") if isinstance(details, dict) and details.get(k)]
    reason = f"Stripe: subscription {obj.get('id', '?')} ended" + (f" ({'; '.join(why)})" if why else "")
    # The one churn service: the customer leaves every list in this transaction. A churn already
    # recorded that day (by hand, the CSV import or an earlier subscription) is the same churn.
    # The reason is cut to the length every churn keeps: Stripe's feedback is the customer's text.
    return churn_record(
        tenant_id=tenant.tenant_id,
        day=day,
        reason=reason[:NOTE_MAX_CHARS],
        created_by=STRIPE_RECORDER,
        keep_recorded=True,
    )


def _event_apply(row: StripeEvent, event: dict[str, Any], tenant: Tenant | None) -> None:
    """Record what the event means for its tenant; sets ``row.status`` (and ``row.churn``)."""
    obj = event["data"]["object"]
    created_day = _utc_day(event["created"], timezone.localdate())
    revenue = None
    if row.event_type in SUBSCRIPTION_EVENTS and tenant is not None:
        revenue = subscription_revenue(obj, ended=row.event_type == SUBSCRIPTION_DELETED)
        if revenue is not None:
            subscription_revenue_record(
                revenue=revenue, tenant=tenant, customer_id=row.stripe_customer_id, described_at=row.created_at
            )
    if row.event_type == SUBSCRIPTION_DELETED:
        if tenant is None:
            row.status = StripeEventStatus.UNMAPPED
            return
        row.churn = _churn_record(tenant=tenant, obj=obj, event_created=created_day)
        row.status = StripeEventStatus.RECORDED
        return
    previous = event["data"].get("previous_attributes")
    changed_plan = isinstance(previous, dict) and ("items" in previous or "plan" in previous)
    if row.event_type in SUBSCRIPTION_EVENTS and tenant is None:
        says_revenue = isinstance(obj.get("items"), dict) or bool(obj.get("currency"))
        row.status = StripeEventStatus.UNMAPPED if changed_plan or says_revenue else StripeEventStatus.IGNORED
        return
    if row.event_type != SUBSCRIPTION_UPDATED or not changed_plan:
        # A created or updated subscription without a plan change still set the revenue.
        row.status = StripeEventStatus.RECORDED if revenue is not None else StripeEventStatus.IGNORED
        return
    PlanChangeRecord.objects.get_or_create(
        stripe_event_id=row.event_id,
        defaults={
            "tenant": tenant,
            "date": min(created_day, timezone.localdate()),
            "previous_plan": _subscription_plan(previous) if isinstance(previous, dict) else "",
            "plan": _subscription_plan(obj),
        },
    )
    row.status = StripeEventStatus.RECORDED


def stripe_event_record(event: dict[str, Any]) -> StripeReceipt:
    """Store a verified event once and record its churn or plan change (idempotent on its id)."""
    obj = event["data"]["object"]
    customer_id = _customer_id(obj)
    if event["type"] in SUBSCRIPTION_EVENTS:
        # Refused whole before anything is stored: a malformed amount is never half-recorded.
        subscription_revenue(obj, ended=event["type"] == SUBSCRIPTION_DELETED)
    try:
        with transaction.atomic():
            row = StripeEvent(
                event_id=event["id"][:255],
                event_type=event["type"][:100],
                stripe_customer_id=customer_id[:255],
                created_at=datetime.fromtimestamp(max(event["created"], 0), tz=UTC),
                status=StripeEventStatus.IGNORED,
                payload=event["data"],
            )
            row.save(force_insert=True)
            tenant = stripe_tenant_resolve(customer_id=customer_id, obj=obj)
            _event_apply(row, event, tenant)
            row.tenant = tenant if row.status == StripeEventStatus.RECORDED else None
            row.save(update_fields=["status", "tenant", "churn"])
    except IntegrityError:
        # The event id is already stored (a replay, or a concurrent delivery that won): nothing more.
        seen = StripeEvent.objects.get(event_id=event["id"][:255])
        return StripeReceipt(seen.event_id, seen.event_type, seen.status, True, seen.tenant_id)
    return StripeReceipt(row.event_id, row.event_type, row.status, False, row.tenant_id)


def stripe_event_receive(*, payload: bytes, signature: str | None) -> StripeReceipt:
    """Verify and record one webhook delivery (see the module docstring)."""
    return stripe_event_record(stripe_event_verify(payload=payload, signature=signature))


def stripe_customer_map(*, stripe_customer_id: str, tenant_id: str) -> int:
    """Map a Stripe customer to a tenant and record its waiting (unmapped) events; returns how many."""
    with transaction.atomic():
        tenant = Tenant.objects.filter(tenant_id=tenant_id).first()
        if tenant is None:
            raise BillingInputError(f"Unknown tenant '{tenant_id}'.")
        link, _ = StripeCustomerLink.objects.select_for_update().get_or_create(stripe_customer_id=stripe_customer_id)
        link.tenant = tenant
        link.save()
        waiting = list(
            StripeEvent.objects.select_for_update()
            .filter(stripe_customer_id=stripe_customer_id, status=StripeEventStatus.UNMAPPED)
            .order_by("created_at", "event_id")
        )
        for row in waiting:
            event = {"id": row.event_id, "type": row.event_type, "created": int(row.created_at.timestamp())}
            event["data"] = row.payload
            _event_apply(row, event, tenant)
            row.tenant = tenant if row.status == StripeEventStatus.RECORDED else None
            row.save(update_fields=["status", "tenant", "churn"])
    return len(waiting)
