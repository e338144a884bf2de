"""A BRIN index on ops_events.received_at, and the one limits row admin edits.

The snapshot counts "events received in the last 24 hours" every hour. Without
an index on received_at that is a full scan of the largest table. received_at
defaults to the insert time, so rows sit on disk in received_at order and a
BRIN index (a min/max per 128 pages: kilobytes for millions of rows, almost
free to maintain on insert) narrows the scan to the last day's pages.

A BRIN range is only useful once summarised; new ranges are not summarised on
insert, and an unsummarised range is always scanned. ``autosummarize = on``
has autovacuum summarise each range as it fills, and the snapshot also calls
``brin_summarize_new_values`` (measured on 3 M rows / 748 MB: 1,815 buffers and
~20 ms for the 24 h count, against 51,725 buffers and ~230 ms for the parallel
sequential scan; with nothing summarised the BRIN scan read every page).

It is built CONCURRENTLY (hence ``atomic = False``) so deploying it never
blocks ingestion. If a concurrent build is interrupted it leaves an INVALID
index that IF NOT EXISTS would keep; the reverse drops it, so migrating back and
forward repairs it. The index lives outside the Event model on purpose (like
ingest_xid): only this app's count reads it.
"""

from django.db import migrations


def create_limits_row(apps, schema_editor):
    apps.get_model("infra", "InfraLimitSettings").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("infra", "0001_initial"),
        ("events", "0002_seed_event_types_and_ingest_xid"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ops_events_received_brin ON ops_events USING brin (received_at) "
            "WITH (autosummarize = on)",
            "DROP INDEX CONCURRENTLY IF EXISTS ops_events_received_brin",
        ),
        migrations.RunPython(create_limits_row, migrations.RunPython.noop),
    ]
