# Event ids become unique per account: the key a table distributed by tenant_id (Citus) can keep.

import uuid
from django.db import migrations, models


class Migration(migrations.Migration):
    # Renamed for what it does; an install that applied it under its old name keeps it applied.
    replaces = [("events", "0013_i20_event_id_unique_per_tenant")]

    dependencies = [
        ("events", "0012_change_labels_in_words"),
    ]

    operations = [
        # The new key first, so a resend is never without an arbiter.
        migrations.AddConstraint(
            model_name="event",
            constraint=models.UniqueConstraint(fields=("tenant_id", "event_id"), name="ops_events_tenant_event"),
        ),
        migrations.AlterField(
            model_name="event",
            name="event_id",
            field=models.UUIDField(
                default=uuid.uuid4, help_text="Client-supplied for idempotency (unique per account)."
            ),
        ),
    ]
