"""Upgrade step 2: an index built without blocking writes (CREATE INDEX CONCURRENTLY, which
cannot run in a transaction: atomic = False). An interrupted build leaves an INVALID index;
DROP INDEX CONCURRENTLY IF EXISTS first makes the migration safe to re-run."""

from django.db import migrations


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("upgrade_app", "0001_events_add_column")]

    operations = [
        migrations.RunSQL("DROP INDEX CONCURRENTLY IF EXISTS ops_events_upgrade_note", migrations.RunSQL.noop),
        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY ops_events_upgrade_note ON ops_events (upgrade_note, occurred_at)",
            "DROP INDEX CONCURRENTLY IF EXISTS ops_events_upgrade_note",
        ),
    ]
