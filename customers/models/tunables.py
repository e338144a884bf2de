"""What a founder tunes for the engine: role wordings and the risk weights' versions."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class WordingRole(models.TextChoices):
    """The roles whose founder-facing words cannot be made from type labels alone."""

    # The examples are in no product's types in particular: the admin shows them to every founder.
    CORE_VALUE = "core_value", "Core value: what 'Never …' says (e.g. 'won a deal')"
    BLOCKED = "blocked", "Blocked: the technical action (e.g. 'Raise their seat limit')"
    SYSTEM_ISSUE = "system_issue", "System issue: the technical action (e.g. 'Fix the bouncing emails')"


class RoleWording(models.Model):
    """The founder's own words for a role, tied to the types they were written for.

    The words apply only while exactly ``for_types`` (matched case-insensitively) hold
    the role in the event type registry; once the founder marks other types, the
    engine's texts fall back to the types' labels ("Never used Deploy shipped"), so a
    word written for one vocabulary never describes another. Seeded with words for the
    default vocabulary's types (customers/defaults.py).
    """

    role = models.CharField(max_length=16, choices=WordingRole.choices, primary_key=True)
    for_types = models.CharField(
        max_length=500,
        help_text="The event type names (comma-separated) these words describe; the words apply only while "
        "exactly these types have the role.",
    )
    text = models.CharField(max_length=120, help_text="The words, in the founder's voice.")

    class Meta:
        db_table = "customers_role_wording"
        ordering = ["role"]

    def __str__(self) -> str:
        return f"{self.role}: {self.text}"

    def type_names(self) -> frozenset[str]:
        return frozenset(part.strip().lower() for part in self.for_types.split(",") if part.strip())


class RiskWeightsSource(models.TextChoices):
    DEFAULT = "default", "The default risk weights"
    FOUNDER = "founder", "Edited by the founder"
    LEARNED = "learned", "Learned from outcomes"


class RiskWeights(models.Model):
    """A version of the risk components' maximum points; exactly one is active.

    ``weights`` maps a component name (customers/metrics/risk.py::RISK_COMPONENTS)
    to its maximum points (0-100); a component left out keeps its default. The
    engine reads the active version once per run (customers/metrics/weights.py),
    and an edit or a switch of version recomputes every tenant at the next run.
    Versions are kept, so adopting a learned version and going back are each one
    click in admin ("Make active").
    """

    version = models.PositiveIntegerField(unique=True)
    source = models.CharField(max_length=16, choices=RiskWeightsSource.choices, default=RiskWeightsSource.FOUNDER)
    weights = models.JSONField(default=dict, help_text='Maximum points per component, e.g. {"silent_churn": 50}.')
    note = models.CharField(max_length=255, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    is_active = models.BooleanField(default=False)

    class Meta:
        db_table = "customers_risk_weights"
        ordering = ["-version"]
        verbose_name = "risk weights version"
        constraints = [
            # At most one active version: the engine reads exactly one.
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="risk_weights_one_active"
            )
        ]

    def __str__(self) -> str:
        return f"v{self.version} ({self.source}{', active' if self.is_active else ''})"
