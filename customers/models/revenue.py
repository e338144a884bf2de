"""Revenue per account: the MRR in force and its history by day."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from customers.models.tenant import Tenant

# --- Revenue ------------------------------------------------------------------------------------
# What each customer pays per month (customers/revenue.py). Billing (the Stripe webhook and the
# subscriptions export), the product's account traits and the founder each give a figure; the one
# in force is the founder's if set, else billing's once billing is connected, else the traits'.


class RevenueSource(models.TextChoices):
    STRIPE = "stripe", "Stripe"
    TRAITS = "traits", "Account traits (mrr)"
    FOUNDER = "founder", "Set by the founder"


class TenantRevenue(models.Model):
    """A customer's monthly recurring revenue now, per source, and the figure in force.

    Amounts are in the currency's major unit (dollars, not cents), normalised to a month.
    ``mrr`` null: nothing is known. Edit ``founder_mrr`` in admin to override the others.
    """

    tenant = models.OneToOneField(
        Tenant, primary_key=True, on_delete=models.CASCADE, db_column="tenant_id", related_name="revenue"
    )
    mrr = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True, editable=False)
    currency = models.CharField(max_length=3, blank=True, editable=False)
    source = models.CharField(max_length=16, choices=RevenueSource.choices, blank=True, editable=False)
    billing_connected = models.BooleanField(
        default=False, help_text="Billing (Stripe) has reported this customer: its figure wins over the traits'."
    )
    stripe_mrr = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True, editable=False)
    stripe_currency = models.CharField(max_length=3, blank=True, editable=False)
    traits_mrr = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True, editable=False)
    traits_currency = models.CharField(max_length=3, blank=True, editable=False)
    plan = models.CharField(max_length=200, blank=True, help_text="The plan, from billing or the traits.")
    traits_seen_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="The account traits' updated_at last read."
    )
    founder_mrr = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Your own figure (per month, e.g. 490.00); it wins over billing and traits. Empty: not set.",
    )
    founder_currency = models.CharField(max_length=3, blank=True, help_text="ISO 4217 code, e.g. USD.")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "ops_tenant_revenue"
        verbose_name = "revenue (MRR)"
        verbose_name_plural = "revenue (MRR)"
        constraints = [
            models.CheckConstraint(condition=models.Q(mrr__gte=0), name="ops_tenant_revenue_mrr_not_negative"),
            models.CheckConstraint(
                condition=models.Q(founder_mrr__gte=0), name="ops_tenant_revenue_founder_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.mrr} {self.currency}"


class TenantRevenueDay(models.Model):
    """The MRR in force from ``day`` on (until the tenant's next row): one row per tenant and day it changed.

    The history the churned, expansion and contraction figures are read from.
    """

    pk = models.CompositePrimaryKey("tenant_id", "day")
    tenant_id = models.CharField(max_length=128)
    day = models.DateField()
    mrr = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    source = models.CharField(max_length=16, choices=RevenueSource.choices)

    class Meta:
        db_table = "ops_tenant_revenue_day"
        constraints = [
            models.CheckConstraint(condition=models.Q(mrr__gte=0), name="ops_tenant_revenue_day_not_negative")
        ]
        indexes = [
            # Used by the month's churned / expansion / contraction figures (revenue_figures): one month's rows.
            models.Index(fields=["day"], name="ops_tenant_revenue_day_day")
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day}: {self.mrr} {self.currency}"
