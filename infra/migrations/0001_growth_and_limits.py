"""The infra app as the first release left it: the hourly API request counts, the snapshots, the one
limits row admin edits, and a BRIN index on ops_events.received_at.

This replaces the first release's two migrations: a database that applied them records this one as
applied and goes on from the next; a fresh database applies this one.

The snapshot counts "events received in the last 24 hours" every hour; without an index on
received_at that is a full scan of the largest table. received_at defaults to the insert time, so
rows sit on disk in received_at order and a BRIN index (a min/max per 128 pages, almost free to
maintain on insert) narrows the scan to the last day's pages. A BRIN range is only useful once
summarised: ``autosummarize = on`` has autovacuum summarise each range as it fills, and the snapshot
also calls ``brin_summarize_new_values``. It is built CONCURRENTLY (hence ``atomic = False``) so
deploying it never blocks ingestion; an interrupted build leaves an INVALID index that IF NOT EXISTS
would keep, and the reverse drops it, so migrating back and forward repairs it. The index lives
outside the Event model on purpose (like ingest_xid): only this app's count reads it.
"""

import django.core.validators
import django.utils.timezone
from django.db import migrations, models


def create_limits_row(apps, schema_editor):
    apps.get_model("infra", "InfraLimitSettings").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    atomic = False

    replaces = [('infra', '0001_initial'), ('infra', '0002_events_received_at_brin_and_limits_row')]

    initial = True

    dependencies = [
        ('events', '0001_registry_north_star_and_alerts'),
    ]

    operations = [
        migrations.CreateModel(
            name='ApiRequestCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('hour', models.DateTimeField(help_text='Start of the hour (UTC).', unique=True)),
                ('count', models.BigIntegerField(default=0)),
            ],
            options={
                'verbose_name': 'API request count (hourly)',
                'db_table': 'infra_api_request_count',
                'ordering': ['-hour'],
            },
        ),
        migrations.CreateModel(
            name='InfraLimitSettings',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('db_storage_limit_gb', models.FloatField(blank=True, help_text='Database storage limit in GB (1024³ bytes). Empty: INFRA_DB_STORAGE_LIMIT_GB.', null=True, validators=[django.core.validators.MinValueValidator(0.001)])),
                ('redis_memory_limit_mb', models.FloatField(blank=True, help_text='Redis memory limit in MB (1024² bytes). Empty: INFRA_REDIS_MEMORY_LIMIT_MB, then Redis maxmemory.', null=True, validators=[django.core.validators.MinValueValidator(0.001)])),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'verbose_name': 'infrastructure limits',
                'verbose_name_plural': 'infrastructure limits',
            },
        ),
        migrations.CreateModel(
            name='InfraSnapshot',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('taken_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('db_size_bytes', models.BigIntegerField(help_text='pg_database_size(current_database()).')),
                ('events_table_bytes', models.BigIntegerField(help_text="pg_total_relation_size('ops_events'): heap, indexes and TOAST.")),
                ('events_row_estimate', models.BigIntegerField(blank=True, help_text="Rows in ops_events as estimated by PostgreSQL's statistics (for bytes per event).", null=True)),
                ('redis_used_memory_bytes', models.BigIntegerField(blank=True, help_text='Redis INFO used_memory.', null=True)),
                ('redis_maxmemory_bytes', models.BigIntegerField(blank=True, help_text='Redis INFO maxmemory; null when Redis has no limit or was not read.', null=True)),
                ('redis_reason', models.CharField(blank=True, help_text='Why the Redis fields are empty (not configured, unreachable).', max_length=255)),
                ('events_received_24h', models.BigIntegerField(help_text='Events stored in the 24 hours before taken_at.')),
                ('api_requests_24h', models.BigIntegerField(help_text="API requests counted by the request counter in the 24 whole hours before taken_at's hour.")),
            ],
            options={
                'verbose_name': 'infrastructure snapshot',
                'ordering': ['-taken_at'],
            },
        ),
        migrations.RunSQL(
            sql='CREATE INDEX CONCURRENTLY IF NOT EXISTS ops_events_received_brin ON ops_events USING brin (received_at) WITH (autosummarize = on)',
            reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS ops_events_received_brin',
        ),
        migrations.RunPython(
            code=create_limits_row,
            reverse_code=migrations.RunPython.noop,
        ),
    ]
