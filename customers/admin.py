from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from customers.models import MetricsState, Tenant, TenantMetrics


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["tenant_id", "name", "kind", "monthly_event_limit", "first_seen_at"]
    list_filter = ["kind"]
    search_fields = ["tenant_id", "name"]
    readonly_fields = ["first_seen_at"]

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        from customers.services import tenant_save

        tenant_save(tenant=obj, kind_changed="kind" in form.changed_data)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Caches are written only by the metrics engine; admin shows them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(TenantMetrics)
class TenantMetricsAdmin(ReadOnlyAdmin):
    list_display = [
        "tenant",
        "risk_level",
        "risk_signal_strength",
        "stickiness_7d",
        "stickiness_30d",
        "stickiness_delta",
        "friction_weighted_score",
        "days_since_investigation",
        "computed_at",
    ]
    list_filter = ["risk_level", "has_baseline", "champion_risk", "cliff", "tenant__kind"]
    search_fields = ["tenant__tenant_id", "tenant__name"]
    list_select_related = ["tenant"]
    ordering = ["-risk_signal_strength"]


@admin.register(MetricsState)
class MetricsStateAdmin(ReadOnlyAdmin):
    list_display = ["watermark_xid", "last_incremental_at", "last_full_at", "last_events_folded"]
