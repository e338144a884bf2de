"""The playbooks app as the first release left it: playbooks, their trigger conditions and actions,
interventions and outcomes, and the five founder playbooks seeded with real content.

This replaces the first release's two migrations: a database that applied them records this one as
applied and goes on from the next; a fresh database applies this one. The seeded playbooks are
frozen as they were first written (later migrations rewrite the ones a founder has not edited, and
read ``PLAYBOOKS`` from here to know them); the playbooks a fresh install ends with are
``playbooks/defaults.py``.

Founders edit them afterwards in admin; the seed only creates a playbook that does not exist yet, so
it never overwrites an edit. Conditions use the catalogue in playbooks/conditions.py:
(metric, event_types, operator, threshold, window_days).
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

PLAYBOOKS = [
    {
        "id": "silent_churn",
        "name": "Silent churn",
        "risk_level": "high",
        "conditions": [
            ("real_events", "", ">=", 1, 7),
            ("days_since_investigation", "", ">=", 7, None),
        ],
        "success_metric": (
            "A named user views an incident or completes a replay (INCIDENT_VIEWED or REPLAY_COMPLETED) within "
            "14 days of the first email, and the account investigates at least once a week for the 4 weeks after."
        ),
        "notes": (
            "Their integration keeps sending data, so the invoice looks safe, but nobody looks at what we find. "
            "This is the most common way B2B tools die: the renewal meeting asks 'who uses this?' and nobody can "
            "answer. Usually the alerts go to someone who left, or to a channel nobody reads. Lead with curiosity, "
            "not with a sales pitch; the fix is often routing, not features."
        ),
        "actions": [
            (
                "Personal check-in to the main user",
                "day 0",
                "email",
                "Hi {first name}, I noticed your integration is still sending incidents to us every day, but nobody "
                "on your team has opened one in over a week. That usually means one of two things: everything is "
                "quiet (great), or the alerts aren't reaching the right person. Which is it for you? If it's the "
                "second, I can route them to whoever is on call in five minutes.",
            ),
            (
                "Send them one concrete incident worth looking at",
                "within 48h if no reply",
                "email",
                "Here's the incident from {day} that we flagged as the most unusual in your account: {link}. It takes "
                "two minutes to look at. If it was noise, tell me and I'll tune it so you only hear about the ones "
                "that matter.",
            ),
            (
                "15-minute call with the account owner",
                "day 5",
                "call",
                "I'm not calling to sell anything. Your usage tells me the product is running but nobody is looking "
                "at it, and I'd rather hear now if it stopped being useful than find out at renewal. What would have "
                "to be true for your team to open it every week?",
            ),
            (
                "Decide and record the outcome",
                "day 14",
                "internal",
                "Still no investigation: record the outcome as no_response, ask the account owner who decides the "
                "renewal, and put a note on the tenant. An investigation happened: record retained and check again "
                "in 4 weeks.",
            ),
        ],
    },
    {
        "id": "policy_friction",
        "name": "Policy friction",
        "risk_level": "medium",
        "conditions": [("event_count", "POLICY_BLOCK_REPEAT", ">=", 3, 7)],
        "success_metric": (
            "No POLICY_BLOCK_REPEAT in the 7 days after the policy is adjusted, with the same or higher weekly "
            "usage (stickiness_7d)."
        ),
        "notes": (
            "The same policy blocking the same people again and again means the policy fights their workflow. "
            "Users rarely report it; they route around the product instead. Check first whether the policy is "
            "right and the user is wrong: sometimes the answer is a two-minute explanation, not a config change."
        ),
        "actions": [
            (
                "Find the policy and decide whether the blocks are right",
                "day 0",
                "internal",
                "Before contacting them: open the customer page, read the policy name in the blocked events' "
                "metadata, and decide whether the policy is correct and the user needs help, or the policy is too "
                "strict for how they work.",
            ),
            (
                "Tell them what you found and offer the fix",
                "within 24h",
                "email",
                "Hi {first name}, I saw the {policy} policy blocked your team {n} times this week on what looks "
                "like the same action. That's on us to make smoother. Two options: I can switch it to warn-only for "
                "your workspace, or walk you through an exception for that workflow. Which would you prefer?",
            ),
            (
                "Screen share if they want to show it",
                "within 48h",
                "video_call",
                "Can you show me the exact step where it blocks you? I want to see what you were trying to do, not "
                "just the error, so the fix is the right one.",
            ),
            (
                "Check the blocks stopped",
                "day 7",
                "internal",
                "Customer page: no POLICY_BLOCK_REPEAT since the change and usage steady? Record retained. Still "
                "blocking? Send engineering the policy name and one example event, and tell the customer the date "
                "you'll have it fixed by.",
            ),
        ],
    },
    {
        "id": "abandonment",
        "name": "Abandoned replays and exports",
        "risk_level": "high",
        "conditions": [("event_count", "REPLAY_ABORTED,EXPORT_ABORTED", ">=", 3, 7)],
        "success_metric": (
            "A REPLAY_COMPLETED or EXPORT_COMPLETED within 7 days, and aborted replays/exports back under one a "
            "week for the following month."
        ),
        "notes": (
            "Someone started the core workflow and gave up, more than once. They wanted the value and the "
            "product got in the way: too slow, a confusing step, or a missing input. This is the warmest at-risk "
            "customer you have, because intent is proven. Fix it for them by hand first; the product fix comes "
            "from what you learn."
        ),
        "actions": [
            (
                "Reconstruct what happened",
                "day 0",
                "internal",
                "On the customer page, read the timeline around the aborted sessions: what they started, how long "
                "before they cancelled, and whether a REPLAY_FAILED or EXPORT_FAILED came just before.",
            ),
            (
                "Offer to do it for them",
                "within 24h",
                "email",
                "Hi {first name}, it looks like a few replays and exports were started and cancelled on your account "
                "this week. Usually that means it was too slow or asked for something you didn't have to hand. Was "
                "it one of those? Tell me which incident you were trying to replay and I'll run it and send you the "
                "result today.",
            ),
            (
                "20-minute working session",
                "within 48h",
                "video_call",
                "Let's do the next one together: bring an incident you actually need replayed and we'll get it done "
                "on the call. I'll take notes on every step that felt slow or unclear.",
            ),
            (
                "Check for completions",
                "day 7",
                "internal",
                "A REPLAY_COMPLETED or EXPORT_COMPLETED since the session? Record retained. Still aborting at the "
                "same step? File it as a product bug with the session ids and tell the customer when it ships.",
            ),
        ],
    },
    {
        "id": "engagement_decay",
        "name": "Engagement decay",
        "risk_level": "critical",
        "conditions": [("stickiness_delta", "", "<", 0.5, None)],
        "success_metric": "stickiness_delta back above 0.8 within 14 days of the call.",
        "notes": (
            "This week's engagement is less than half of their usual weekly level over 30 days. Something "
            "changed: a reorg, a competitor, a champion who left, or something we shipped. Check the customer "
            "page's recent changes and decay correlation first; if a change of ours lines up with the drop, say "
            "so on the call. Speed matters more than polish here: call the same day."
        ),
        "actions": [
            (
                "Look for what changed",
                "day 0",
                "internal",
                "Read the customer page before calling: recent changes, the decay correlation, whether the champion "
                "went silent, and the stickiness chart (sudden cliff or slow slide?).",
            ),
            (
                "Founder call, same day",
                "day 0",
                "call",
                "Hi {first name}, it's {your name}, the founder. Your team's usage dropped by more than half this "
                "week compared with your usual month, and I wanted to ask you directly rather than guess. Did "
                "something change on your side, or did we break something? ... What would make this worth your "
                "team's time again?",
            ),
            (
                "Short personal email if the call doesn't happen",
                "within 24h",
                "email",
                "Subject: quick question about last week. Your team used us about half as much as usual this week. "
                "If something changed (a reorg, a new tool, something we did) I'd really like to know. Reply with "
                "one line, or pick a 15-minute slot here: {link}.",
            ),
            (
                "Deliver what you promised",
                "day 3",
                "email",
                "Here's the {fix / config change / workaround} we talked about, live on your account now. I'll check "
                "in again next week to see whether it helped.",
            ),
            (
                "Check the trend and record the outcome",
                "day 14",
                "internal",
                "stickiness_delta above 0.8 on the customer page? Record retained (or expanded if they added "
                "users). Still below 0.5? Record no_response or churned and write down what you learned.",
            ),
        ],
    },
    {
        "id": "legal_only",
        "name": "Certificates only",
        "risk_level": "medium",
        "conditions": [
            ("event_count", "CERT_GENERATED,CERT_DOWNLOADED", ">=", 1, 30),
            ("event_count", "INCIDENT_VIEWED,REPLAY_COMPLETED,EXPORT_COMPLETED", "==", 0, 30),
        ],
        "success_metric": (
            "A first INCIDENT_VIEWED or REPLAY_COMPLETED within 30 days, from someone other than the certificate "
            "user."
        ),
        "notes": (
            "They bought for the compliance certificate and use nothing else. Stable until renewal, when someone "
            "asks what else it does and nobody knows. The person generating certificates is usually in legal or "
            "compliance; the value for investigations lives with engineering. Your job is an introduction, not a "
            "pitch."
        ),
        "actions": [
            (
                "Thank the certificate user and ask for the engineer",
                "day 0",
                "email",
                "Hi {first name}, I see you're generating certificates regularly, thank you. Quick question: who on "
                "your side handles it when something goes wrong in production? The same data behind your "
                "certificates can show them exactly what happened, and I'd love to give them a 10-minute tour.",
            ),
            (
                "Tour with one real incident from their account",
                "within 1 week",
                "video_call",
                "Let me show you the incident from {day}: here's the replay, here's what the policy saw, here's the "
                "export you'd hand to an auditor. Would this have saved you time that day?",
            ),
            (
                "Check for a first investigation",
                "day 30",
                "internal",
                "Any INCIDENT_VIEWED or REPLAY_COMPLETED since the tour? Record retained. None: record no_response "
                "and note for the renewal that they value compliance only, and price and position accordingly.",
            ),
        ],
    },
]


def conditions_create(TriggerCondition, conditions, **playbook):
    """A playbook's trigger conditions from (metric, event_types, operator, threshold, window_days), in
    order; ``playbook`` names it (``playbook=`` or ``playbook_id=``). Later migrations that rewrite the
    seeded conditions create theirs with it too."""
    for order, (metric, event_types, operator, threshold, window_days) in enumerate(conditions, 1):
        TriggerCondition.objects.create(
            **playbook,
            metric=metric,
            event_types=event_types,
            operator=operator,
            threshold=threshold,
            window_days=window_days,
            order=order,
        )


def seed(apps, schema_editor):
    Playbook = apps.get_model("playbooks", "Playbook")
    TriggerCondition = apps.get_model("playbooks", "TriggerCondition")
    PlaybookAction = apps.get_model("playbooks", "PlaybookAction")
    for spec in PLAYBOOKS:
        if Playbook.objects.filter(pk=spec["id"]).exists():
            continue
        playbook = Playbook.objects.create(
            id=spec["id"],
            name=spec["name"],
            risk_level=spec["risk_level"],
            success_metric=spec["success_metric"],
            notes=spec["notes"],
            enabled=True,
        )
        conditions_create(TriggerCondition, spec["conditions"], playbook=playbook)
        for order, (step, timing, channel, talk_track) in enumerate(spec["actions"], 1):
            PlaybookAction.objects.create(
                playbook=playbook, order=order, step=step, timing=timing, channel=channel, talk_track=talk_track
            )


def unseed(apps, schema_editor):
    apps.get_model("playbooks", "Playbook").objects.filter(pk__in=[p["id"] for p in PLAYBOOKS]).delete()


class Migration(migrations.Migration):

    replaces = [('playbooks', '0001_playbooks_interventions_churns'), ('playbooks', '0002_seed_playbooks')]

    initial = True

    dependencies = [
        ('customers', '0001_metrics_engine'),
    ]

    operations = [
        migrations.CreateModel(
            name='Playbook',
            fields=[
                ('id', models.SlugField(help_text='Stable id used in the API, e.g. silent_churn.', max_length=64, primary_key=True, serialize=False)),
                ('name', models.CharField(max_length=120)),
                ('risk_level', models.CharField(choices=[('critical', 'Critical'), ('high', 'High'), ('medium', 'Medium')], help_text='A matched tenant is at risk at least at this level.', max_length=16)),
                ('success_metric', models.TextField(help_text='How to tell whether the playbook worked.')),
                ('notes', models.TextField(blank=True, help_text='Context for the founder.')),
                ('enabled', models.BooleanField(default=True, help_text='Disabled playbooks are not evaluated.')),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'ordering': ['id'],
            },
        ),
        migrations.CreateModel(
            name='ChurnRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('date', models.DateField(help_text='Day the customer was lost (cancelled, did not renew, went silent for good).')),
                ('reason', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('created_by', models.CharField(blank=True, max_length=150)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='churns', to='customers.tenant')),
            ],
            options={
                'ordering': ['-date', '-id'],
            },
        ),
        migrations.CreateModel(
            name='PlaybookAction',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('order', models.PositiveSmallIntegerField(default=0, help_text='Steps run in this order (1, 2, 3 ...).')),
                ('step', models.CharField(help_text="What to do, e.g. 'Send a personal check-in email'.", max_length=200)),
                ('timing', models.CharField(help_text="When, e.g. 'day 0', 'within 48h', 'day 7'.", max_length=60)),
                ('channel', models.CharField(choices=[('call', 'Phone call'), ('video_call', 'Video call'), ('email', 'Email'), ('in_app', 'In-app message'), ('slack', 'Shared Slack channel'), ('internal', 'Internal (no customer contact)'), ('other', 'Other')], max_length=16)),
                ('talk_track', models.TextField(help_text='What to actually say or write.')),
                ('playbook', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='actions', to='playbooks.playbook')),
            ],
            options={
                'ordering': ['playbook_id', 'order', 'id'],
            },
        ),
        migrations.CreateModel(
            name='TriggerCondition',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('metric', models.CharField(max_length=40)),
                ('event_types', models.CharField(blank=True, help_text='For event_count only: comma-separated event types, e.g. REPLAY_ABORTED.', max_length=300)),
                ('operator', models.CharField(choices=[('<', '<'), ('<=', '<='), ('>', '>'), ('>=', '>='), ('==', '==')], max_length=2)),
                ('threshold', models.FloatField()),
                ('window_days', models.PositiveSmallIntegerField(blank=True, help_text='Days the metric is measured over (windowed metrics only), ending today.', null=True)),
                ('order', models.PositiveSmallIntegerField(default=0)),
                ('playbook', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='conditions', to='playbooks.playbook')),
            ],
            options={
                'ordering': ['playbook_id', 'order', 'id'],
            },
        ),
        migrations.CreateModel(
            name='InterventionRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('action', models.CharField(help_text="What was done, e.g. 'Called the CTO'.", max_length=300)),
                ('channel', models.CharField(choices=[('call', 'Phone call'), ('video_call', 'Video call'), ('email', 'Email'), ('in_app', 'In-app message'), ('slack', 'Shared Slack channel'), ('internal', 'Internal (no customer contact)'), ('other', 'Other')], max_length=16)),
                ('date', models.DateField(default=django.utils.timezone.localdate, help_text='Day the intervention was taken.')),
                ('note', models.TextField(blank=True)),
                ('outcome', models.CharField(blank=True, choices=[('retained', 'Retained'), ('expanded', 'Expanded'), ('churned', 'Churned'), ('no_response', 'No response')], max_length=16, null=True)),
                ('outcome_at', models.DateField(blank=True, help_text='Day the outcome was observed.', null=True)),
                ('outcome_note', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('created_by', models.CharField(blank=True, help_text='Staff user or API key that recorded it.', max_length=150)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='interventions_taken', to='customers.tenant')),
                ('playbook', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='interventions', to='playbooks.playbook')),
            ],
            options={
                'ordering': ['-date', '-id'],
                'indexes': [models.Index(fields=['tenant', 'date'], name='ops_intervention_tenant_day')],
            },
        ),
        migrations.CreateModel(
            name='PlaybookMatch',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('matched_at', models.DateTimeField()),
                ('first_matched_at', models.DateTimeField()),
                ('as_of', models.DateField()),
                ('measured', models.JSONField(default=list)),
                ('playbook', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='matches', to='playbooks.playbook')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='playbook_matches', to='customers.tenant')),
            ],
            options={
                'verbose_name_plural': 'playbook matches (cache)',
                'db_table': 'ops_playbook_match',
                'ordering': ['playbook_id', 'tenant_id'],
                'constraints': [models.UniqueConstraint(fields=('tenant', 'playbook'), name='ops_playbook_match_unique')],
            },
        ),
        migrations.CreateModel(
            name='TenantRiskDay',
            fields=[
                ('pk', models.CompositePrimaryKey('tenant_id', 'day', blank=True, editable=False, primary_key=True, serialize=False)),
                ('day', models.DateField()),
                ('risk_level', models.CharField(choices=[('critical', 'Critical'), ('high', 'High'), ('medium', 'Medium')], max_length=16)),
                ('risk_signal_strength', models.FloatField(default=0.0)),
                ('playbooks', models.JSONField(default=list, help_text='Ids of the playbooks matched that day.')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='risk_days', to='customers.tenant')),
            ],
            options={
                'db_table': 'ops_tenant_risk_day',
                'indexes': [models.Index(fields=['day'], name='ops_risk_day_day')],
            },
        ),
        migrations.RunPython(
            code=seed,
            reverse_code=unseed,
        ),
    ]
