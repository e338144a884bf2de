"""The customers app as the first release left it: tenants, the rollups (per tenant and day, per user
and day, per session's friction, the spans), the metrics engine's state and the cached per-tenant
metrics, with the at-risk list's index.

This replaces the first release's six migrations: a database that applied them records this one as
applied and goes on from the next; a fresh database applies this one.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    replaces = [('customers', '0001_initial'), ('customers', '0002_metrics_engine'), ('customers', '0003_incremental_metrics_scope'), ('customers', '0004_customer_list_index'), ('customers', '0005_tenants_rebuilt_stamp'), ('customers', '0006_unraised_metrics')]

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.CreateModel(
            name='SessionFrictionDayCount',
            fields=[
                ('pk', models.CompositePrimaryKey('tenant_id', 'day', 'session_key', 'event_type', blank=True, editable=False, primary_key=True, serialize=False)),
                ('tenant_id', models.CharField(max_length=128)),
                ('day', models.DateField()),
                ('session_key', models.CharField(max_length=300)),
                ('event_type', models.CharField(max_length=64)),
                ('value', models.BigIntegerField()),
            ],
            options={
                'db_table': 'ops_rollup_session_friction',
            },
        ),
        migrations.CreateModel(
            name='TenantDayCount',
            fields=[
                ('pk', models.CompositePrimaryKey('tenant_id', 'event_type', 'day', blank=True, editable=False, primary_key=True, serialize=False)),
                ('tenant_id', models.CharField(max_length=128)),
                ('event_type', models.CharField(max_length=64)),
                ('day', models.DateField()),
                ('value', models.BigIntegerField()),
            ],
            options={
                'db_table': 'ops_rollup_tenant_day',
            },
        ),
        migrations.CreateModel(
            name='TenantEventSpan',
            fields=[
                ('pk', models.CompositePrimaryKey('tenant_id', 'event_type', blank=True, editable=False, primary_key=True, serialize=False)),
                ('tenant_id', models.CharField(max_length=128)),
                ('event_type', models.CharField(max_length=64)),
                ('first_at', models.DateTimeField()),
                ('last_at', models.DateTimeField()),
            ],
            options={
                'db_table': 'ops_rollup_tenant_span',
            },
        ),
        migrations.CreateModel(
            name='TenantUserDayCount',
            fields=[
                ('pk', models.CompositePrimaryKey('tenant_id', 'user_id', 'day', blank=True, editable=False, primary_key=True, serialize=False)),
                ('tenant_id', models.CharField(max_length=128)),
                ('user_id', models.CharField(max_length=255)),
                ('day', models.DateField()),
                ('value', models.BigIntegerField()),
            ],
            options={
                'db_table': 'ops_rollup_tenant_user_day',
            },
        ),
        migrations.CreateModel(
            name='Tenant',
            fields=[
                ('tenant_id', models.CharField(max_length=128, primary_key=True, serialize=False)),
                ('name', models.CharField(blank=True, max_length=200)),
                ('kind', models.CharField(choices=[('customer', 'Customer'), ('internal', 'Internal (our own account)'), ('test', 'Test'), ('demo', 'Demo')], default='customer', help_text='Internal, test and demo accounts never count as real users.', max_length=16)),
                ('first_seen_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('notes', models.TextField(blank=True)),
                ('monthly_event_limit', models.PositiveBigIntegerField(blank=True, help_text="Events per 30 days the tenant's plan includes. Usage at 90% or more suggests a pricing talk.", null=True)),
            ],
            options={
                'ordering': ['tenant_id'],
            },
        ),
        migrations.CreateModel(
            name='MetricsState',
            fields=[
                ('id', models.PositiveSmallIntegerField(default=1, editable=False, primary_key=True, serialize=False)),
                ('watermark_xid', models.BigIntegerField(default=0, help_text='xid8 below which every event is folded.')),
                ('folded_xids', models.JSONField(default=list, help_text='xid8 values at or above the watermark whose events are already folded.')),
                ('friction_types', models.JSONField(default=list, help_text='Event types with a friction weight when the session rollup was last built.')),
                ('rollups_start_day', models.DateField(blank=True, help_text='First UTC day the day-level rollups keep (older days are pruned).', null=True)),
                ('last_incremental_at', models.DateTimeField(blank=True, null=True)),
                ('last_full_at', models.DateTimeField(blank=True, null=True)),
                ('last_events_folded', models.BigIntegerField(default=0)),
                ('last_fanout_finished_at', models.DateTimeField(blank=True, help_text='The fanned-out run whose hooks have run (compare-and-set).', null=True)),
                ('registry_key', models.CharField(blank=True, help_text='Fingerprint of the event type registry the metrics were last computed with; when it changes, the next run recomputes every tenant.', max_length=32)),
            ],
            options={
                'verbose_name': 'metrics engine state',
                'verbose_name_plural': 'metrics engine state',
                'db_table': 'ops_metrics_state',
            },
        ),
        migrations.CreateModel(
            name='TenantMetrics',
            fields=[
                ('tenant', models.OneToOneField(db_column='tenant_id', on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='metrics', serialize=False, to='customers.tenant')),
                ('computed_at', models.DateTimeField()),
                ('as_of', models.DateField(help_text='Last UTC day of every window (7 days = as_of-6 .. as_of).')),
                ('events_7d', models.BigIntegerField(default=0)),
                ('events_prev_7d', models.BigIntegerField(default=0, help_text='Real events in the 7 days before the last 7.')),
                ('events_30d', models.BigIntegerField(default=0)),
                ('stickiness_7d', models.FloatField(default=0.0)),
                ('stickiness_30d', models.FloatField(default=0.0, help_text='30-day engagement / 4.3 (a weekly rate).')),
                ('stickiness_delta', models.FloatField(blank=True, help_text='7d / 30d; null without a baseline.', null=True)),
                ('has_baseline', models.BooleanField(default=False, help_text='False when stickiness_30d is 0.')),
                ('friction_weighted_score', models.FloatField(default=0.0)),
                ('friction_events_7d', models.BigIntegerField(default=0)),
                ('top_friction_type', models.CharField(blank=True, max_length=64)),
                ('last_seen_at', models.DateTimeField(blank=True, null=True)),
                ('last_investigation', models.CharField(blank=True, help_text='Event type of the last investigation.', max_length=64)),
                ('last_investigation_at', models.DateTimeField(blank=True, null=True)),
                ('days_since_investigation', models.IntegerField(blank=True, null=True)),
                ('champion_user_id', models.CharField(blank=True, max_length=255)),
                ('champion_risk', models.BooleanField(default=False)),
                ('cliff', models.BooleanField(default=False)),
                ('plan_usage_pct', models.FloatField(blank=True, help_text='events_30d / monthly_event_limit * 100.', null=True)),
                ('recent_changes', models.JSONField(default=list)),
                ('decay_correlation', models.CharField(blank=True, max_length=200, null=True)),
                ('risk_signal_strength', models.FloatField(db_index=True, default=0.0)),
                ('risk_level', models.CharField(blank=True, choices=[('critical', 'Critical'), ('high', 'High'), ('medium', 'Medium')], max_length=16, null=True)),
                ('primary_risk_reason', models.CharField(blank=True, max_length=300)),
                ('secondary_signals', models.JSONField(default=list)),
                ('risk_components', models.JSONField(default=list)),
                ('interventions', models.JSONField(default=list)),
                ('inputs_kind', models.CharField(blank=True, max_length=16)),
                ('inputs_monthly_event_limit', models.PositiveBigIntegerField(blank=True, null=True)),
                ('stale', models.BooleanField(default=False, help_text="Waiting for a shard of a fanned-out recompute (the values are the previous run's).")),
            ],
            options={
                'verbose_name': 'tenant metrics (cache)',
                'verbose_name_plural': 'tenant metrics (cache)',
                'db_table': 'ops_tenant_metrics',
                'indexes': [models.Index(condition=models.Q(('risk_level__isnull', False)), fields=['-risk_signal_strength'], name='ops_tm_at_risk'), models.Index(models.OrderBy(models.F('risk_signal_strength'), descending=True, nulls_last=True), models.F('tenant_id'), name='ops_tm_list_default')],
            },
        ),
        # Room on each page for the computed_at stamp every run gives unchanged rows: a HOT
        # update (no index writes, no bloat of the page indexes) instead of a new tuple elsewhere.
        migrations.RunSQL(
            sql='ALTER TABLE ops_tenant_metrics SET (fillfactor = 70)',
            reverse_sql='ALTER TABLE ops_tenant_metrics RESET (fillfactor)',
        ),
        migrations.AddField(
            model_name='metricsstate',
            name='last_tenants_rebuilt_at',
            field=models.DateTimeField(blank=True, help_text='The last rebuild of some tenants (after a reclassification or a tenant edit); moves the version the cached API answers are keyed by.', null=True),
        ),
        migrations.AddField(
            model_name='tenantmetrics',
            name='unraised',
            field=models.JSONField(blank=True, help_text="The engine's own risk_level, primary_risk_reason, secondary_signals and interventions before a matched playbook raised this row; null when no playbook raised it. Lets the playbooks hook undo a raise that no longer holds without recomputing the tenant.", null=True),
        ),
    ]
