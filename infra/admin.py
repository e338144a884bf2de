"""Admin: the limits (one editable row) and the measured snapshots (read-only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from core.admin import SingletonAdmin
from infra.models import ApiRequestCount, InfraLimitSettings, InfraSnapshot
from infra.projection import GB, MB


@admin.register(InfraLimitSettings)
class InfraLimitSettingsAdmin(SingletonAdmin):
    """A singleton: the list view goes straight to the one row."""

    fields = ("db_storage_limit_gb", "redis_memory_limit_mb", "updated_at")
    readonly_fields = ("updated_at",)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        row, _ = InfraLimitSettings.objects.get_or_create(pk=InfraLimitSettings.SINGLETON_PK)
        return HttpResponseRedirect(reverse("admin:infra_infralimitsettings_change", args=[row.pk]))


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Measurements are facts: nobody edits or adds them by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(InfraSnapshot)
class InfraSnapshotAdmin(_ReadOnlyAdmin):
    list_display = (
        "taken_at",
        "db_size_gb",
        "events_table_gb",
        "redis_used_mb",
        "events_received_24h",
        "api_requests_24h",
        "redis_reason",
    )
    date_hierarchy = "taken_at"

    @admin.display(description="database (GB)")
    def db_size_gb(self, obj: InfraSnapshot) -> str:
        return f"{obj.db_size_bytes / GB:.3f}"

    @admin.display(description="ops_events (GB)")
    def events_table_gb(self, obj: InfraSnapshot) -> str:
        return f"{obj.events_table_bytes / GB:.3f}"

    @admin.display(description="redis used (MB)")
    def redis_used_mb(self, obj: InfraSnapshot) -> str:
        return "-" if obj.redis_used_memory_bytes is None else f"{obj.redis_used_memory_bytes / MB:.1f}"


@admin.register(ApiRequestCount)
class ApiRequestCountAdmin(_ReadOnlyAdmin):
    list_display = ("hour", "count")
    date_hierarchy = "hour"
