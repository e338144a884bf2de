"""The seeded playbooks' conditions in roles, so each matches its archetype in any product.

0002 named the source documents' types (POLICY_BLOCK_REPEAT, REPLAY_ABORTED, CERT_GENERATED...), so
four of the five could never match in a product with its own vocabulary. In roles they
read the registry (events.registry.ROLE_SETS) at every evaluation; on the default
vocabulary each role stands for exactly the types 0002 named, in the same order, so the
matches and their texts are what they were:

- policy_friction: blocked events (POLICY_BLOCK_REPEAT);
- abandonment: friction events weighing 2+ (REPLAY_ABORTED 3, EXPORT_ABORTED 2.5; an idle
  timeout at 1.5 is friction but not an abandoned flow);
- legal_only: side_value events (CERT_GENERATED, CERT_DOWNLOADED: value types neither core
  nor weighted) and no engaged events (INCIDENT_VIEWED, REPLAY_COMPLETED, EXPORT_COMPLETED);
- silent_churn and engagement_decay already read only the engine's metrics.

Only conditions exactly as 0002 seeded them are rewritten: a playbook the founder edited
keeps the founder's conditions.
"""

import importlib

from django.db import migrations

FIRST_RELEASE = importlib.import_module("playbooks.migrations.0001_playbooks_seeded")
SEEDED = {p["id"]: p["conditions"] for p in FIRST_RELEASE.PLAYBOOKS}

IN_ROLES = {
    "policy_friction": [("event_count", "blocked events", ">=", 3, 7)],
    "abandonment": [("event_count", "friction events weighing 2+", ">=", 3, 7)],
    "legal_only": [
        ("event_count", "side_value events", ">=", 1, 30),
        ("event_count", "engaged events", "==", 0, 30),
    ],
}


def _conditions(TriggerCondition, playbook_id):
    return [
        (c.metric, c.event_types, c.operator, c.threshold, c.window_days)
        for c in TriggerCondition.objects.filter(playbook_id=playbook_id).order_by("order", "id")
    ]


def _replace(apps, table, frm):
    TriggerCondition = apps.get_model("playbooks", "TriggerCondition")
    for playbook_id, target in table.items():
        if _conditions(TriggerCondition, playbook_id) != [tuple(c) for c in frm[playbook_id]]:
            continue  # edited by the founder (or absent): theirs to keep
        TriggerCondition.objects.filter(playbook_id=playbook_id).delete()
        FIRST_RELEASE.conditions_create(TriggerCondition, target, playbook_id=playbook_id)


def in_roles(apps, schema_editor):
    _replace(apps, IN_ROLES, SEEDED)


def in_names(apps, schema_editor):
    _replace(apps, {k: SEEDED[k] for k in IN_ROLES}, IN_ROLES)


class Migration(migrations.Migration):
    # Renamed for what it does; an install that applied it under its old name keeps it applied.
    replaces = [("playbooks", "0004_i15_registry_seeded_playbooks_in_roles")]

    dependencies = [
        ("playbooks", "0003_evaluation_state"),
        ("events", "0010_registry_validation"),
    ]

    operations = [migrations.RunPython(in_roles, in_names)]
