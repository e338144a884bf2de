"""The default vocabulary's change events read as words in founder sentences ("it fell after the
policy change on 3 Nov"), not identifiers ("policy_change"), as every founder-facing text reads. Only labels
still as 0009 seeded them change, so a founder's own label is kept."""

from django.db import migrations

LABELS = {
    "POLICY_CHANGED": ("policy_change", "policy change"),
    "MODEL_SWITCHED": ("model_switch", "model switch"),
    "RATE_LIMIT_CHANGED": ("rate_limit_change", "rate limit change"),
    "PLAN_CHANGED": ("plan_change", "plan change"),
}


def in_words(apps, schema_editor):
    EventType = apps.get_model("events", "EventType")
    for name, (seeded, words) in LABELS.items():
        EventType.objects.filter(name=name, label=seeded).update(label=words)


def as_identifiers(apps, schema_editor):
    EventType = apps.get_model("events", "EventType")
    for name, (seeded, words) in LABELS.items():
        EventType.objects.filter(name=name, label=words).update(label=seeded)


class Migration(migrations.Migration):
    dependencies = [("events", "0011_parking_and_identities")]

    operations = [migrations.RunPython(in_words, as_identifiers)]
