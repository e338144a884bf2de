"""Whom to call at each account: its champion and, where the traits say so, its admin and buyer."""

from __future__ import annotations

from django.db import models


class ContactRole(models.TextChoices):
    CHAMPION = "champion", "Champion (most active user over 30 days)"
    ADMIN = "admin", "Admin"
    BUYER = "buyer", "Buyer"


class TenantContact(models.Model):
    """One person to call at an account, per role (a cache the recompute rewrites, customers/metrics/contacts.py).

    ``name`` and ``email`` are the identify traits (``ops_user_profiles``); empty: the product never
    said. ``last_seen_on`` is the UTC day of the person's newest real event in the account (the
    user-day rollup); ``events_30d`` their real events in the 30 days up to ``as_of``. The same
    person may hold several roles (a row each).
    """

    pk = models.CompositePrimaryKey("tenant_id", "role")
    tenant_id = models.CharField(max_length=128)
    role = models.CharField(max_length=16, choices=ContactRole.choices)
    user_id = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=320, blank=True)
    title = models.CharField(max_length=255, blank=True, help_text="The person's role or title trait, as sent.")
    last_seen_on = models.DateField(null=True, blank=True)
    events_30d = models.BigIntegerField(default=0)
    as_of = models.DateField()
    computed_at = models.DateTimeField()

    class Meta:
        db_table = "ops_tenant_contacts"
        verbose_name = "contact to call"
        verbose_name_plural = "contacts to call"

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.role}: {self.name or self.email or self.user_id}"
