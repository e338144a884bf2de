"""Customer accounts (tenants) as the product names them."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class TenantKind(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    INTERNAL = "internal", "Internal (our own account)"
    TEST = "test", "Test"
    DEMO = "demo", "Demo"


class Tenant(models.Model):
    """A customer account. Created on first sight by ingestion; the founder
    names it and flags internal, test and demo accounts in admin."""

    tenant_id = models.CharField(primary_key=True, max_length=128)
    name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(
        max_length=16,
        choices=TenantKind.choices,
        default=TenantKind.CUSTOMER,
        help_text="Internal, test and demo accounts never count as real users.",
    )
    first_seen_at = models.DateTimeField(default=timezone.now)
    notes = models.TextField(blank=True)
    monthly_event_limit = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="Events per 30 days the tenant's plan includes. Usage at 90% or more suggests a pricing talk.",
    )
    churned_at = models.DateField(
        null=True,
        blank=True,
        help_text="Day of the latest recorded churn (set by recording a churn). A churned customer is on no at-risk "
        "list until real activity resumes after this day (it then 'came back').",
    )

    class Meta:
        ordering = ["tenant_id"]
        indexes = [
            # Used by the churn settle statement (customers/churn.py), run by every recompute:
            # only the few churned tenants are read, never every tenant.
            models.Index(fields=["churned_at"], name="ops_tenant_churned", condition=models.Q(churned_at__isnull=False))
        ]

    def __str__(self) -> str:
        return self.name or self.tenant_id
