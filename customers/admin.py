from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from core.admin import ReadOnlyAdmin
from customers.churn import churn_came_back
from customers.metrics.risk import RISK_COMPONENTS
from customers.metrics.weights import (
    NOT_A_NUMBER,
    WEIGHT_SCALE_HELP,
    risk_weights_activate,
    risk_weights_problems,
)
from customers.models import (
    MetricsState,
    RiskWeights,
    RoleWording,
    Tenant,
    TenantMetrics,
    TenantRevenue,
    at_risk_order,
    risk_level_rank,
)
from customers.revenue import RevenueInputError, currency_clean, mrr_clean, tenant_founder_revenue_set
from customers.services import tenant_save


def _console_link(tenant_id: str) -> str:
    return format_html('<a href="{}">open in console</a>', reverse("customer-page", args=[tenant_id]))


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["tenant_id", "name", "kind", "risk_level", "monthly_event_limit", "first_seen_at", "console"]
    list_filter = ["kind", "metrics__risk_level"]
    search_fields = ["tenant_id", "name"]
    # The churn state is set only by recording or deleting a churn (playbooks/churns.py), so the
    # customer's lists follow it; typed in here, it would disagree with the churns recorded.
    readonly_fields = ["first_seen_at", "churned_at"]
    list_select_related = ["metrics"]

    def view_on_site(self, obj: Tenant) -> str:
        # "View on site" opens the tenant's Customer page in the console.
        return reverse("customer-page", args=[obj.tenant_id])

    # Sorted by urgency (critical, high, medium), not alphabetically.
    @admin.display(description="risk level", ordering=risk_level_rank("metrics__risk_level").desc(nulls_last=True))
    def risk_level(self, obj: Tenant) -> str:
        metrics = getattr(obj, "metrics", None)
        if metrics is None:
            return "not computed"
        came_back = churn_came_back(churned_on=obj.churned_at, last_seen_at=metrics.last_seen_at)
        if obj.churned_at is not None and not came_back:
            return f"churned {obj.churned_at.isoformat()}"  # never "not at risk"
        return metrics.risk_level or "not at risk"

    @admin.display(description="console")
    def console(self, obj: Tenant) -> str:
        return _console_link(obj.tenant_id)

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        tenant_save(tenant=obj, kind_changed="kind" in form.changed_data)


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


def _component_fields() -> dict[str, forms.Field]:
    """One form field per risk component, declared on the class so admin renders them."""
    return {
        f"max_{component.name}": forms.FloatField(
            label=f"{component.name} (max points)",
            required=False,
            error_messages={"invalid": NOT_A_NUMBER},
            help_text=WEIGHT_SCALE_HELP.format(default=component.max_points),
        )
        for component in RISK_COMPONENTS
    }


class _RiskWeightsFormBase(forms.ModelForm):
    """One field per risk component (its maximum points, 0-100); the JSON is assembled from them
    and checked by ``risk_weights_problems``, the service's own validation and words."""

    class Meta:
        model = RiskWeights
        fields = ["source", "note"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = self.instance.weights if isinstance(self.instance.weights, dict) else {}
        for component in RISK_COMPONENTS:
            self.fields[f"max_{component.name}"].initial = stored.get(component.name, component.max_points)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # A field left empty is a component left out: it keeps its default.
        weights = {
            c.name: cleaned[f"max_{c.name}"] for c in RISK_COMPONENTS if cleaned.get(f"max_{c.name}") is not None
        }
        for name, problem in risk_weights_problems(weights).items():
            self.add_error(f"max_{name}" if f"max_{name}" in self.fields else None, problem)
        self.instance.weights = weights
        return cleaned


# Declared, not added in __init__: admin lays its form out from the class's fields, and a field it
# does not render is a required field missing from every POST ("Please correct the errors below").
RiskWeightsForm = type("RiskWeightsForm", (_RiskWeightsFormBase,), _component_fields())


@admin.register(RiskWeights)
class RiskWeightsAdmin(admin.ModelAdmin):
    """Versions of the risk components' maxima. Editing one the engine uses, or making another one
    active, recomputes every tenant at the next run; "Make active" adopts or reverts in one click."""

    form = RiskWeightsForm
    list_display = ["version", "source", "is_active", "weights", "note", "created_by", "created_at"]
    readonly_fields = ["version", "is_active", "created_by", "created_at"]
    actions = ["make_active"]

    def save_model(self, request: HttpRequest, obj: RiskWeights, form: Any, change: bool) -> None:
        if not change:
            latest = RiskWeights.objects.order_by("-version").first()
            obj.version = (latest.version + 1) if latest else 1
            obj.created_by = request.user.get_username()
            obj.is_active = False  # a new version is adopted with "Make active"
        super().save_model(request, obj, form, change)

    @admin.action(description="Make active (the engine uses it from the next recompute)")
    def make_active(self, request: HttpRequest, queryset: QuerySet[RiskWeights]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one version to make active.", messages.ERROR)
            return
        try:
            chosen = risk_weights_activate(version=queryset.get().version)
        except ValueError as error:
            self.message_user(request, f"Not activated: {error}", messages.ERROR)
            return
        self.message_user(request, f"Version {chosen.version} is active from the next recompute.")


@admin.register(RoleWording)
class RoleWordingAdmin(admin.ModelAdmin):
    """The founder's own words for a role; used only while exactly ``for_types`` hold the role."""

    list_display = ["role", "text", "for_types"]


class TenantRevenueForm(forms.ModelForm):
    """The founder's override, checked like every other source (a negative amount or an unknown
    currency is a form error, never a 500)."""

    class Meta:
        model = TenantRevenue
        fields = ["tenant", "founder_mrr", "founder_currency"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("founder_mrr") is not None:
            try:
                mrr_clean(data["founder_mrr"])
                data["founder_currency"] = currency_clean(data.get("founder_currency") or "")
            except RevenueInputError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return data


@admin.register(TenantRevenue)
class TenantRevenueAdmin(admin.ModelAdmin):
    form = TenantRevenueForm
    list_display = ["tenant", "mrr", "currency", "source", "plan", "stripe_mrr", "traits_mrr", "founder_mrr"]
    list_filter = ["source", "currency"]
    search_fields = ["tenant__tenant_id", "tenant__name"]
    readonly_fields = ["mrr", "currency", "source", "stripe_mrr", "stripe_currency", "traits_mrr", "plan", "updated_at"]
    raw_id_fields = ["tenant"]

    def get_readonly_fields(self, request: HttpRequest, obj: TenantRevenue | None = None) -> list[str]:
        return [*self.readonly_fields, "tenant"] if obj is not None else list(self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: TenantRevenue, form: Any, change: bool) -> None:
        # Through the one service: the figure in force, the day's history row and the metrics row move together.
        tenant_founder_revenue_set(tenant=obj.tenant, mrr=obj.founder_mrr, currency=obj.founder_currency)
