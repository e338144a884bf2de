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

    class Meta:
        ordering = ["tenant_id"]

    def __str__(self) -> str:
        return self.name or self.tenant_id
