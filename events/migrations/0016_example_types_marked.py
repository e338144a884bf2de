"""Mark the example vocabulary: each type seeded on a fresh install that is still exactly as
seeded. An example type names the source documents' product, not the founder's, so founder-facing texts
name it only once the product sends it (events.registry.event_types_speaking). A seeded type the
founder has edited since is theirs and stays unmarked; saving a type clears the mark.

The fresh-install state is what the seeding migrations wrote, rebuilt here from their own
definitions (0002's rows, 0008's roles, 0010's integration category, 0012's labels), so it is
defined once; tests/events/test_example_types.py checks that a fresh database is marked whole.
"""

import importlib

from django.db import migrations, models

FIELDS = (
    "label",
    "category",
    "description",
    "core_value",
    "friction_signal",
    "friction_weight",
    "engagement_weight",
    "north_star_role",
    "page_view",
    "counts_as_real_interaction",
)


def _module(name):
    return importlib.import_module(f"events.migrations.{name}")


def fresh_install_state():
    """name -> the fields a fresh install gives the type."""
    seed = _module("0001_registry_north_star_and_alerts")
    roles = _module("0008_event_type_roles")
    integration = _module("0010_registry_validation")
    labels = _module("0012_change_labels_in_words")
    state = {
        name: {
            "label": "",
            "category": category,
            "description": description,
            "core_value": False,
            "friction_signal": signal,
            "friction_weight": fweight,
            "engagement_weight": eweight,
            "north_star_role": "",
            "page_view": False,
            "counts_as_real_interaction": real,
        }
        for name, category, signal, fweight, eweight, real, description in seed.EVENT_TYPES
    }
    for name in roles.CORE_VALUE:
        state[name]["core_value"] = True
    for name in roles.BLOCKED:
        state[name]["friction_signal"] = "blocked"
    for name, role in roles.NORTH_STAR_ROLES.items():
        state[name]["north_star_role"] = role
    for name in roles.PAGE_VIEWS:
        state[name]["page_view"] = True
    for name in integration.INTEGRATION_TYPES:
        state[name]["category"] = "engagement"
    for name, (_seeded, words) in labels.LABELS.items():
        state[name]["label"] = words
    return state


def examples_mark(apps, schema_editor):
    EventType = apps.get_model("events", "EventType")
    state = fresh_install_state()
    untouched = [
        t.name
        for t in EventType.objects.filter(name__in=list(state))
        if all(getattr(t, field) == state[t.name][field] for field in FIELDS)
    ]
    EventType.objects.filter(name__in=untouched).update(is_example=True)


class Migration(migrations.Migration):
    dependencies = [("events", "0015_event_type_choices_and_weight_scales_in_words")]

    operations = [
        migrations.AddField(
            model_name="eventtype",
            name="is_example",
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.RunPython(examples_mark, migrations.RunPython.noop),
    ]
