from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils import timezone

from events.models import ApiKey, Event, EventType


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "category",
        "friction_signal",
        "friction_weight",
        "engagement_weight",
        "counts_as_real_interaction",
    ]
    list_filter = ["category", "counts_as_real_interaction"]
    list_editable = ["friction_weight", "engagement_weight", "counts_as_real_interaction"]
    search_fields = ["name", "description"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "scope", "prefix", "is_automation", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["scope", "is_automation", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    fields = ["name", "scope", "is_automation", "prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: object, change: bool) -> None:
        if not change:
            from events.services import api_key_create

            _, raw_key = api_key_create(name=obj.name, scope=obj.scope, is_automation=obj.is_automation)
            messages.warning(request, f"Copy this key now; it is not stored and will not be shown again: {raw_key}")
            return
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: object) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())  # type: ignore[attr-defined]
        self.message_user(request, f"Revoked {count} key(s).")


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
