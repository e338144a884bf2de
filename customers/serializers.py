"""The customers API's serializers: the answers' shapes and the query parameters (customers/apis.py).

The shapes of the metrics every customers answer shares (risk components, interventions, contacts,
the daily series) live here; the at-risk and detail answers, which also carry the playbooks each
customer matched and its follow-up, are shaped in playbooks/customer_serializers.py."""

from __future__ import annotations

from rest_framework import serializers

from customers.metrics.friction import FRICTION_CAPS_TEXT
from customers.models import ContactRole, RiskLevel, TenantKind, TenantMetrics
from customers.selectors import CUSTOMER_ORDERINGS, DEFAULT_CUSTOMER_ORDERING


class FounderInterventionSerializer(serializers.Serializer):
    intervention_type = serializers.ChoiceField(choices=["call", "email", "feature_help", "pricing", "technical"])
    priority = serializers.ChoiceField(choices=["immediate", "today", "this_week"])
    suggested_action = serializers.CharField()
    context = serializers.CharField()
    expected_outcome = serializers.CharField()
    triggering_signals = serializers.ListField(
        child=serializers.CharField(),
        help_text="The measured values that triggered it, the plain fact first and the number kept, e.g. "
        '"This week\'s use is 28% of normal (below 50%; ratio 0.28)".',
    )


class ContactSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=ContactRole.choices)
    name = serializers.CharField(allow_null=True)
    email = serializers.CharField(allow_null=True)
    title = serializers.CharField(
        allow_null=True, help_text="The person's role or title trait, as the product sent it."
    )
    last_seen = serializers.DateField(allow_null=True, help_text="UTC day of their newest real event in this account.")
    user_id = serializers.CharField()
    events_30d = serializers.IntegerField(help_text="Their real events in this account over the last 30 days.")


class RiskComponentSerializer(serializers.Serializer):
    signal = serializers.CharField(help_text="Component name (an identifier), e.g. engagement_decay.")
    title = serializers.CharField(
        required=False, help_text='How it reads, in the product\'s words, e.g. "Never used Invoice sent".'
    )
    points = serializers.FloatField(help_text="Points this component adds to risk_signal_strength.")
    max_points = serializers.FloatField()
    value = serializers.JSONField(allow_null=True, help_text="The measured value behind it (null if not measured).")
    explanation = serializers.CharField(help_text="How the points were computed, or why it did not trigger.")
    reason = serializers.CharField(help_text="Founder-facing sentence; empty when the component scored 0.")


class MetricsBaseSerializer(serializers.ModelSerializer):
    tenant_id = serializers.CharField(source="tenant.tenant_id")
    name = serializers.CharField(source="tenant.name")
    kind = serializers.CharField(source="tenant.kind")
    stickiness_delta = serializers.FloatField(
        allow_null=True, help_text="stickiness_7d / stickiness_30d; null when there is no 30-day baseline."
    )
    risk_level = serializers.ChoiceField(choices=RiskLevel.choices, allow_null=True)


class CustomerRowSerializer(MetricsBaseSerializer):
    friction_score = serializers.FloatField(
        source="friction_weighted_score", help_text=f"Weighted friction over 7 days ({FRICTION_CAPS_TEXT})."
    )

    class Meta:
        model = TenantMetrics
        fields = [
            "tenant_id",
            "name",
            "kind",
            "last_seen_at",
            "events_7d",
            "events_30d",
            "stickiness_7d",
            "stickiness_30d",
            "stickiness_delta",
            "has_baseline",
            "friction_score",
            "friction_events_7d",
            "top_friction_type",
            "days_since_investigation",
            "risk_level",
            "risk_signal_strength",
            "primary_risk_reason",
            "computed_at",
        ]


class DailyPointSerializer(serializers.Serializer):
    day = serializers.DateField()
    events = serializers.IntegerField()
    engagement = serializers.FloatField(
        help_text="That day's weighted engagement: sum(count x the type's engagement_weight in the registry)."
    )
    stickiness_7d = serializers.FloatField(help_text="7-day stickiness as of that day (rolling sum).")
    friction_score = serializers.FloatField(help_text="That day's capped friction score (max 10).")


class CustomerQuerySerializer(serializers.Serializer):
    """Query parameters of GET /ops/customers; anything invalid is a 400 naming the parameter."""

    kind = serializers.ChoiceField(
        choices=[*TenantKind.values, "all"], default=TenantKind.CUSTOMER, help_text="Tenant kind; 'all' for every kind."
    )
    risk_level = serializers.ChoiceField(
        choices=[*RiskLevel.values, "none"], required=False, help_text="'none' lists tenants not at risk."
    )
    at_risk = serializers.BooleanField(required=False, allow_null=True, default=None)
    has_baseline = serializers.BooleanField(required=False, allow_null=True, default=None)
    q = serializers.CharField(required=False, default="", max_length=128, help_text="Search in tenant id and name.")
    ordering = serializers.ChoiceField(
        choices=[*CUSTOMER_ORDERINGS, *(f"-{k}" for k in CUSTOMER_ORDERINGS)],
        default=DEFAULT_CUSTOMER_ORDERING,
        help_text="A column, '-' prefix for descending; ties by tenant_id. Nulls sort last. `risk_level` sorts by "
        "the level (critical > high > medium > not at risk), then by `risk_signal_strength` within a level; the "
        "default `-risk_level` is the at-risk list's order. `risk_signal_strength` sorts by the strength alone.",
    )
