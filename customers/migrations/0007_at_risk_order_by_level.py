# The at-risk order puts the risk level first (critical, high, medium), then the signal strength:
# a playbook can raise a tenant above its strength's band. Both indexes are customers.models.at_risk_order(),
# so the at-risk query and the customer list's new default order (-risk_level) are still read from an
# index with their LIMIT, without a sort.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('customers', '0001_metrics_engine'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='tenantmetrics',
            name='ops_tm_at_risk',
        ),
        migrations.AddIndex(
            model_name='tenantmetrics',
            index=models.Index(models.OrderBy(models.Case(models.When(risk_level='critical', then=models.Value(3)), models.When(risk_level='high', then=models.Value(2)), models.When(risk_level='medium', then=models.Value(1)), output_field=models.IntegerField()), descending=True, nulls_last=True), models.OrderBy(models.F('risk_signal_strength'), descending=True, nulls_last=True), models.OrderBy(models.F('tenant_id')), condition=models.Q(('risk_level__isnull', False)), name='ops_tm_at_risk'),
        ),
        migrations.AddIndex(
            model_name='tenantmetrics',
            index=models.Index(models.OrderBy(models.Case(models.When(risk_level='critical', then=models.Value(3)), models.When(risk_level='high', then=models.Value(2)), models.When(risk_level='medium', then=models.Value(1)), output_field=models.IntegerField()), descending=True, nulls_last=True), models.OrderBy(models.F('risk_signal_strength'), descending=True, nulls_last=True), models.OrderBy(models.F('tenant_id')), name='ops_tm_list_risk'),
        ),
    ]
