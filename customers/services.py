"""Writes of the customers app outside the metrics engine (which is customers/metrics/)."""

from __future__ import annotations

from django.db import transaction

from customers.models import Tenant
from events.rules import classification_rules_changed


def tenant_save(*, tenant: Tenant, kind_changed: bool) -> Tenant:
    """Save a tenant edited by the founder. Flagging it internal, test or demo (or
    back to customer) changes which of its events are real: history is reclassified
    when the save commits, instead of at the next periodic classification pass."""
    with transaction.atomic():
        tenant.save()
        if kind_changed:
            classification_rules_changed()
    return tenant
