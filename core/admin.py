"""core's tables in admin: API keys (created here once, the raw value shown that once; revoked by a
date) and the notifications sent, with their delivery results."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from core.models import AlertNotification, ApiKey, DeliveryState
from core.notifications import DELIVER_TASK
from core.services import api_key_create
from core.signals import api_key_automation_changed
from core.tasks import task_queue


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows only the code writes (the events, the metrics engine's caches): admin shows them, never edits them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class SingletonAdmin(admin.ModelAdmin):
    """Settings kept in one row: added while there is none, never deleted (the code reads that row)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not self.model._default_manager.exists()

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "scope", "prefix", "is_automation", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["scope", "is_automation", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    fields = [
        "name",
        "scope",
        "is_automation",
        "allowed_origins",
        "rate_limit_per_minute",
        "park_unregistered",
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    actions = ["revoke"]

    def get_form(self, request: HttpRequest, obj: ApiKey | None = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if "revoked_at" in form.base_fields:
            form.base_fields["revoked_at"].help_text = (
                f"Set to revoke the key; every web process refuses it within {settings.API_KEY_CACHE_SECONDS:g} "
                "seconds (API_KEY_CACHE_SECONDS)."
            )
        return form

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if not change:
            created, raw_key = api_key_create(name=obj.name, scope=obj.scope, is_automation=obj.is_automation)
            ApiKey.objects.filter(pk=created.pk).update(
                allowed_origins=obj.allowed_origins,
                rate_limit_per_minute=obj.rate_limit_per_minute,
                park_unregistered=obj.park_unregistered,
            )
            messages.warning(request, f"Copy this key now; it is not stored and will not be shown again: {raw_key}")
            return
        super().save_model(request, obj, form, change)
        if "is_automation" in form.changed_data:
            api_key_automation_changed.send(sender=ApiKey)

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: object) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())  # type: ignore[attr-defined]
        self.message_user(
            request,
            f"Revoked {count} key(s); they stop working within {settings.API_KEY_CACHE_SECONDS:g} seconds.",
        )


@admin.register(AlertNotification)
class AlertNotificationAdmin(admin.ModelAdmin):
    """Every alert and check-in sent (or not), with its delivery result."""

    list_display = ["created_at", "kind", "channel", "status_from", "status_to", "state", "attempts", "sent_at"]
    list_filter = ["kind", "channel", "state"]
    search_fields = ["subject", "body", "last_error"]
    readonly_fields = [f.name for f in AlertNotification._meta.fields]
    actions = ["retry_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Retry delivery now (failed or waiting ones)")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[AlertNotification]) -> None:
        ids = list(queryset.exclude(state=DeliveryState.SENT).values_list("pk", flat=True))
        queryset.filter(pk__in=ids).update(state=DeliveryState.RETRYING, next_attempt_at=None, attempts=0)
        for pk in ids:
            task_queue(DELIVER_TASK, pk)
        self.message_user(request, f"Queued {len(ids)} notification(s) for delivery.")
