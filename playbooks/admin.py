"""Admin is where the founder edits playbooks. Every save through it is recorded in
Django's change history (LogEntry, the "History" button), and the next recompute
evaluates what was saved."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from core.admin import ReadOnlyAdmin
from events.registry import event_type_registry
from playbooks.billing import stripe_customer_map
from playbooks.churns import churn_delete, churn_problems, churn_record, churn_update, churns_delete
from playbooks.conditions import (
    METRICS,
    SQL_OPERATORS,
    condition_problems,
    condition_text,
    selectors_normalise,
    selectors_split,
)
from playbooks.models import (
    ChurnRecord,
    InterventionRecord,
    PlanChangeRecord,
    Playbook,
    PlaybookAction,
    PlaybookMatch,
    Snooze,
    StripeCustomerLink,
    StripeEvent,
    StripeEventStatus,
    TriggerCondition,
)
from playbooks.selectors import playbook_preview


class TriggerConditionForm(forms.ModelForm):
    """Rejects an unknown metric or operator, a missing or stray window, a threshold no metric
    can reach (negative, 1e308), and unknown event types or roles, with messages that say what
    to use instead (the same checks the engine applies). Type names match in any case and are
    saved in their registered spelling; roles as '<role> events'."""

    # The metric's key only in the picker (its description made the select, and so the admin
    # form, 2,155 px wide); the descriptions are the field's help text.
    metric = forms.ChoiceField(
        choices=[(key, key) for key in METRICS],
        help_text="; ".join(f"{key}: {m.description}" for key, m in METRICS.items()),
        error_messages={
            "invalid_choice": f"Unknown metric '%(value)s'. Choose one of: {', '.join(METRICS)}.",
        },
    )
    operator = forms.ChoiceField(
        choices=[(op, op) for op in SQL_OPERATORS],
        error_messages={
            "invalid_choice": f"Unknown operator '%(value)s'. Choose one of: {', '.join(SQL_OPERATORS)}.",
        },
    )

    class Meta:
        model = TriggerCondition
        fields = ["order", "metric", "event_types", "operator", "threshold", "window_days"]
        widgets = {
            "event_types": forms.TextInput(attrs={"size": 28}),
            "threshold": forms.NumberInput(attrs={"style": "width: 6em"}),
            "window_days": forms.NumberInput(attrs={"style": "width: 4em"}),
            "order": forms.NumberInput(attrs={"style": "width: 3em"}),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "metric" not in data or "operator" not in data:
            return data  # the field errors already say what is wrong
        known = [t.name for t in event_type_registry().types]
        event_types = selectors_normalise(selectors_split(data.get("event_types") or ""), known_event_types=known)
        data["event_types"] = ",".join(event_types)
        problems = condition_problems(
            metric=data["metric"],
            operator=data["operator"],
            threshold=data.get("threshold"),
            window_days=data.get("window_days"),
            event_types=event_types,
            known_event_types=known,
        )
        for field, message in problems.items():
            if field in self.fields and field not in self.errors:
                self.add_error(field, message)
        return data


class TriggerConditionInline(admin.TabularInline):
    model = TriggerCondition
    form = TriggerConditionForm
    extra = 0
    min_num = 1
    fields = ["order", "metric", "event_types", "operator", "threshold", "window_days", "reads_as"]
    readonly_fields = ["reads_as"]
    # Both names: Django makes the plural heading by appending "s" to verbose_name otherwise
    # ("TRIGGER CONDITION (ALL MUST HOLD)S").
    verbose_name = "trigger condition"
    verbose_name_plural = "trigger conditions (all must hold)"

    @admin.display(description="Reads as")
    def reads_as(self, obj: TriggerCondition) -> str:
        return condition_text(obj, registry=event_type_registry()) if obj.pk else "-"


class PlaybookActionInline(admin.StackedInline):
    model = PlaybookAction
    extra = 0
    fields = [("order", "timing", "channel"), "step", "talk_track"]
    ordering = ["order", "id"]
    verbose_name = "action"
    verbose_name_plural = "actions (in the order of 'order')"


@admin.register(Playbook)
class PlaybookAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "purpose", "risk_level", "enabled", "conditions_text", "matched_now"]
    list_filter = ["purpose", "risk_level", "enabled"]
    search_fields = ["id", "name", "notes"]
    list_editable = ["enabled"]
    fieldsets = [
        (None, {"fields": ["id", "name", "purpose", "risk_level", "enabled"]}),
        ("For the founder", {"fields": ["success_metric", "notes"]}),
        ("Who matches right now", {"fields": ["matching_now"]}),
    ]
    readonly_fields = ["matching_now"]
    inlines = [TriggerConditionInline, PlaybookActionInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Playbook]:
        return super().get_queryset(request).prefetch_related("conditions").annotate(match_count=Count("matches"))

    def get_readonly_fields(self, request: HttpRequest, obj: Playbook | None = None) -> list[str]:
        # The slug is the API id: fixed once created.
        return ["id", "matching_now"] if obj is not None else ["matching_now"]

    @admin.display(description="Conditions (all must hold)")
    def conditions_text(self, obj: Playbook) -> str:
        registry = event_type_registry()
        return (
            " AND ".join(condition_text(c, registry=registry) for c in obj.conditions.all()) or "(none: never matches)"
        )

    @admin.display(description="Matched at last recompute", ordering="match_count")
    def matched_now(self, obj: Playbook) -> int:
        return getattr(obj, "match_count", 0)

    @admin.display(description="Tenants matching the saved conditions now")
    def matching_now(self, obj: Playbook | None) -> SafeString | str:
        if obj is None or obj.pk is None:
            return "Save the playbook to see which tenants it matches."
        rows = playbook_preview(playbook=obj)
        if not rows:
            return "No tenant matches the saved conditions against the latest metrics."
        body = format_html_join(
            "",
            "<tr><td><a href='/customers/{}/'>{}</a></td><td>{}</td></tr>",
            (
                (tenant_id, tenant_id, "; ".join(f"{m['condition']}: {m['value']}" for m in measured))
                for tenant_id, measured in rows
            ),
        )
        return format_html(
            "<p>{} tenant(s), evaluated live on the latest metrics (the next recompute stores this and raises "
            "their risk level).</p><table><tr><th>Tenant</th><th>Measured</th></tr>{}</table>",
            len(rows),
            body,
        )


@admin.register(InterventionRecord)
class InterventionRecordAdmin(admin.ModelAdmin):
    list_display = ["date", "tenant", "playbook", "action", "channel", "outcome", "outcome_at"]
    list_filter = ["playbook", "channel", "outcome"]
    search_fields = ["tenant__tenant_id", "tenant__name", "action", "note"]
    raw_id_fields = ["tenant"]
    date_hierarchy = "date"
    readonly_fields = ["created_at", "created_by"]


class ChurnRecordForm(forms.ModelForm):
    """Checks a churn as the form and the API do (no future day, one churn per customer and day),
    with the same words, before anything is saved."""

    class Meta:
        model = ChurnRecord
        fields = ["tenant", "date", "reason"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("tenant") is None or data.get("date") is None:
            return data  # the field errors already say what is wrong
        problems = churn_problems(
            tenant_id=data["tenant"].tenant_id,
            day=data["date"],
            reason=(data.get("reason") or "").strip(),
            churn_id=self.instance.pk,
        )
        for field, message in problems.items():
            self.add_error(field if field in self.fields else None, message)
        return data


@admin.register(ChurnRecord)
class ChurnRecordAdmin(admin.ModelAdmin):
    """Recorded churns. Adding, editing and deleting here (one or many) go through the one churn
    service (playbooks/churns.py), so the customer's churn state and every at-risk list follow:
    deleting a customer's only churn un-churns it."""

    form = ChurnRecordForm
    list_display = ["date", "tenant", "reason", "created_by"]
    search_fields = ["tenant__tenant_id", "tenant__name", "reason"]
    raw_id_fields = ["tenant"]
    date_hierarchy = "date"
    readonly_fields = ["created_at", "created_by"]

    def save_model(self, request: HttpRequest, obj: ChurnRecord, form: Any, change: bool) -> None:
        if change:
            saved = churn_update(churn_id=obj.pk, tenant_id=obj.tenant_id, day=obj.date, reason=obj.reason)
        else:
            saved = churn_record(
                tenant_id=obj.tenant_id, day=obj.date, reason=obj.reason, created_by=request.user.get_username()
            )
        # Admin's history entry and redirect read the saved row.
        obj.pk, obj.created_at, obj.created_by, obj.reason = saved.pk, saved.created_at, saved.created_by, saved.reason

    def delete_model(self, request: HttpRequest, obj: ChurnRecord) -> None:
        churn_delete(churn_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ChurnRecord]) -> None:
        # The bulk action too: one transaction, every customer concerned settled once.
        churns_delete(churn_ids=list(queryset.values_list("pk", flat=True)))


@admin.register(Snooze)
class SnoozeAdmin(admin.ModelAdmin):
    """The founder's snoozes (made from Today or the Customer page); editing ``until`` moves the day
    the customer is back on the call list."""

    list_display = ["tenant", "until", "reason", "created_at", "created_by"]
    search_fields = ["tenant__tenant_id", "tenant__name", "reason"]
    raw_id_fields = ["tenant"]
    date_hierarchy = "until"
    readonly_fields = ["created_at", "created_by"]


@admin.register(PlaybookMatch)
class PlaybookMatchAdmin(ReadOnlyAdmin):
    """Written by the recompute hook; shown, never edited."""

    list_display = ["playbook", "tenant", "first_matched_at", "matched_at"]
    list_filter = ["playbook"]
    search_fields = ["tenant__tenant_id", "tenant__name"]


@admin.register(StripeCustomerLink)
class StripeCustomerLinkAdmin(admin.ModelAdmin):
    """Stripe customers and their tenants; unmapped ones first. Saving a mapping records the
    customer's waiting churns and plan changes (playbooks.billing.stripe_customer_map)."""

    list_display = ["stripe_customer_id", "tenant", "hint", "waiting_events", "first_seen_at"]
    list_filter = [("tenant", admin.EmptyFieldListFilter)]
    search_fields = ["stripe_customer_id", "hint", "tenant__tenant_id", "tenant__name"]
    autocomplete_fields = ["tenant"]
    readonly_fields = ["hint", "first_seen_at", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: StripeCustomerLink | None = None) -> list[str]:
        # Stripe names the customer; only its tenant is the founder's to set.
        return [*self.readonly_fields, "stripe_customer_id"] if obj is not None else self.readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[StripeCustomerLink]:
        # One subquery per page (ops_stripe_event_customer index), not a query per row.
        waiting = (
            StripeEvent.objects.filter(stripe_customer_id=OuterRef("pk"), status=StripeEventStatus.UNMAPPED)
            .values("stripe_customer_id")
            .annotate(n=Count("event_id"))
            .values("n")
        )
        # Unmapped customers (tenant NULL sorts last ascending, so descending puts them first).
        return (
            super()
            .get_queryset(request)
            .annotate(waiting=Coalesce(Subquery(waiting), 0))
            .order_by(F("tenant_id").desc(nulls_first=True), "stripe_customer_id")
        )

    @admin.display(description="events waiting")
    def waiting_events(self, obj: StripeCustomerLink) -> int:
        return int(getattr(obj, "waiting", 0))

    def save_model(self, request: HttpRequest, obj: StripeCustomerLink, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if obj.tenant_id:
            recorded = stripe_customer_map(stripe_customer_id=obj.stripe_customer_id, tenant_id=obj.tenant_id)
            if recorded:
                self.message_user(request, f"{recorded} waiting Stripe event(s) of this customer were recorded.")


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    """Every verified Stripe event received (read-only: Stripe is the source)."""

    list_display = ["event_id", "event_type", "stripe_customer_id", "status", "tenant", "created_at"]
    list_filter = ["status", "event_type"]
    search_fields = ["event_id", "stripe_customer_id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: StripeEvent | None = None) -> bool:
        return False


@admin.register(PlanChangeRecord)
class PlanChangeRecordAdmin(admin.ModelAdmin):
    list_display = ["tenant", "date", "previous_plan", "plan", "stripe_event_id"]
    search_fields = ["tenant__tenant_id", "plan", "previous_plan"]
