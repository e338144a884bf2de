"""The customers API's serializers: the answers' shapes and the query parameters (customers/apis.py)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from customers.extensions import tenant_follow_ups, tenant_playbooks
from customers.metrics.contacts import tenant_contacts_get
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


class MeasuredConditionSerializer(serializers.Serializer):
    condition = serializers.CharField()
    metric = serializers.CharField()
    value = serializers.FloatField(help_text="The measured value that satisfied the condition.")


class MatchedPlaybookSerializer(serializers.Serializer):
    """A playbook a tenant matched at the last recompute (in the customers at-risk and detail answers;
    the playbooks app provides them through customers/extensions.py)."""

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
    """A customer's follow-up state (provided by the playbooks app through customers/extensions.py):
    the at-risk API's ``follow_up``."""

    state = serializers.ChoiceField(choices=["to_call", "in_progress", "snoozed", "won_back", "churned"])
    label = serializers.CharField()
    came_back = serializers.BooleanField(help_text="Churned, then real activity resumed after the churn day.")
    churned_on = serializers.DateField(allow_null=True)
    last_action = FollowUpActionSerializer(allow_null=True)
    next_step = FollowUpStepSerializer(allow_null=True)
    due = serializers.DateField(allow_null=True, help_text="When the next step is due (in_progress).")
    overdue = serializers.BooleanField()
    snoozed_until = serializers.DateField(allow_null=True, help_text="Back on the call list on this day.")
    snooze_reason = serializers.CharField()
    sentence = serializers.CharField(help_text='e.g. "Called the CTO (phone call) on Tue 1 Dec → Day 3: ..."')


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


class _MetricsBase(serializers.ModelSerializer):
    tenant_id = serializers.CharField(source="tenant.tenant_id")
    name = serializers.CharField(source="tenant.name")
    kind = serializers.CharField(source="tenant.kind")
    stickiness_delta = serializers.FloatField(
        allow_null=True, help_text="stickiness_7d / stickiness_30d; null when there is no 30-day baseline."
    )
    risk_level = serializers.ChoiceField(choices=RiskLevel.choices, allow_null=True)


class CustomerRowSerializer(_MetricsBase):
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


class CustomerAtRiskSerializer(_MetricsBase):
    """The source documents' CustomerAtRisk, with the fields added since."""

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
        # The list views pass every row's follow-up in the context (a constant number of queries).
        follow_ups = self.context.get("follow_ups")
        if follow_ups is None or instance.tenant_id not in follow_ups:
            matched = tenant_playbooks(tenant_ids=[instance.tenant_id])
            follow_ups = tenant_follow_ups(rows=[instance], matched=matched, today=timezone.localdate())
        follow_up = follow_ups[instance.tenant_id]
        return None if follow_up is None else FollowUpSerializer(follow_up).data

    @extend_schema_field(MatchedPlaybookSerializer(many=True))
    def get_matched_playbooks(self, instance: TenantMetrics) -> list[dict[str, Any]]:
        # The list views pass every row's matches in the context (one query for the page).
        matched = self.context.get("matched_playbooks")
        if matched is None or instance.tenant_id not in matched:
            matched = tenant_playbooks(tenant_ids=[instance.tenant_id])
        return MatchedPlaybookSerializer(matched[instance.tenant_id], many=True).data

    def to_representation(self, instance: TenantMetrics) -> dict[str, Any]:
        data = super().to_representation(instance)
        # The documented Optional[str] fields: null rather than "" when there is nothing.
        data["last_investigation"] = data["last_investigation"] or None
        data["top_friction_type"] = data["top_friction_type"] or None
        return data


class DailyPointSerializer(serializers.Serializer):
    day = serializers.DateField()
    events = serializers.IntegerField()
    engagement = serializers.FloatField(
        help_text="That day's weighted engagement: sum(count x the type's engagement_weight in the registry)."
    )
    stickiness_7d = serializers.FloatField(help_text="7-day stickiness as of that day (rolling sum).")
    friction_score = serializers.FloatField(help_text="That day's capped friction score (max 10).")


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
        return DailyPointSerializer(self.context.get("daily", []), many=True).data


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


class AtRiskQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=10)
