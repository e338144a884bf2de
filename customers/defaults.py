"""The customers app's defaults, defined once: the risk weights a fresh install starts with and the
words the default vocabulary's roles are said in.

The default weights are each risk component's ``max_points`` (customers/metrics/risk.py), so they
are not repeated here. A fresh install's migrations seed exactly this (tests/test_defaults.py); the
migration that first seeded it stays as written, for older installs to upgrade through.
"""

from __future__ import annotations

from typing import Any

from customers.metrics.risk import DEFAULT_WEIGHTS

DEFAULT_WEIGHTS_NOTE = "The default risk weights"
# role, the types the words describe (they apply only while exactly these types hold the role), the words.
ROLE_WORDING: tuple[tuple[str, str, str], ...] = (
    ("blocked", "POLICY_BLOCK_REPEAT", "Review and adjust policy config"),
    ("core_value", "INCIDENT_VIEWED,REPLAY_COMPLETED", "investigated"),
    ("system_issue", "EXPORT_FAILED,REPLAY_FAILED", "Investigate the failing replays/exports"),
)


def customers_defaults_seed(apps: Any) -> None:
    """Create the defaults that are missing, with the models of ``apps``."""
    RiskWeights = apps.get_model("customers", "RiskWeights")
    if not RiskWeights.objects.exists():
        RiskWeights.objects.create(
            version=1, source="default", weights=dict(DEFAULT_WEIGHTS), note=DEFAULT_WEIGHTS_NOTE, is_active=True
        )
    RoleWording = apps.get_model("customers", "RoleWording")
    for role, for_types, text in ROLE_WORDING:
        RoleWording.objects.get_or_create(role=role, defaults={"for_types": for_types, "text": text})
