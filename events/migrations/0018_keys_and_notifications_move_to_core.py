"""API keys and notifications now belong to core (see core's 0001): events forgets the models and
points its two foreign keys to keys at core's model, which is the same table, so the database does
not change."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_keys_and_notifications_from_events"),
        ("events", "0017_morning_digest"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name="AlertNotification",
                ),
                migrations.AlterField(
                    model_name="ingestratewindow",
                    name="api_key",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="core.apikey"
                    ),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="source",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        help_text="Key that sent it.",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="core.apikey",
                    ),
                ),
                migrations.DeleteModel(
                    name="ConditionAlertState",
                ),
                migrations.DeleteModel(
                    name="ApiKey",
                ),
            ],
            database_operations=[],
        ),
    ]
