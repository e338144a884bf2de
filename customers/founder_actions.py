"""Writes a founder action makes in the customers app: the churn fact, and the stamp that
makes the cached at-risk answers show the action at the next read.

The playbooks app records the actions and calls these (customers never imports playbooks).
Apart from customers/churn.py because the engine imports that module, and these need the
read cache's version (customers/selectors.py), which imports the engine's constants.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from customers.churn import churned_tenants_settle
from customers.models import AnswersVersion, Tenant, TenantMetrics
from customers.selectors import metrics_version_forget


def answers_changed() -> None:
    """Say that a founder action (an intervention, an outcome, a snooze, a churn) changed what
    the cached answers show: moves ``metrics_version``, here at once, elsewhere within
    METRICS_VERSION_CHECK_SECONDS."""
    now = timezone.now()
    # Strictly later than the last stamp, so every action moves the version even when two come
    # within the clock's resolution, or the clock stepped back (an NTP correction, a frozen clock).
    moved = AnswersVersion.objects.filter(id=1).update(
        changed_at=Greatest(Value(now), F("changed_at") + timedelta(microseconds=1))
    )
    if not moved:
        AnswersVersion.objects.get_or_create(id=1, defaults={"changed_at": now})
    metrics_version_forget()


def tenant_churned_set(*, tenant_id: str, churned_on: date | None) -> None:
    """Record the tenant's latest churn day (None: no churn any more) and settle its row now,
    so the customer leaves every at-risk list at once rather than at the next recompute."""
    with transaction.atomic():
        Tenant.objects.filter(tenant_id=tenant_id).update(churned_at=churned_on)
        if churned_on is None:
            # A settled row holds no assessment: the next run recomputes the tenant.
            TenantMetrics.objects.filter(tenant_id=tenant_id).update(stale=True)
        churned_tenants_settle()
        answers_changed()
