"""The events app as the first release left it: the event table and its API keys, the event type
registry seeded with the first vocabulary, the ingest rate limit, the north star's tables and rules,
and the alert notifications.

This replaces the first release's seven migrations: a database that applied them records this one
as applied and goes on from the next; a fresh database applies this one. The seeded rows are frozen
as they were first written (later migrations rewrite them, and read ``EVENT_TYPES`` from here); the
defaults a fresh install ends with are ``events/defaults.py``.

``ingest_xid`` is the id of the transaction that inserted the row (``pg_current_xact_id()``). The
recompute only folds in rows whose xid is below the oldest transaction still running
(``pg_snapshot_xmin``), so a batch that commits late is picked up by a later run instead of slipping
under a high-water mark. It is kept out of the Django model on purpose: nothing but the rollup SQL
reads it.
"""

import datetime
import uuid

import django.contrib.postgres.indexes
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

# name, category, friction_signal, friction_weight, engagement_weight, counts_as_real_interaction, description
EVENT_TYPES = [
    # Friction taxonomy.
    ("INCIDENT_VIEWED_NO_ACTION", "friction", "hesitation", 1.0, 0.0, False, "Viewed an incident but took no action"),
    ("REPLAY_STARTED", "intent", "intent", 0.0, 0.0, False, "Started a replay"),
    ("REPLAY_ABORTED", "friction", "friction", 3.0, 0.0, False, "Cancelled a replay mid-flow"),
    ("REPLAY_FAILED", "friction", "system_issue", 2.0, 0.0, False, "Replay failed with an error"),
    ("EXPORT_STARTED", "intent", "intent", 0.0, 0.0, False, "Started an export"),
    ("EXPORT_ABORTED", "friction", "friction", 2.5, 0.0, False, "Cancelled an export"),
    ("EXPORT_FAILED", "friction", "system_issue", 2.0, 0.0, False, "Export failed"),
    ("POLICY_BLOCK_REPEAT", "friction", "friction", 2.0, 0.0, False, "The same policy blocked repeatedly"),
    ("SESSION_STARTED", "engagement", "engagement", 0.0, 0.0, False, "Started a session"),
    ("SESSION_ENDED", "engagement", "engagement", 0.0, 0.0, False, "Ended a session normally"),
    ("SESSION_IDLE_TIMEOUT", "friction", "friction", 1.5, 0.0, False, "Went idle and the session timed out"),
    # Value events (engagement weights from the stickiness formula).
    ("INCIDENT_VIEWED", "value", "", 0.0, 0.2, False, "Investigated an incident (a view)"),
    ("REPLAY_COMPLETED", "value", "", 0.0, 0.3, False, "Completed a replay"),
    ("EXPORT_COMPLETED", "value", "", 0.0, 0.5, True, "Completed an export"),
    ("CERT_GENERATED", "value", "", 0.0, 0.0, False, "Generated a certificate"),
    ("CERT_DOWNLOADED", "value", "", 0.0, 0.0, False, "Downloaded a certificate"),
    ("API_CALL", "value", "", 0.0, 0.0, False, "Called the product's API"),
    # User lifecycle.
    ("SIGNUP", "lifecycle", "", 0.0, 0.0, True, "Signed up with an email"),
    ("LOGIN", "lifecycle", "", 0.0, 0.0, True, "Logged in (session created)"),
    ("PAGE_VIEW", "lifecycle", "", 0.0, 0.0, False, "Viewed a page"),
    ("CORE_ACTION", "lifecycle", "", 0.0, 0.0, True, "Used the product's core action (a coach call, an agent run)"),
    ("DECISION", "lifecycle", "", 0.0, 0.0, True, "Viewed output and made a decision"),
    ("FEEDBACK", "lifecycle", "", 0.0, 0.0, True, "Shared feedback"),
    # Change events ("what changed?").
    ("POLICY_CHANGED", "change", "", 0.0, 0.0, False, "A policy was changed"),
    ("MODEL_SWITCHED", "change", "", 0.0, 0.0, False, "The model was switched"),
    ("RATE_LIMIT_CHANGED", "change", "", 0.0, 0.0, False, "A rate limit was changed"),
    ("PLAN_CHANGED", "change", "", 0.0, 0.0, False, "The plan was changed"),
]


def event_types_seed(apps, schema_editor):
    EventType = apps.get_model("events", "EventType")
    for name, category, signal, fweight, eweight, real, description in EVENT_TYPES:
        EventType.objects.update_or_create(
            name=name,
            defaults={
                "category": category,
                "friction_signal": signal,
                "friction_weight": fweight,
                "engagement_weight": eweight,
                "counts_as_real_interaction": real,
                "description": description,
            },
        )


def event_types_unseed(apps, schema_editor):
    apps.get_model("events", "EventType").objects.filter(name__in=[t[0] for t in EVENT_TYPES]).delete()


# pattern, reason, description. Case-insensitive; the subset both Python's re and
# PostgreSQL's ~* understand (no \b, no named groups).
USER_AGENT_PATTERNS = [
    ("curl/", "automation_client", "curl from a terminal"),
    ("wget", "automation_client", "GNU Wget"),
    ("python-requests", "automation_client", "Python requests"),
    ("httpie", "automation_client", "HTTPie"),
    ("go-http-client", "automation_client", "Go net/http"),
    ("python-urllib|aiohttp|python-httpx|okhttp|node-fetch|postmanruntime", "automation_client", "Other HTTP libraries"),
    ("headlesschrome|phantomjs|puppeteer|playwright|selenium|slimerjs", "bot", "Headless browsers"),
    (
        "googlebot|bingbot|yandexbot|duckduckbot|baiduspider|applebot|slurp|facebookexternalhit|ahrefsbot|semrushbot",
        "bot",
        "Search and SEO crawlers",
    ),
    ("crawler|spider|[a-z]bot[/;) ]", "bot", "Anything that calls itself a bot, crawler or spider"),
]

# name, target date, users, max days.
MILESTONES = [
    ("No users yet", datetime.date(2026, 2, 1), 0, None),
    ("First user signs up", datetime.date(2026, 2, 8), 1, None),
    ("5 active users", datetime.date(2026, 2, 15), 5, 1.0),
    ("10 paying users", datetime.date(2026, 3, 1), 10, 0.5),
    ("50 active users", datetime.date(2026, 3, 31), 50, 0.5),
]


def north_star_seed(apps, schema_editor):
    UserAgentPattern = apps.get_model("events", "UserAgentPattern")
    for pattern, reason, description in USER_AGENT_PATTERNS:
        UserAgentPattern.objects.get_or_create(pattern=pattern, defaults={"reason": reason, "description": description})
    Milestone = apps.get_model("events", "Milestone")
    if not Milestone.objects.exists():
        for order, (name, target_date, users, max_days) in enumerate(MILESTONES):
            Milestone.objects.create(name=name, target_date=target_date, users=users, max_days=max_days, order=order)
    apps.get_model("events", "NorthStarSettings").objects.get_or_create(pk=1)
    apps.get_model("events", "ClassificationState").objects.get_or_create(pk=1)
    apps.get_model("events", "AlertState").objects.get_or_create(pk=1)
    schema_editor.execute(
        """
        INSERT INTO ops_real_users (user_id, first_interaction_at, last_interaction_at)
        SELECT e.user_id, min(e.occurred_at), max(e.occurred_at)
        FROM ops_events e JOIN events_eventtype t ON t.name = e.event_type AND t.counts_as_real_interaction
        WHERE e.is_real AND e.user_id <> ''
        GROUP BY e.user_id
        ON CONFLICT (user_id) DO NOTHING
        """
    )


def north_star_unseed(apps, schema_editor):
    apps.get_model("events", "UserAgentPattern").objects.filter(pattern__in=[p[0] for p in USER_AGENT_PATTERNS]).delete()


class Migration(migrations.Migration):

    replaces = [('events', '0001_initial'), ('events', '0002_seed_event_types_and_ingest_xid'), ('events', '0003_no_index_on_event_source'), ('events', '0004_ingest_rate_limit'), ('events', '0005_north_star'), ('events', '0006_seed_north_star'), ('events', '0007_condition_alerts')]

    initial = True

    dependencies = [
        ('customers', '0001_metrics_engine'),
    ]

    operations = [
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
            ],
            options={
                'verbose_name': 'API key',
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='EventType',
            fields=[
                ('name', models.CharField(help_text='Upper-case name the product sends, e.g. REPLAY_ABORTED.', max_length=64, primary_key=True, serialize=False)),
                ('category', models.CharField(choices=[('friction', 'Friction'), ('intent', 'Intent'), ('value', 'Value'), ('engagement', 'Engagement'), ('lifecycle', 'User lifecycle'), ('change', 'Change'), ('custom', 'Custom')], default='custom', max_length=16)),
                ('description', models.CharField(blank=True, max_length=255)),
                ('friction_signal', models.CharField(blank=True, help_text='Signal this type carries (friction, hesitation, system_issue, intent, engagement); copied onto each event at ingestion.', max_length=32)),
                ('friction_weight', models.FloatField(default=0.0, help_text='Weight in the friction score; 0 means the type is not friction.')),
                ('engagement_weight', models.FloatField(default=0.0, help_text='Weight in the stickiness score; 0 means the type does not count.')),
                ('counts_as_real_interaction', models.BooleanField(default=False, help_text="Whether this type moves 'days since last real user interaction'.")),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
            ],
            options={
                'ordering': ['category', 'name'],
            },
        ),
        migrations.CreateModel(
            name='Event',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event_id', models.UUIDField(default=uuid.uuid4, help_text='Client-supplied for idempotency.', unique=True)),
                ('tenant_id', models.CharField(blank=True, help_text='Customer account; empty for a user-level event such as a signup.', max_length=128)),
                ('user_id', models.CharField(blank=True, max_length=255)),
                ('session_id', models.CharField(blank=True, max_length=255)),
                ('event_type', models.CharField(max_length=64)),
                ('occurred_at', models.DateTimeField()),
                ('received_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('metadata', models.JSONField(blank=True, default=dict)),
                ('friction_signal', models.CharField(blank=True, max_length=32)),
                ('is_real', models.BooleanField(default=True)),
                ('exclusion_reason', models.CharField(blank=True, choices=[('internal_user', 'Internal user (founder or team)'), ('internal_tenant', 'Internal tenant'), ('test_traffic', 'Test traffic'), ('automation_client', 'Automation client (curl, scripts, automation key)'), ('bot', 'Bot or crawler'), ('demo', 'Demo account'), ('single_page_visit', 'Single-page visit')], max_length=32)),
                # No index: nothing looks events up by the key that sent them, and ingest would pay for it.
                ('source', models.ForeignKey(blank=True, db_index=False, help_text='Key that sent it.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='events.apikey')),
            ],
            options={
                'db_table': 'ops_events',
                'indexes': [django.contrib.postgres.indexes.BrinIndex(fields=['occurred_at'], name='ops_events_occurred_brin'), models.Index(fields=['tenant_id', 'occurred_at'], name='ops_events_tenant_time')],
            },
        ),
        migrations.RunPython(
            code=event_types_seed,
            reverse_code=event_types_unseed,
        ),
        # The index is the incremental recompute's: "rows committed since the last run".
        migrations.RunSQL(
            sql=['ALTER TABLE ops_events ADD COLUMN ingest_xid xid8 NOT NULL DEFAULT pg_current_xact_id()', 'CREATE INDEX ops_events_ingest_xid ON ops_events (ingest_xid)'],
            reverse_sql=['DROP INDEX IF EXISTS ops_events_ingest_xid', 'ALTER TABLE ops_events DROP COLUMN IF EXISTS ingest_xid'],
        ),
        migrations.AddField(
            model_name='apikey',
            name='rate_limit_per_minute',
            field=models.PositiveIntegerField(blank=True, help_text='Ingest requests this key may make per minute; empty uses INGEST_RATE_LIMIT_PER_MINUTE, 0 means no limit.', null=True),
        ),
        migrations.CreateModel(
            name='IngestRateWindow',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('window_start', models.DateTimeField()),
                ('requests', models.PositiveIntegerField(default=0)),
                ('api_key', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='events.apikey')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('api_key', 'window_start'), name='ingest_rate_window_unique')],
            },
        ),
        # Counters are disposable: skip the WAL write each ingest request would otherwise cost.
        migrations.RunSQL(
            sql='ALTER TABLE events_ingestratewindow SET UNLOGGED',
            reverse_sql='ALTER TABLE events_ingestratewindow SET LOGGED',
        ),
        migrations.CreateModel(
            name='AlertNotification',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('kind', models.CharField(choices=[('transition', 'Status change'), ('reminder', 'Daily reminder while critical'), ('weekly_checkin', 'Weekly check-in')], max_length=16)),
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
            ],
            options={
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='AlertState',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(blank=True, max_length=16)),
                ('changed_at', models.DateTimeField(blank=True, null=True)),
                ('last_reminder_at', models.DateTimeField(blank=True, null=True)),
                ('evaluated_at', models.DateTimeField(blank=True, null=True)),
            ],
        ),
        migrations.CreateModel(
            name='ClassificationState',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('rules_version', models.BigIntegerField(default=0)),
                ('applied_fingerprint', models.CharField(blank=True, max_length=64)),
                ('xid_watermark', models.BigIntegerField(default=0)),
                ('single_page_cutoff', models.DateTimeField(blank=True, null=True)),
                ('last_full_at', models.DateTimeField(blank=True, null=True)),
                ('last_full_changed', models.BigIntegerField(default=0, help_text='Rows the last full pass changed.')),
            ],
            options={
                'verbose_name': 'classification state',
            },
        ),
        migrations.CreateModel(
            name='InternalUserRule',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('user_id', 'User id (exact)'), ('email_domain', 'Email domain (metadata.email)')], max_length=16)),
                ('value', models.CharField(help_text='A user id exactly as the product sends it, or an email domain such as example.com (matched case-insensitively against the part of metadata.email after the last @).', max_length=255)),
                ('note', models.CharField(blank=True, help_text="Who this is, e.g. 'the founder'.", max_length=255)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
            ],
            options={
                'verbose_name': 'internal user or domain',
                'verbose_name_plural': 'internal users and domains',
                'ordering': ['kind', 'value'],
            },
        ),
        migrations.CreateModel(
            name='Milestone',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=120)),
                ('target_date', models.DateField()),
                ('users', models.PositiveIntegerField(help_text='Distinct real users needed.')),
                ('max_days', models.FloatField(blank=True, help_text='The days-since metric should be below this (empty: no limit).', null=True)),
                ('order', models.PositiveIntegerField(default=0)),
            ],
            options={
                'ordering': ['order', 'target_date'],
            },
        ),
        migrations.CreateModel(
            name='NorthStarSettings',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('dau_target', models.PositiveIntegerField(default=10, help_text='Daily active real users to aim for.')),
                ('mau_target', models.PositiveIntegerField(default=50, help_text='Monthly (30-day) active real users to aim for.')),
            ],
            options={
                'verbose_name': 'north-star targets',
                'verbose_name_plural': 'north-star targets',
            },
        ),
        migrations.CreateModel(
            name='RealUser',
            fields=[
                ('user_id', models.CharField(max_length=255, primary_key=True, serialize=False)),
                ('first_interaction_at', models.DateTimeField()),
                ('last_interaction_at', models.DateTimeField()),
            ],
            options={
                'db_table': 'ops_real_users',
            },
        ),
        migrations.CreateModel(
            name='UserAgentPattern',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('pattern', models.CharField(max_length=255, unique=True)),
                ('reason', models.CharField(choices=[('automation_client', 'Automation client (curl, scripts)'), ('bot', 'Bot, crawler or headless browser')], max_length=32)),
                ('description', models.CharField(blank=True, max_length=255)),
                ('is_active', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
            ],
            options={
                'verbose_name': 'user-agent pattern',
                'ordering': ['id'],
            },
        ),
        migrations.AddIndex(
            model_name='event',
            index=models.Index(condition=models.Q(('is_real', True), models.Q(('user_id', ''), _negated=True)), fields=['event_type', 'occurred_at'], name='ops_events_real_type_time'),
        ),
        migrations.AddIndex(
            model_name='event',
            index=models.Index(condition=models.Q(('session_id', ''), _negated=True), fields=['session_id'], name='ops_events_session'),
        ),
        migrations.AddIndex(
            model_name='alertnotification',
            index=models.Index(fields=['state', 'next_attempt_at'], name='alert_notification_due'),
        ),
        migrations.AddConstraint(
            model_name='internaluserrule',
            constraint=models.UniqueConstraint(fields=('kind', 'value'), name='internal_user_rule_unique'),
        ),
        migrations.AddIndex(
            model_name='realuser',
            index=models.Index(fields=['last_interaction_at'], name='ops_real_users_last'),
        ),
        migrations.AddIndex(
            model_name='realuser',
            index=models.Index(fields=['first_interaction_at'], name='ops_real_users_first'),
        ),
        migrations.RunPython(
            code=north_star_seed,
            reverse_code=north_star_unseed,
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
        ),
        migrations.AlterField(
            model_name='alertnotification',
            name='kind',
            field=models.CharField(choices=[('transition', 'Status change'), ('reminder', 'Daily reminder while critical'), ('weekly_checkin', 'Weekly check-in'), ('condition', 'Condition (infrastructure, stale metrics)')], max_length=16),
        ),
    ]
