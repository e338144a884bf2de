"""Subscriptions from a Stripe export (``manage.py import_subscriptions FILE.csv``).

The file is the Stripe Dashboard's subscriptions export (Billing -> Subscriptions -> Export): a header
row, then one subscription a line. Columns read (matched case-insensitively, other columns ignored):

* ``id`` (the subscription), ``Customer ID``, ``Customer Email`` (shown in errors only);
* ``Amount`` (the price per unit, in the currency's major unit: ``49.00``), ``Currency``, ``Interval``
  (day, week, month, year), ``Interval Count`` (optional, 1), ``Quantity`` (empty: 1), ``Status``;
* ``Created (UTC)``, ``Start (UTC)``, ``Current Period Start (UTC)``, ``Canceled At (UTC)``,
  ``Ended At (UTC)`` (``2026-03-14 10:23`` or ISO with an offset; empty when not applicable);
* ``Plan``, ``Product`` (names the plan); ``Coupon`` with ``Percent Off`` or ``Amount Off`` (major unit
  per billing period): the export names a coupon but not its size, so a coupon without either is
  not applied and is listed as such;
* ``tenant_id (metadata)`` (the subscription's metadata, as the export names it) or ``tenant_id``.

Each row's customer is mapped as the webhook maps it (``playbooks.billing.stripe_tenant_resolve``):
the ``tenant_id`` metadata when it names a known tenant, else the Stripe customer's mapping in admin.
Its MRR goes through the webhook's own definition and writer (``subscription_revenue`` and
``subscription_revenue_record``: price x quantity per month, the coupon, 0 unless active or past due
or once ended), described as of the row's newest moment (ended, canceled, current period start,
start, created), so a webhook event newer than the export wins and an older one does not.

Every row is checked before anything is written: one bad row (a malformed or negative amount, an
unknown currency or interval, an unmapped customer, a repeated id) and the whole file is refused,
each problem named by line and column. Idempotent: a subscription already recorded as of the same
moment or later is counted as already there and nothing is written for it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from core.csv_command import CsvRefused
from customers.models import Tenant
from customers.revenue import (
    MONTHS_PER_INTERVAL,
    RevenueInputError,
    currency_clean,
    minor_units_to_major,
    mrr_clean,
)
from playbooks.billing import (
    BillingInputError,
    SubscriptionRevenue,
    stripe_tenant_resolve,
    subscription_revenue,
    subscription_revenue_record,
)
from playbooks.models import StripeCustomerLink, StripeSubscription

# What each value is called in the export (lower case), first the Dashboard's name.
COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "subscription id"),
    "customer": ("customer id", "customer"),
    "email": ("customer email",),
    "amount": ("amount", "plan amount", "price amount"),
    "currency": ("currency",),
    "interval": ("interval", "plan interval"),
    "interval_count": ("interval count",),
    "quantity": ("quantity",),
    "status": ("status",),
    "created": ("created (utc)", "created"),
    "start": ("start (utc)", "start date (utc)"),
    "period_start": ("current period start (utc)",),
    "canceled_at": ("canceled at (utc)", "canceled at"),
    "ended_at": ("ended at (utc)", "ended at"),
    "plan": ("plan", "price id", "plan id"),
    "product": ("product", "product name"),
    "coupon": ("coupon", "discount"),
    "percent_off": ("percent off", "coupon percent off"),
    "amount_off": ("amount off", "coupon amount off"),
    "tenant_id": ("tenant_id (metadata)", "tenant_id"),
}
REQUIRED = ("id", "amount", "currency", "interval", "status", "created")
# The moments a row describes, newest wins: the subscription is as the export says from then on.
MOMENTS = ("ended_at", "canceled_at", "period_start", "start", "created")
ROWS_MAX = 100_000


@dataclass
class SubscriptionImportResult:
    recorded: int = 0
    already_recorded: int = 0
    tenants: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    line: int
    subscription: dict[str, Any]
    tenant: Tenant
    customer_id: str
    described_at: datetime
    revenue: SubscriptionRevenue


def _moment_parse(value: str) -> datetime:
    """The export's "2026-03-14 10:23" (UTC) or an ISO timestamp with an offset."""
    text = value.strip().replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _whole(value: str, what: str, *, minimum: int) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise ValueError(f"{what} {value.strip()!r} is not a whole number") from None
    if number < minimum:
        raise ValueError(f"{what} {number} is below {minimum}")
    return number


class _Line:
    """One row's values by their column, each error named by line and the file's column name."""

    def __init__(self, line: int, row: dict[str, str], names: dict[str, str]) -> None:
        self.line, self.row, self.names = line, row, names
        self.problems: list[str] = []

    def get(self, key: str) -> str:
        return (self.row.get(self.names[key]) or "").strip() if key in self.names else ""

    def problem(self, key: str, text: str) -> None:
        column = self.names.get(key, COLUMNS[key][0])
        self.problems.append(f"line {self.line}, column {column}: {text}")


def _subscription(cells: _Line, currency: str) -> dict[str, Any] | None:
    """The row as the Stripe API's subscription object, the shape ``subscription_revenue`` reads."""
    raw = cells.get("amount")
    try:
        amount = Decimal(raw.replace(",", ""))
        if not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        cells.problem("amount", f"{raw!r} is not an amount (e.g. 49.00)")
        return None
    if amount < 0:
        cells.problem("amount", f"{raw} is negative: MRR cannot be below 0")
        return None
    interval = cells.get("interval").lower()
    if interval not in MONTHS_PER_INTERVAL:
        cells.problem("interval", f"{interval!r} is not a billing interval (day, week, month or year)")
        return None
    try:
        count = _whole(cells.get("interval_count") or "1", "interval count", minimum=1)
        quantity = _whole(cells.get("quantity") or "1", "quantity", minimum=0)
    except ValueError as exc:
        cells.problem("quantity" if "quantity" in str(exc) else "interval_count", str(exc))
        return None
    # Stripe's objects carry amounts in the smallest unit; unit_amount_decimal keeps fractions of it.
    minor = amount / minor_units_to_major(1, currency)
    plan = cells.get("product") or cells.get("plan")
    subscription: dict[str, Any] = {
        "id": cells.get("id"),
        "customer": cells.get("customer"),
        "currency": currency.lower(),
        "status": cells.get("status").lower(),
        "items": {
            "data": [
                {
                    "quantity": quantity,
                    "price": {
                        "id": cells.get("plan") or plan,
                        "nickname": plan,
                        "currency": currency.lower(),
                        "unit_amount_decimal": str(minor),
                        "recurring": {"interval": interval, "interval_count": count},
                    },
                }
            ]
        },
    }
    coupon = _coupon(cells, currency)
    if coupon is not None:
        subscription["discount"] = {"coupon": coupon}
    return subscription


def _coupon(cells: _Line, currency: str) -> dict[str, Any] | None:
    percent, off = cells.get("percent_off").rstrip("%"), cells.get("amount_off")
    if not percent and not off:
        return None
    coupon: dict[str, Any] = {"id": cells.get("coupon")}
    try:
        if percent:
            value = float(Decimal(percent))
            if not 0 <= value <= 100:
                raise InvalidOperation
            coupon["percent_off"] = value
    except InvalidOperation:
        cells.problem("percent_off", f"{percent!r} is not a percentage from 0 to 100")
    try:
        if off:
            major = Decimal(off)
            if not major.is_finite() or major < 0:
                raise InvalidOperation
            coupon["amount_off"] = str(major / minor_units_to_major(1, currency))
    except InvalidOperation:
        cells.problem("amount_off", f"{off!r} is not an amount of 0 or more")
    return coupon


def _header(reader: csv.DictReader) -> tuple[dict[str, str], list[str]]:
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    by_lower = {h.lower(): h for h in header}
    names = {key: by_lower[alias] for key, aliases in COLUMNS.items() for alias in aliases if alias in by_lower}
    names = {key: names[key] for key in COLUMNS if key in names}
    missing = [COLUMNS[key][0] for key in REQUIRED if key not in names]
    if "customer" not in names and "tenant_id" not in names:
        missing.append("customer id (or tenant_id (metadata))")
    if missing:
        raise CsvRefused([f"line 1: the header must name the columns {', '.join(missing)} (got {header})"])
    used = set(names.values())
    return names, [h for h in header if h not in used]


def _rows_check(lines: Iterable[str]) -> tuple[list[_Row], list[str], list[str]]:
    """Every row checked and mapped, nothing written: (rows, notes, ignored columns); raises on any problem."""
    reader = csv.DictReader(lines)
    names, ignored = _header(reader)
    try:
        raw = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise CsvRefused([f"line {reader.line_num}: not valid CSV ({exc})"]) from exc
    if not raw:
        raise CsvRefused(["the file has no rows after the header"])
    if len(raw) > ROWS_MAX:
        raise CsvRefused([f"the file has {len(raw)} rows; split it into files of {ROWS_MAX:,} or fewer"])
    tenant_ids = {(r.get(names["tenant_id"]) or "").strip() for _, r in raw} if "tenant_id" in names else set()
    known = {t.tenant_id: t for t in Tenant.objects.filter(tenant_id__in=tenant_ids - {""})}
    customers = {(r.get(names["customer"]) or "").strip() for _, r in raw} if "customer" in names else set()
    links = {
        link.stripe_customer_id: link.tenant
        for link in StripeCustomerLink.objects.filter(
            stripe_customer_id__in=customers - {""}, tenant__isnull=False
        ).select_related("tenant")
    }
    problems: list[str] = []
    notes: list[str] = []
    rows: list[_Row] = []
    seen: dict[str, int] = {}
    for line, row in raw:
        if None in row:
            problems.append(f"line {line}: more values than columns")
            continue
        cells = _Line(line, row, names)
        subscription_id = cells.get("id")
        if not subscription_id:
            cells.problem("id", "the subscription id is empty")
        elif subscription_id in seen:
            cells.problem("id", f"subscription {subscription_id} is also on line {seen[subscription_id]}")
        seen.setdefault(subscription_id, line)
        if not cells.get("status"):
            cells.problem("status", "the status is empty")
        try:
            currency = currency_clean(cells.get("currency"))
        except RevenueInputError as exc:
            cells.problem("currency", str(exc))
            currency = ""
        moments = _moments(cells)
        tenant = _tenant_of(cells, known, links)
        subscription = _subscription(cells, currency) if currency else None
        revenue = None
        if subscription is not None and not cells.problems:
            ended = "ended_at" in moments
            try:
                revenue = subscription_revenue(subscription, ended=ended)
                if revenue is not None:
                    mrr_clean(revenue.mrr)
            except (BillingInputError, RevenueInputError) as exc:
                cells.problem("amount", str(exc))
            if cells.get("coupon") and "discount" not in subscription:
                notes.append(
                    f"line {line}: coupon {cells.get('coupon')} not applied: the export does not say how much it "
                    "takes off (add a Percent Off or Amount Off column)"
                )
        problems.extend(cells.problems)
        if cells.problems or subscription is None or tenant is None or revenue is None:
            continue
        rows.append(
            _Row(
                line=line,
                subscription=subscription,
                tenant=tenant,
                customer_id=cells.get("customer"),
                described_at=max(moments.values()),
                revenue=revenue,
            )
        )
    if problems:
        raise CsvRefused(problems)
    return rows, notes, ignored


def _moments(cells: _Line) -> dict[str, datetime]:
    """The row's dates and times by column key; each one that does not parse is a problem of its cell."""
    moments = {}
    for key in MOMENTS:
        if cells.get(key):
            try:
                moments[key] = _moment_parse(cells.get(key))
            except ValueError:
                cells.problem(key, f"{cells.get(key)!r} is not a date and time (e.g. 2026-03-14 10:23)")
    if "created" not in moments and cells.get("created") == "":
        cells.problem("created", "the creation time is empty")
    return moments


def _tenant_of(cells: _Line, known: dict[str, Tenant], links: dict[str, Tenant | None]) -> Tenant | None:
    named = cells.get("tenant_id")
    if named:
        if named not in known:
            cells.problem("tenant_id", f"unknown tenant '{named}'")
        return known.get(named)
    customer = cells.get("customer")
    if customer and links.get(customer) is not None:
        return links[customer]
    email = f" ({cells.get('email')})" if cells.get("email") else ""
    cells.problem(
        "customer" if customer else "tenant_id",
        f"Stripe customer {customer or '(none)'}{email} is not mapped to a tenant: add its tenant_id "
        "(metadata) column or map the customer in admin (Stripe customers)",
    )
    return None


def subscriptions_import(lines: Iterable[str]) -> SubscriptionImportResult:
    """Validate every row of a Stripe subscriptions export, then record their MRR in one transaction."""
    rows, notes, ignored = _rows_check(lines)
    result = SubscriptionImportResult(notes=notes, ignored_columns=ignored)
    stored = {
        s.subscription_id: s.described_at
        for s in StripeSubscription.objects.filter(subscription_id__in=[r.subscription["id"][:255] for r in rows])
    }
    with transaction.atomic():
        # Oldest first, so a tenant's revenue history gains a day per change, as the webhook's would.
        for row in sorted(rows, key=lambda r: (r.described_at, r.line)):
            previous = stored.get(row.subscription["id"][:255])
            if previous is not None and previous >= row.described_at:
                result.already_recorded += 1
                continue
            obj = {**row.subscription, "metadata": {"tenant_id": row.tenant.tenant_id}}
            tenant = stripe_tenant_resolve(customer_id=row.customer_id, obj=obj) or row.tenant
            if subscription_revenue_record(
                revenue=row.revenue, tenant=tenant, customer_id=row.customer_id, described_at=row.described_at
            ):
                result.recorded += 1
                result.tenants.add(tenant.tenant_id)
    return result
