"""Seed the event type registry with every type the spec names, and add the
ingest transaction id the incremental recompute reads.

``ingest_xid`` is the id of the transaction that inserted the row
(``pg_current_xact_id()``). The recompute only folds in rows whose xid is below
the oldest transaction still running (``pg_snapshot_xmin``), so a batch that
commits late is picked up by a later run instead of slipping under a
high-water mark. It is kept out of the Django model on purpose: nothing but
the rollup SQL reads it.
"""

from django.db import migrations

# name, category, friction_signal, friction_weight, engagement_weight, counts_as_real_interaction, description
EVENT_TYPES = [
    # Friction taxonomy (friction weights from the spec's FRICTION_WEIGHTS).
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
    # User lifecycle (what counts as a real interaction follows the north-star spec).
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


def seed(apps, schema_editor):
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


def unseed(apps, schema_editor):
    apps.get_model("events", "EventType").objects.filter(name__in=[t[0] for t in EVENT_TYPES]).delete()


class Migration(migrations.Migration):
    dependencies = [("events", "0001_initial")]

    operations = [
        migrations.RunPython(seed, unseed),
        migrations.RunSQL(
            [
                "ALTER TABLE ops_events ADD COLUMN ingest_xid xid8 NOT NULL DEFAULT pg_current_xact_id()",
                # Used by the incremental recompute: "rows committed since the last run".
                "CREATE INDEX ops_events_ingest_xid ON ops_events (ingest_xid)",
            ],
            [
                "DROP INDEX IF EXISTS ops_events_ingest_xid",
                "ALTER TABLE ops_events DROP COLUMN IF EXISTS ingest_xid",
            ],
        ),
    ]
