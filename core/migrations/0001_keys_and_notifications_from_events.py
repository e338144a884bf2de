"""API keys and notifications (sent ones and watched conditions) move from the events app to
core, the bottom app every app shares.

Nothing changes in the database: each model keeps its table (``events_apikey``,
``events_alertnotification``, ``events_conditionalertstate``) and every row, so this migration
only records the models under core (``SeparateDatabaseAndState``; events' 0018 forgets them).
Admin permissions and history follow by renaming the content types.
"""

import django.contrib.postgres.fields
import django.utils.timezone
from django.db import migrations, models

import core.models.keys


MOVED = ("apikey", "alertnotification", "conditionalertstate")


def content_type_move(apps, schema_editor, *, source: str, target: str) -> None:
    """Re-label the moved models' content types, so permissions granted on them and admin's log keep pointing at them.

    A fresh database has none yet (content types are created after migrating): nothing to do.
    """
    content_type = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MOVED:
        if not content_type.objects.using(db).filter(app_label=target, model=model).exists():
            content_type.objects.using(db).filter(app_label=source, model=model).update(app_label=target)


def forwards(apps, schema_editor) -> None:
    content_type_move(apps, schema_editor, source="events", target="core")


def backwards(apps, schema_editor) -> None:
    content_type_move(apps, schema_editor, source="core", target="events")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        # The tables are events' (created and last altered there): the state below describes them as they are.
        ("events", "0017_morning_digest"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ApiKey',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100)),
                        ('scope', models.CharField(choices=[('ingest', 'Ingest (send events)'), ('read', 'Read (metrics and customers)'), ('write', 'Read-write (read, plus record interventions)')], max_length=16)),
                        ('prefix', models.CharField(db_index=True, editable=False, help_text='First characters, to recognise a key.', max_length=16)),
                        ('key_hash', models.CharField(editable=False, max_length=64, unique=True)),
                        ('is_automation', models.BooleanField(default=False, help_text='Events sent with this key are test or automation traffic and never count as real users.')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                        ('revoked_at', models.DateTimeField(blank=True, help_text='Set to revoke the key; it stops working at once.', null=True)),
                        ('last_used_at', models.DateTimeField(blank=True, editable=False, null=True)),
                        ('rate_limit_per_minute', models.PositiveIntegerField(blank=True, help_text='Ingest requests this key may make per minute; empty uses INGEST_RATE_LIMIT_PER_MINUTE, 0 means no limit.', null=True)),
                        ('park_unregistered', models.BooleanField(default=False, help_text='On /api/v1/events, store events of unregistered types parked (kept, never counted, listed under unregistered types) instead of rejecting them. The SDK endpoints always park.')),
                        ('allowed_origins', django.contrib.postgres.fields.ArrayField(base_field=models.CharField(max_length=255, validators=[core.models.keys.origin_validate]), blank=True, default=list, help_text='Web pages (origins, e.g. https://www.example.com) whose browsers may send events with this ingest key, comma-separated; empty allows any origin (an ingest key shipped in a page is public anyway). Read and read-write keys never answer a cross-origin request.', size=None)),
                    ],
                    options={
                        'verbose_name': 'API key',
                        'db_table': 'events_apikey',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.CreateModel(
                    name='ConditionAlertState',
                    fields=[
                        ('key', models.CharField(max_length=64, primary_key=True, serialize=False)),
                        ('level', models.CharField(max_length=16)),
                        ('changed_at', models.DateTimeField()),
                        ('evaluated_at', models.DateTimeField()),
                        ('detail', models.CharField(blank=True, max_length=500)),
                    ],
                    options={
                        'db_table': 'events_conditionalertstate',
                    },
                ),
                migrations.CreateModel(
                    name='AlertNotification',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('kind', models.CharField(choices=[('transition', 'Status change'), ('reminder', 'Daily reminder while critical'), ('weekly_checkin', 'Weekly check-in'), ('condition', 'Condition (infrastructure, stale metrics)'), ('morning_digest', 'Morning digest')], max_length=16)),
                        ('channel', models.CharField(choices=[('slack', 'Slack incoming webhook'), ('email', 'Email')], max_length=8)),
                        ('dedupe_key', models.CharField(max_length=200, unique=True)),
                        ('status_from', models.CharField(blank=True, max_length=16)),
                        ('status_to', models.CharField(blank=True, max_length=16)),
                        ('subject', models.CharField(max_length=200)),
                        ('body', models.TextField()),
                        ('target', models.CharField(help_text='Webhook host or email addresses (never the secret path).', max_length=500)),
                        ('state', models.CharField(choices=[('pending', 'Pending'), ('retrying', 'Failed, will retry'), ('sent', 'Sent'), ('failed', 'Failed for good')], default='pending', max_length=8)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                        ('sent_at', models.DateTimeField(blank=True, null=True)),
                        ('last_error', models.TextField(blank=True)),
                        ('slack_blocks', models.JSONField(blank=True, help_text='Slack Block Kit blocks sent with the text (the text is the fallback and the email body).', null=True)),
                    ],
                    options={
                        'db_table': 'events_alertnotification',
                        'ordering': ['-created_at'],
                        'indexes': [models.Index(fields=['state', 'next_attempt_at'], name='alert_notification_due')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
