"""The playbooks API's serializers: what each answer holds and what each write accepts."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from customers.models import RiskLevel
from playbooks.models import NOTE_MAX_CHARS, Channel, ChurnRecord, InterventionRecord, Outcome
from playbooks.services import (
    ACTION_MAX_CHARS,
    SNOOZE_REASON_MAX_CHARS,
)


# A playbook condition a tenant satisfied and the value it measured (the matches, the at-risk answers).
class MeasuredConditionSerializer(serializers.Serializer):
    condition = serializers.CharField()
    metric = serializers.CharField()
    value = serializers.FloatField(help_text="The measured value that satisfied the condition.")


class PlaybookActionSerializer(serializers.Serializer):
    order = serializers.IntegerField()
    step = serializers.CharField()
    timing = serializers.CharField(help_text='When, e.g. "day 0" or "within 48h".')
    channel = serializers.ChoiceField(choices=Channel.choices)
    talk_track = serializers.CharField(help_text="What to say or write.")


class MatchedTenantSerializer(serializers.Serializer):
    tenant_id = serializers.CharField()
    name = serializers.CharField()
    matched_since = serializers.DateTimeField(help_text="First recompute of the current run of matches.")
    matched_at = serializers.DateTimeField(help_text="Last recompute that matched.")
    measured = MeasuredConditionSerializer(many=True)


class PlaybookDetailSerializer(serializers.Serializer):
    """The documented PlaybookDetail, plus ``enabled`` and ``matched_tenants``."""

    id = serializers.CharField()
    name = serializers.CharField()
    enabled = serializers.BooleanField()
    trigger_conditions = serializers.ListField(
        child=serializers.CharField(),
        help_text='In the product\'s types, e.g. "3+ Seat limit reached in 7 days", "7+ days since the last Deal won".',
    )
    risk_level = serializers.ChoiceField(choices=RiskLevel.choices)
    actions = PlaybookActionSerializer(many=True)
    success_metric = serializers.CharField()
    notes = serializers.CharField(allow_blank=True)
    matched_tenants = MatchedTenantSerializer(many=True)


class RetentionSerializer(serializers.Serializer):
    evaluable = serializers.IntegerField(help_text="Tenants followed for the whole window.")
    retained = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True, help_text="retained / evaluable; null when nothing to evaluate.")


class GroupSerializer(serializers.Serializer):
    tenants = serializers.IntegerField()
    retained_30d = RetentionSerializer()
    retained_60d = RetentionSerializer()


class EffectivenessSerializer(serializers.Serializer):
    playbook_id = serializers.CharField()
    name = serializers.CharField()
    risk_level = serializers.CharField()
    times_applied = serializers.IntegerField(help_text="Intervention records for this playbook.")
    outcomes = serializers.DictField(child=serializers.IntegerField(), help_text="Intervention records by outcome.")
    period_start = serializers.DateField(allow_null=True)
    period_end = serializers.DateField(allow_null=True)
    treated = GroupSerializer()
    comparison = GroupSerializer(help_text="At-risk tenants flagged for the playbook with no intervention.")
    observational_note = serializers.CharField()


class EffectivenessResponseSerializer(serializers.Serializer):
    note = serializers.CharField()
    playbooks = EffectivenessSerializer(many=True)


class DaysSummarySerializer(serializers.Serializer):
    min = serializers.FloatField(allow_null=True)
    median = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)


class ChurnsByLevelSerializer(serializers.Serializer):
    risk_level = serializers.CharField(help_text="critical, high, medium or not_flagged.")
    churns = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True)
    days_before = DaysSummarySerializer(
        allow_null=True, help_text="Days between the first flag at this level and the churn."
    )


class FlaggedSerializer(serializers.Serializer):
    risk_level = serializers.CharField()
    tenants = serializers.IntegerField(help_text="Customers whose highest level ever was this one.")
    churned = serializers.IntegerField(help_text="Of those, churned on or after the first day at that level.")
    share_churned = serializers.FloatField(allow_null=True)


class ValidatedChurnSerializer(serializers.Serializer):
    tenant_id = serializers.CharField()
    name = serializers.CharField()
    date = serializers.DateField()
    reason = serializers.CharField()
    highest_level = serializers.CharField(allow_null=True)
    days_flagged_before = serializers.IntegerField(allow_null=True)


class SignalValidationSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    lookback_days = serializers.IntegerField()
    churns_recorded = serializers.IntegerField()
    minimum_churns_for_trust = serializers.IntegerField()
    warning = serializers.CharField(allow_null=True)
    churns_by_level = ChurnsByLevelSerializer(many=True)
    flagged = FlaggedSerializer(many=True)
    churns = ValidatedChurnSerializer(many=True)
    risk_history_starts = serializers.DateField(allow_null=True)


class InterventionSerializer(serializers.ModelSerializer):
    tenant_id = serializers.CharField()
    playbook_id = serializers.CharField(allow_null=True)

    class Meta:
        model = InterventionRecord
        fields = [
            "id",
            "tenant_id",
            "playbook_id",
            "action",
            "channel",
            "date",
            "note",
            "outcome",
            "outcome_at",
            "outcome_note",
            "created_at",
            "created_by",
        ]


# Errors a founder can act on, the same from the API and the page forms (which validate with
# these serializers): what was wrong and what to use instead.
# Typed loosely: DRF declares its error messages as lazy strings or str, and a dict of str alone is not that.
DATE_ERRORS: dict[str, Any] = {"invalid": "Date has wrong format: it is not a date (use YYYY-MM-DD)."}


def _choice_errors(what: str, choices: list[str]) -> dict[str, Any]:
    return {"invalid_choice": f'"{{input}}" is not a valid choice. Unknown {what}: choose one of {", ".join(choices)}.'}


class InterventionInputSerializer(serializers.Serializer):
    tenant_id = serializers.CharField(max_length=128)
    playbook_id = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True)
    action = serializers.CharField(max_length=ACTION_MAX_CHARS)
    channel = serializers.ChoiceField(choices=Channel.choices, error_messages=_choice_errors("channel", Channel.values))
    date = serializers.DateField(required=False, help_text="Day taken (default today).", error_messages=DATE_ERRORS)
    note = serializers.CharField(max_length=NOTE_MAX_CHARS, required=False, allow_blank=True, default="")
    outcome = serializers.ChoiceField(
        choices=Outcome.choices,
        required=False,
        allow_null=True,
        error_messages=_choice_errors("outcome", Outcome.values),
    )
    outcome_at = serializers.DateField(required=False, allow_null=True, error_messages=DATE_ERRORS)


class OutcomeInputSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Outcome.choices, error_messages=_choice_errors("outcome", Outcome.values))
    outcome_at = serializers.DateField(
        required=False, allow_null=True, help_text="Day observed (default today).", error_messages=DATE_ERRORS
    )
    note = serializers.CharField(max_length=NOTE_MAX_CHARS, required=False, allow_blank=True, default="")


class ChurnSerializer(serializers.ModelSerializer):
    tenant_id = serializers.CharField()

    class Meta:
        model = ChurnRecord
        fields = ["id", "tenant_id", "date", "reason", "created_at", "created_by"]


class ChurnInputSerializer(serializers.Serializer):
    tenant_id = serializers.CharField(max_length=128)
    date = serializers.DateField(
        required=False, help_text="Day the customer was lost (default today).", error_messages=DATE_ERRORS
    )
    reason = serializers.CharField(max_length=NOTE_MAX_CHARS, required=False, allow_blank=True, default="")


class SnoozeInputSerializer(serializers.Serializer):
    tenant_id = serializers.CharField(max_length=128)
    until = serializers.DateField(
        help_text="Back on the call list on this day (after today).", error_messages=DATE_ERRORS
    )
    reason = serializers.CharField(max_length=SNOOZE_REASON_MAX_CHARS)


class InterventionQuerySerializer(serializers.Serializer):
    tenant_id = serializers.CharField(required=False, max_length=128)
    playbook_id = serializers.CharField(required=False, max_length=64)


class ChurnQuerySerializer(serializers.Serializer):
    tenant_id = serializers.CharField(required=False, max_length=128)
