"""What each customer pays per month (MRR): the figure in force and its history by day.

Three sources give a customer's MRR: billing (the Stripe webhook and the subscriptions export,
playbooks/billing.py and playbooks/subscription_import.py), the product's account traits (``mrr``
and ``plan`` in a group call, read at each recompute by ``revenue_traits_apply``) and the founder
(``founder_mrr`` in admin). The one in force is the founder's if set, else billing's once billing has
reported the customer, else the traits'. Every change goes through ``tenant_revenue_settle``, which
writes ``ops_tenant_revenue``, the day's row of ``ops_tenant_revenue_day`` and the MRR copied onto
``ops_tenant_metrics`` (which the expected-loss order reads) in the caller's transaction.

Amounts are decimals in the currency's major unit (dollars, not cents), per month; currencies are
ISO 4217 codes, upper case. A negative amount or an unknown currency raises ``RevenueInputError``
before anything is written.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core.rows import rows_as_dicts
from customers.founder_actions import answers_changed
from customers.models import RevenueSource, Tenant, TenantMetrics, TenantRevenue, TenantRevenueDay

# ISO 4217 active codes (the list the standard's maintenance agency publishes), so a typo such as
# "USDD" or "EURO" is refused rather than shown as money.
ISO_4217_CODES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN
    BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
    KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV
    MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG
    SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN
    UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS
    XUA XXX YER ZAR ZMW ZWG ZWL
    """.split()
)
# Stripe's amounts are integers in the currency's smallest unit: cents for most, the unit itself for
# these (Stripe's zero-decimal list), thousandths for these three-decimal currencies.
ZERO_DECIMAL_CURRENCIES = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
THREE_DECIMAL_CURRENCIES = frozenset("BHD JOD KWD OMR TND".split())
# Months per billing interval: a yearly price is a twelfth per month, a weekly one 52/12 weeks a month.
MONTHS_PER_INTERVAL: dict[str, Decimal] = {
    "day": Decimal(12) / Decimal(365),
    "week": Decimal(12) / Decimal(52),
    "month": Decimal(1),
    "year": Decimal(12),
}
MRR_MAX = Decimal("999999999999.99")
CENT = Decimal("0.01")


class RevenueInputError(ValueError):
    """An amount, currency or interval that cannot be MRR (nothing is written)."""


def currency_clean(value: Any) -> str:
    """An ISO 4217 code, upper case; raises RevenueInputError for anything else."""
    code = value.strip().upper() if isinstance(value, str) else ""
    if code not in ISO_4217_CODES:
        raise RevenueInputError(f"unknown currency {value!r} (an ISO 4217 code such as USD is expected)")
    return code


def mrr_clean(value: Any) -> Decimal:
    """A monthly amount (a number or a numeric string, major unit), rounded to cents; refuses
    booleans, text, NaN, infinities, negatives and absurd sizes with RevenueInputError."""
    if isinstance(value, bool) or value is None:
        raise RevenueInputError(f"MRR {value!r} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise RevenueInputError(f"MRR {value!r} is not a finite number")
    try:
        amount = Decimal(str(value).strip()) if isinstance(value, (int, float, str, Decimal)) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise RevenueInputError(f"MRR {value!r} is not a number")
    if amount < 0:
        raise RevenueInputError(f"MRR {value} is negative")
    if amount > MRR_MAX:
        raise RevenueInputError(f"MRR {value} is larger than any plausible monthly revenue")
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def minor_units_to_major(amount: int, currency: str) -> Decimal:
    """Stripe's integer amount (smallest unit) in the currency's major unit."""
    if currency in ZERO_DECIMAL_CURRENCIES:
        return Decimal(amount)
    return Decimal(amount) / (1000 if currency in THREE_DECIMAL_CURRENCIES else 100)


def per_month(amount: Decimal, *, interval: str, interval_count: int) -> Decimal:
    """An amount billed every ``interval_count`` ``interval``s, per month (unrounded)."""
    if interval not in MONTHS_PER_INTERVAL:
        raise RevenueInputError(f"unknown billing interval {interval!r} (day, week, month or year)")
    if isinstance(interval_count, bool) or not isinstance(interval_count, int) or interval_count < 1:
        raise RevenueInputError(f"interval_count {interval_count!r} is not a positive whole number")
    return amount / (MONTHS_PER_INTERVAL[interval] * interval_count)


def _in_force(row: TenantRevenue) -> tuple[Decimal | None, str, str]:
    if row.founder_mrr is not None:
        return row.founder_mrr, row.founder_currency, RevenueSource.FOUNDER
    if row.billing_connected:
        return row.stripe_mrr, row.stripe_currency, RevenueSource.STRIPE
    if row.traits_mrr is not None:
        return row.traits_mrr, row.traits_currency, RevenueSource.TRAITS
    return None, "", ""


@transaction.atomic
def tenant_revenue_settle(*, row: TenantRevenue, day: date) -> TenantRevenue:
    """Work out the MRR in force from ``row``'s sources, save it, record it as ``day``'s and copy it
    onto the metrics row. The one writer of the figure in force (admin, billing and traits call it)."""
    if row.founder_mrr is not None:
        mrr_clean(row.founder_mrr)
        row.founder_currency = currency_clean(row.founder_currency)
    mrr, currency, source = _in_force(row)
    row.mrr, row.currency, row.source = mrr, currency, source
    row.updated_at = timezone.now()
    row.save()
    if mrr is not None:
        TenantRevenueDay.objects.update_or_create(
            tenant_id=row.tenant_id, day=day, defaults={"mrr": mrr, "currency": currency, "source": source}
        )
    TenantMetrics.objects.filter(tenant_id=row.tenant_id).update(mrr=mrr)
    # The cached at-risk answers show the MRR: move their version as a founder action does.
    answers_changed()
    return row


def tenant_revenue_row(tenant_id: str) -> TenantRevenue:
    """The tenant's revenue row, locked for the caller's transaction (created empty when new)."""
    TenantRevenue.objects.get_or_create(tenant_id=tenant_id)
    return TenantRevenue.objects.select_for_update().get(tenant_id=tenant_id)


def tenant_billing_revenue_set(
    *, tenant_id: str, mrr: Decimal, currency: str, plan: str, moment: datetime
) -> TenantRevenue:
    """Billing's MRR for the tenant as of ``moment`` (the Stripe event's created time)."""
    amount, code = mrr_clean(mrr), currency_clean(currency)
    with transaction.atomic():
        row = tenant_revenue_row(tenant_id)
        row.billing_connected = True
        row.stripe_mrr, row.stripe_currency = amount, code
        if plan:
            row.plan = plan[:200]
        return tenant_revenue_settle(row=row, day=min(moment.astimezone(UTC).date(), timezone.localdate()))


# Account traits carrying an mrr the revenue has not read yet (or read before their last change).
# Uses ops_account_traits' and ops_tenant_revenue's primary keys; the traits table holds one row
# per account that ever sent a group call, so this is read whole, but only its changed rows leave it.
_TRAITS_CHANGED_SQL = """
SELECT t.tenant_id, t.properties -> 'mrr' AS mrr, t.properties -> 'currency' AS currency,
       t.properties ->> 'plan' AS plan, t.updated_at
FROM ops_account_traits t
JOIN customers_tenant c ON c.tenant_id = t.tenant_id
LEFT JOIN ops_tenant_revenue r ON r.tenant_id = t.tenant_id
WHERE t.properties ? 'mrr' AND (r.traits_seen_at IS NULL OR r.traits_seen_at < t.updated_at)
ORDER BY t.tenant_id
"""


def revenue_traits_apply(*, default_currency: str = "USD") -> tuple[int, list[str]]:
    """Read the accounts' ``mrr`` (and ``currency``, ``plan``) traits changed since last read.

    Returns (how many applied, the skipped with why: "acme: MRR 'lots' is not a number"). A skipped
    trait is remembered as read (so it is not reported at every run) and changes nothing.
    """
    import json

    applied, skipped = 0, []
    with connection.cursor() as cursor:
        cursor.execute(_TRAITS_CHANGED_SQL)
        rows = rows_as_dicts(cursor)
    for found in rows:
        mrr = json.loads(found["mrr"]) if isinstance(found["mrr"], str) else found["mrr"]
        currency = json.loads(found["currency"]) if isinstance(found["currency"], str) else found["currency"]
        with transaction.atomic():
            row = tenant_revenue_row(found["tenant_id"])
            row.traits_seen_at = found["updated_at"]
            try:
                amount = mrr_clean(mrr)
                code = currency_clean(currency if currency is not None else default_currency)
            except RevenueInputError as exc:
                skipped.append(f"{found['tenant_id']}: {exc}")
                row.save(update_fields=["traits_seen_at"])
                continue
            row.traits_mrr, row.traits_currency = amount, code
            if found["plan"] and not row.billing_connected:
                row.plan = found["plan"][:200]
            tenant_revenue_settle(row=row, day=min(found["updated_at"].date(), timezone.localdate()))
            applied += 1
    return applied, skipped


def tenant_founder_revenue_set(*, tenant: Tenant, mrr: Decimal | None, currency: str = "") -> TenantRevenue:
    """The founder's own figure (None clears it: billing's or the traits' figure is in force again)."""
    with transaction.atomic():
        row = tenant_revenue_row(tenant.tenant_id)
        row.founder_mrr = None if mrr is None else mrr_clean(mrr)
        row.founder_currency = "" if mrr is None else currency_clean(currency)
        return tenant_revenue_settle(row=row, day=timezone.localdate())
