"""Churns that came from Stripe or ``import_churns`` were stored without the customer's churn
state (``Tenant.churned_at``), so those customers stayed on the at-risk lists. Every churn now
goes through one service that sets it; this sets it for the churns recorded before, to each
customer's latest churn day. The next recompute settles them off the lists."""

from collections import defaultdict

from django.db import migrations
from django.db.models import Max


def churn_state_from_records(apps, schema_editor):
    ChurnRecord = apps.get_model("playbooks", "ChurnRecord")
    Tenant = apps.get_model("customers", "Tenant")
    latest = dict(ChurnRecord.objects.values("tenant_id").annotate(last=Max("date")).values_list("tenant_id", "last"))
    current = dict(Tenant.objects.filter(tenant_id__in=latest).values_list("tenant_id", "churned_at"))
    by_day = defaultdict(list)
    for tenant_id, day in latest.items():
        if current.get(tenant_id, day) != day:
            by_day[day].append(tenant_id)
    for day, tenant_ids in by_day.items():
        Tenant.objects.filter(tenant_id__in=tenant_ids).update(churned_at=day)


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0011_role_wording_for_examples"),
        ("playbooks", "0008_seeded_prose_in_roles"),
    ]

    operations = [migrations.RunPython(churn_state_from_records, migrations.RunPython.noop)]
