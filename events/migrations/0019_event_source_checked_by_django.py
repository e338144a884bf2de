"""The event's key is checked by Django, not by a constraint: the constraint's trigger looked the key
up once per stored row when each ingest transaction committed (a key the gate had just
authenticated). Deleting a key that sent events is still refused (``on_delete=PROTECT``)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_keys_and_notifications_from_events"),
        ("events", "0018_keys_and_notifications_move_to_core"),
    ]

    operations = [
        migrations.AlterField(
            model_name="event",
            name="source",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                help_text="Key that sent it.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="core.apikey",
            ),
        ),
    ]
