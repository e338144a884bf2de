"""Writes a founder action makes in the customers app: the churn fact, and the stamp that
makes the cached at-risk answers show the action at the next read.

The playbooks app records the actions and calls these (customers never imports playbooks).
Apart from customers/churn.py because the engine imports that module, and these need the
read cache's version (customers/selectors.py), which imports the engine's constants.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date, timedelta

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from customers.churn import churned_tenants_settle
from customers.models import AnswersVersion, Tenant, TenantMetrics
from customers.read_cache import metrics_version_forget


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


def tenants_churned_set(*, churned_on: Mapping[str, date | None]) -> None:
    """Record each tenant's latest churn day (None: no churn any more) and settle the rows now,
    so a churned customer leaves every at-risk list at once rather than at the next recompute.

    The one writer of ``Tenant.churned_at``; only the playbooks app's churn service
    (playbooks/churns.py) calls it, with the tenants' rows locked. A tenant whose churn day
    went away or moved earlier may be at risk again (or have come back): its settled row
    holds no assessment, so it is marked stale and the next recompute reassesses it.
    """
    if not churned_on:
        return
    with transaction.atomic():
        before = dict(Tenant.objects.filter(tenant_id__in=churned_on).values_list("tenant_id", "churned_at"))
        moved: dict[date | None, list[str]] = defaultdict(list)
        for tenant_id, day in churned_on.items():
            if tenant_id in before and before[tenant_id] != day:
                moved[day].append(tenant_id)
        # One statement per distinct day (few), not one per tenant.
        for day, tenant_ids in moved.items():
            Tenant.objects.filter(tenant_id__in=tenant_ids).update(churned_at=day)
        reassess = [
            tenant_id
            for day, tenant_ids in moved.items()
            for tenant_id in tenant_ids
            if day is None or (before[tenant_id] is not None and day < before[tenant_id])
        ]
        if reassess:
            TenantMetrics.objects.filter(tenant_id__in=reassess).update(stale=True)
        churned_tenants_settle()
        answers_changed()
