from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin import ReadOnlyAdmin, SingletonAdmin
from events.classification import user_agent_pattern_problem
from events.models import (
    Event,
    EventType,
    InternalUserRule,
    Milestone,
    MorningDigestDay,
    MorningDigestSettings,
    NorthStarSettings,
    UserAgentPattern,
)
from events.registry import CLASSIFICATION_FIELDS, ENTRY_FIELDS
from events.rules import (
    classification_rules_changed,
    internal_user_rule_delete,
    internal_user_rule_save,
    user_agent_pattern_delete,
    user_agent_pattern_save,
)


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    """Validation is the model's (events/models/vocabulary.py), the same the API applies: a weight
    outside 0-100, an unknown signal or role, or a name that exists in another case is a
    form error. The Vocabulary page (/vocabulary/) links here to add a name it has seen."""

    list_display = [field for field in ENTRY_FIELDS if field != "description"]
    list_filter = [
        "category",
        "core_value",
        "friction_signal",
        "north_star_role",
        "page_view",
        "counts_as_real_interaction",
    ]
    list_editable = ["friction_weight", "engagement_weight", "counts_as_real_interaction"]
    search_fields = ["name", "label", "description"]

    def get_readonly_fields(self, request: HttpRequest, obj: EventType | None = None) -> list[str]:
        # The name is the key events refer to: renaming it would orphan them (and make a copy).
        return ["name"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: EventType, form: Any, change: bool) -> None:
        # A type the founder saved is theirs, an example no more: texts may name it unsent.
        obj.is_example = False
        super().save_model(request, obj, form, change)
        if not change or CLASSIFICATION_FIELDS & set(form.changed_data):
            # A new name un-parks its history; what counts or what is a page view changed:
            # history is reclassified (on commit) either way.
            classification_rules_changed()


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """Read-only: the event table is the authoritative, append-only record."""

    list_display = [
        "occurred_at",
        "event_type",
        "tenant_id",
        "user_id",
        "is_real",
        "exclusion_reason",
        "friction_signal",
    ]
    list_filter = ["is_real", "exclusion_reason", "friction_signal", "event_type"]
    search_fields = ["tenant_id", "user_id", "session_id", "=event_id"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False  # a count(*) over millions of events on every page is too slow


# --- North star ------------------------------------------------------------------------------
class _RuleAdmin(admin.ModelAdmin):
    """Saves and deletes go through the services: each edit reclassifies history on commit."""

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._delete(list(queryset))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self._delete([obj])

    def _delete(self, objs: list[Any]) -> None:
        raise NotImplementedError

    def response_post_save_change(self, request: HttpRequest, obj: Any) -> Any:
        messages.info(request, "History is being reclassified with the new rules.")
        return super().response_post_save_change(request, obj)


@admin.register(InternalUserRule)
class InternalUserRuleAdmin(_RuleAdmin):
    list_display = ["kind", "value", "note", "created_at"]
    list_filter = ["kind"]
    search_fields = ["value", "note"]

    def save_model(self, request: HttpRequest, obj: InternalUserRule, form: Any, change: bool) -> None:
        internal_user_rule_save(rule=obj)

    def _delete(self, objs: list[Any]) -> None:
        internal_user_rule_delete(rules=objs)


class UserAgentPatternForm(forms.ModelForm):
    class Meta:
        model = UserAgentPattern
        fields = ["pattern", "reason", "description", "is_active"]

    def clean_pattern(self) -> str:
        pattern = self.cleaned_data["pattern"]
        problem = user_agent_pattern_problem(pattern)
        if problem:
            raise ValidationError(problem)
        return pattern


@admin.register(UserAgentPattern)
class UserAgentPatternAdmin(_RuleAdmin):
    form = UserAgentPatternForm
    list_display = ["pattern", "reason", "description", "is_active"]
    list_filter = ["reason", "is_active"]
    search_fields = ["pattern", "description"]

    def save_model(self, request: HttpRequest, obj: UserAgentPattern, form: Any, change: bool) -> None:
        user_agent_pattern_save(pattern=obj)

    def _delete(self, objs: list[Any]) -> None:
        user_agent_pattern_delete(patterns=objs)


@admin.register(NorthStarSettings)
class NorthStarSettingsAdmin(SingletonAdmin):
    list_display = ["__str__", "dau_target", "mau_target"]


@admin.register(MorningDigestSettings)
class MorningDigestSettingsAdmin(SingletonAdmin):
    """The morning digest: on or off, from which hour, to which channels (one row)."""

    list_display = ["__str__", "enabled", "send_hour", "slack", "email"]


@admin.register(MorningDigestDay)
class MorningDigestDayAdmin(admin.ModelAdmin):
    """Each day's digest: sent, or skipped and why (written by the digest only)."""

    list_display = ["day", "state", "note", "updated_at"]
    list_filter = ["state"]
    readonly_fields = ["day", "state", "note", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Milestone)
class MilestoneAdmin(admin.ModelAdmin):
    list_display = ["name", "target_date", "users", "max_days", "order"]
    list_editable = ["target_date", "users", "max_days", "order"]
