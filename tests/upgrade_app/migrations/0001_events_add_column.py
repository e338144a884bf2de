"""Upgrade step 1: a nullable column without a default on ops_events.

PostgreSQL adds it by changing the catalog only (no table rewrite), under a lock held for
milliseconds. lock_timeout bounds how long it may queue behind running ingest transactions
(and so how long new ones queue behind it); the migration fails instead of stalling ingestion.
"""

from django.db import migrations


class Migration(migrations.Migration):
    # ops_events exists from events.0001; nothing later matters to this step.
    dependencies = [("events", "0001_registry_north_star_and_alerts")]

    operations = [
        migrations.RunSQL(
            ["SET LOCAL lock_timeout = '5s'", "ALTER TABLE ops_events ADD COLUMN upgrade_note text"],
            ["ALTER TABLE ops_events DROP COLUMN upgrade_note"],
        )
    ]
