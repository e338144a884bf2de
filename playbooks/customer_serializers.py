"""The shapes of the customers answers that carry playbooks data: ``GET /ops/customers/at-risk``
(``CustomerAtRisk``) and ``GET /ops/customers/{tenant_id}`` (``CustomerDetail``), with the playbooks each
customer matched and its follow-up. The metrics' own shapes are customers/serializers.py's; the names
of these classes are the OpenAPI components' names (a public contract).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from customers.metrics.contacts import tenant_contacts_get
from customers.models import RiskLevel, TenantMetrics
from customers.serializers import (
    ContactSerializer,
    DailyPointSerializer,
    FounderInterventionSerializer,
    MetricsBaseSerializer,
    RiskComponentSerializer,
)
from playbooks.serializers import MeasuredConditionSerializer


class MatchedPlaybookSerializer(serializers.Serializer):
    """A playbook a tenant matched at the last recompute (in the customers at-risk and detail answers)."""

    id = serializers.CharField()
    name = serializers.CharField()
    risk_level = serializers.ChoiceField(choices=RiskLevel.choices)
    trigger_conditions = serializers.ListField(child=serializers.CharField())
    measured = MeasuredConditionSerializer(many=True)
    matched_since = serializers.DateTimeField()


class FollowUpActionSerializer(serializers.Serializer):
    action = serializers.CharField()
    channel = serializers.CharField()
    date = serializers.DateField()
    playbook_id = serializers.CharField(allow_null=True)
    outcome = serializers.CharField(allow_null=True, help_text="retained, expanded, churned, no_response or null.")


class FollowUpStepSerializer(serializers.Serializer):
    step = serializers.CharField()
    timing = serializers.CharField(help_text='The playbook\'s timing, e.g. "day 3"; empty when none.')
    channel = serializers.CharField(help_text="How (a channel of the playbook step); empty when not set.")
    channel_label = serializers.CharField()
    because = serializers.CharField(help_text="Why this step: the playbook that matched or the primary reason.")
    playbook_id = serializers.CharField(allow_null=True)


class FollowUpSerializer(serializers.Serializer):
    """A customer's follow-up state (playbooks/followup.py): the at-risk API's ``follow_up``."""

    state = serializers.ChoiceField(choices=["to_call", "in_progress", "snoozed", "won_back", "churned"])
    # The JSON field "label" (a contract) shadows Field.label, which DRF only reads for forms.
    label = serializers.CharField()  # type: ignore[assignment]
    came_back = serializers.BooleanField(help_text="Churned, then real activity resumed after the churn day.")
    churned_on = serializers.DateField(allow_null=True)
    last_action = FollowUpActionSerializer(allow_null=True)
    next_step = FollowUpStepSerializer(allow_null=True)
    due = serializers.DateField(allow_null=True, help_text="When the next step is due (in_progress).")
    overdue = serializers.BooleanField()
    snoozed_until = serializers.DateField(allow_null=True, help_text="Back on the call list on this day.")
    snooze_reason = serializers.CharField()
    sentence = serializers.CharField(help_text='e.g. "Called the CTO (phone call) on Tue 1 Dec → Day 3: ..."')


class CustomerAtRiskSerializer(MetricsBaseSerializer):
    """The source documents' CustomerAtRisk, with the fields added since."""

    # Its context: playbooks.call_list.call_list_context for the rows (matched playbooks, follow-ups, contacts).

    risk_score = serializers.FloatField(
        source="risk_signal_strength", help_text="Deprecated alias of risk_signal_strength (Phase-2 name)."
    )
    last_investigation = serializers.CharField(
        allow_null=True, help_text="Event type of the last core-value event (the registry's core_value types)."
    )
    top_friction_type = serializers.CharField(allow_null=True)
    secondary_signals = serializers.ListField(child=serializers.CharField())
    recent_changes = serializers.ListField(
        child=serializers.CharField(), help_text='Change events in their labels, e.g. "Pipeline edited 3 days ago".'
    )
    interventions = FounderInterventionSerializer(many=True)
    matched_playbooks = serializers.SerializerMethodField()
    follow_up = serializers.SerializerMethodField(
        help_text="What the founder did and what is next: state (to_call, in_progress, snoozed, won_back, "
        "churned), the last action, the next step and when it is due (overdue first on Today)."
    )
    churn_probability_30d = serializers.FloatField(
        allow_null=True,
        help_text="The adopted churn model's calibrated chance of churn within its horizon (30 days); null while "
        "the heuristic orders the list.",
    )
    ranking_model = serializers.CharField(
        help_text='The score this row is ordered by: "spec" (the heuristic, risk_signal_strength) or '
        '"learned-<version>" (the adopted churn model\'s probability).'
    )
    churn_drivers = serializers.ListField(
        child=serializers.DictField(),
        help_text="What raised the model's probability most, in plain words ({feature, words, contribution}).",
    )
    contacts = serializers.SerializerMethodField(
        help_text="Whom to call: the champion (the real user with the most real events in the last 30 days) and, "
        "where the identify traits `role` or `title` say so, the admin and the buyer; each with name, email, "
        "title (the trait as sent), last_seen (the UTC day of their newest real event here), user_id and "
        "events_30d. Null name or email: the product never sent it. Empty when nobody is known."
    )
    mrr = serializers.FloatField(
        allow_null=True,
        help_text="Monthly recurring revenue (major unit, e.g. dollars) in `mrr_currency`: the founder's figure, "
        "else billing's (Stripe), else the account's `mrr` trait; null when unknown.",
    )
    mrr_currency = serializers.SerializerMethodField(help_text="ISO 4217 code of `mrr`; null when unknown.")
    expected_loss = serializers.FloatField(
        allow_null=True,
        help_text="What this customer's churn would cost per month: churn_probability_30d x mrr, or, while the "
        "heuristic orders the list, risk_signal_strength / 100 x mrr (an attention weight, not a probability). "
        "Null when mrr is unknown.",
    )

    class Meta:
        model = TenantMetrics
        fields = [
            "tenant_id",
            "name",
            "risk_level",
            "risk_signal_strength",
            "churn_probability_30d",
            "ranking_model",
            "churn_drivers",
            "contacts",
            "mrr",
            "mrr_currency",
            "expected_loss",
            "risk_score",
            "primary_risk_reason",
            "secondary_signals",
            "stickiness_7d",
            "stickiness_30d",
            "stickiness_delta",
            "has_baseline",
            "last_investigation",
            "days_since_investigation",
            "friction_events_7d",
            "friction_weighted_score",
            "top_friction_type",
            "recent_changes",
            "decay_correlation",
            "interventions",
            "matched_playbooks",
            "follow_up",
            "computed_at",
        ]

    def get_mrr_currency(self, instance: TenantMetrics) -> str | None:
        revenue = getattr(instance.tenant, "revenue", None) if instance.mrr is not None else None
        return revenue.currency if revenue is not None and revenue.currency else None

    @extend_schema_field(ContactSerializer(many=True))
    def get_contacts(self, instance: TenantMetrics) -> list[dict[str, Any]]:
        # The list views pass every row's contacts in the context (one query for the page).
        contacts = self.context.get("contacts")
        if contacts is None or instance.tenant_id not in contacts:
            contacts = tenant_contacts_get(tenant_ids=[instance.tenant_id])
        return list(ContactSerializer(contacts[instance.tenant_id], many=True).data)

    @extend_schema_field(FollowUpSerializer(allow_null=True))
    def get_follow_up(self, instance: TenantMetrics) -> dict[str, Any] | None:
        follow_up = self.context["follow_ups"][instance.tenant_id]
        return None if follow_up is None else FollowUpSerializer(follow_up).data

    @extend_schema_field(MatchedPlaybookSerializer(many=True))
    def get_matched_playbooks(self, instance: TenantMetrics) -> list[dict[str, Any]]:
        return list(MatchedPlaybookSerializer(self.context["matched_playbooks"][instance.tenant_id], many=True).data)

    def to_representation(self, instance: TenantMetrics) -> dict[str, Any]:
        data = super().to_representation(instance)
        # The documented Optional[str] fields: null rather than "" when there is nothing.
        data["last_investigation"] = data["last_investigation"] or None
        data["top_friction_type"] = data["top_friction_type"] or None
        return data


class CustomerDetailSerializer(CustomerAtRiskSerializer):
    risk_components = RiskComponentSerializer(many=True)
    daily = serializers.SerializerMethodField()

    class Meta(CustomerAtRiskSerializer.Meta):
        fields = [
            *CustomerAtRiskSerializer.Meta.fields,
            "kind",
            "as_of",
            "last_seen_at",
            "last_investigation_at",
            "events_7d",
            "events_prev_7d",
            "events_30d",
            "champion_risk",
            "champion_user_id",
            "cliff",
            "plan_usage_pct",
            "risk_components",
            "daily",
        ]

    @extend_schema_field(DailyPointSerializer(many=True))
    def get_daily(self, instance: TenantMetrics) -> list[dict[str, Any]]:
        return list(DailyPointSerializer(self.context.get("daily", []), many=True).data)


class AtRiskQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=10)
