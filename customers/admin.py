from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from customers.models import MetricsState, Tenant, TenantMetrics, at_risk_order, risk_level_rank
from customers.services import tenant_save


def _console_link(tenant_id: str) -> str:
    return format_html('<a href="{}">open in console</a>', reverse("customer-page", args=[tenant_id]))


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["tenant_id", "name", "kind", "risk_level", "monthly_event_limit", "first_seen_at", "console"]
    list_filter = ["kind", "metrics__risk_level"]
    search_fields = ["tenant_id", "name"]
    readonly_fields = ["first_seen_at"]
    list_select_related = ["metrics"]

    def view_on_site(self, obj: Tenant) -> str:
        # "View on site" opens the tenant's Customer page in the console.
        return reverse("customer-page", args=[obj.tenant_id])

    # Sorted by urgency (critical, high, medium), not alphabetically.
    @admin.display(description="risk level", ordering=risk_level_rank("metrics__risk_level").desc(nulls_last=True))
    def risk_level(self, obj: Tenant) -> str:
        metrics = getattr(obj, "metrics", None)
        return (metrics.risk_level or "not at risk") if metrics is not None else "not computed"

    @admin.display(description="console")
    def console(self, obj: Tenant) -> str:
        return _console_link(obj.tenant_id)

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
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
        "console",
    ]
    list_filter = ["risk_level", "has_baseline", "champion_risk", "cliff", "tenant__kind"]
    search_fields = ["tenant__tenant_id", "tenant__name"]
    list_select_related = ["tenant"]
    ordering = at_risk_order()  # most at risk first, as on the console

    def view_on_site(self, obj: TenantMetrics) -> str:
        return reverse("customer-page", args=[obj.tenant_id])

    @admin.display(description="console")
    def console(self, obj: TenantMetrics) -> str:
        return _console_link(obj.tenant_id)


@admin.register(MetricsState)
class MetricsStateAdmin(ReadOnlyAdmin):
    list_display = ["watermark_xid", "last_incremental_at", "last_full_at", "last_events_folded"]
