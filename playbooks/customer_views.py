"""The customers' console pages: the Customers list, one Customer, and the at-risk CSV.

They read through customers/selectors.py, the same functions the API calls, so a
number on a page and in ``/ops/customers...`` can never differ. Bad query
parameters get a 400 page that says which one and why. They show each customer's
follow-up, the expansion candidates and the Customer page's playbooks panel, so they
live in the playbooks app, one layer above the customers they read (the follow-ups
from playbooks/call_list.py, as the at-risk API gives them). URLs and templates are
the customers' (``customers-page``, ``customer-page``, ``templates/customers/``).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.core.paginator import EmptyPage, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.safestring import SafeString

from core.charts import HLine, Marker, Series, bar_chart, line_chart
from core.pages import staff_required
from customers.lifecycle_views import lifecycle_chart, lifecycle_legend
from customers.metrics.contacts import contacts_people, contacts_words, tenant_contacts_get
from customers.metrics.friction import FRICTION_CAP_PER_DAY
from customers.metrics.risk import component_help, component_title
from customers.metrics.texts import engagement_formula_text, vocabulary_facts
from customers.metrics.vocabulary import Vocabulary, vocabulary_current
from customers.models import RiskLevel, Tenant, TenantKind, TenantMetrics
from customers.read_cache import cached_per_check, cached_per_recompute, page_per_check, values_lazily
from customers.selectors import (
    CustomerFilters,
    customers_list,
    stickiness_series,
    tenant_change_days,
    tenant_events_page,
    tenant_metrics_get,
    tenants_at_risk,
)
from playbooks.call_list import call_list_follow_ups
from playbooks.selectors import customer_playbook_panel, expansion_candidates

PAGE_SIZE = 50
TIMELINE_PAGE_SIZE = 50
# The timeline's first page is short so the Customer page stays about two screens; "Older events"
# pages on by the full page size from where it ends.
TIMELINE_FIRST_PAGE_SIZE = 10
CSV_MAX_ROWS = 10_000
# Full-width charts get a wider drawing so their text stays the size of the page's.
CHART_WIDTH = 960

# Sortable columns of the page: query value -> the selector's ordering key.
SORT_COLUMNS: dict[str, str] = {
    "tenant": "tenant_id",
    # Level, then strength within a level: "-level" is the at-risk list's order (critical first).
    "level": "risk_level",
    "signal": "risk_signal_strength",
    "stickiness_7d": "stickiness_7d",
    "stickiness_30d": "stickiness_30d",
    "delta": "stickiness_delta",
    "friction": "friction_score",
    "investigation": "days_since_investigation",
    "last_seen": "last_seen_at",
}
DEFAULT_SORT = "-level"
# Columns whose first click sorts descending (the most at risk, the most recent first).
DESCENDING_FIRST = ("level", "signal", "friction", "investigation", "last_seen")


class CustomerListForm(forms.Form):
    q = forms.CharField(required=False, max_length=128, label="Search tenant")
    level = forms.ChoiceField(
        required=False,
        label="Level",
        choices=[("", "Any level"), ("at_risk", "At risk (any level)"), *RiskLevel.choices, ("none", "Not at risk")],
    )
    kind = forms.ChoiceField(
        required=False, label="Kind", choices=[*TenantKind.choices, ("all", "All kinds")], initial=TenantKind.CUSTOMER
    )
    sort = forms.ChoiceField(
        required=False,
        choices=[(key, key) for name in SORT_COLUMNS for key in (name, f"-{name}")],
        widget=forms.HiddenInput,
    )
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)


def _sort_links(params: dict[str, Any], current: str) -> dict[str, dict[str, str]]:
    """For each sortable column: the link that sorts by it (toggling direction when it is the
    current sort) and its aria-sort value."""
    links = {}
    active = current.lstrip("-")
    for name in SORT_COLUMNS:
        if name == active:
            next_sort = name if current.startswith("-") else f"-{name}"
            aria = "descending" if current.startswith("-") else "ascending"
        else:
            next_sort = f"-{name}" if name in DESCENDING_FIRST else name
            aria = "none"
        query = {k: v for k, v in params.items() if v and k not in ("sort", "page")}
        query["sort"] = next_sort
        links[name] = {"href": "?" + urlencode(query), "aria": aria}
    return links


# Expansion candidates listed above the customer list (the newest matches first).
EXPANSION_LISTED = 10


@staff_required
def customers_page(request: HttpRequest) -> HttpResponse:
    form = CustomerListForm(request.GET)
    if not form.is_valid():
        return render(request, "customers/list.html", {"form": form, "page": None}, status=400)
    data = form.cleaned_data
    sort = data["sort"] or DEFAULT_SORT
    descending = sort.startswith("-")
    ordering = ("-" if descending else "") + SORT_COLUMNS[sort.lstrip("-")]
    level = data["level"] or None
    filters = CustomerFilters(
        kind=None if data["kind"] == "all" else (data["kind"] or TenantKind.CUSTOMER),
        risk_level=None if level == "at_risk" else level,
        at_risk=True if level == "at_risk" else None,
        search=data["q"].strip(),
    )
    paginator = Paginator(customers_list(filters=filters, ordering=ordering), PAGE_SIZE)
    try:
        page = paginator.page(data["page"] or 1)
    except EmptyPage as exc:
        raise Http404(f"There is no page {data['page']}: the list has {paginator.num_pages}.") from exc
    rows: list[Any] = list(page.object_list)
    # Each row's follow-up state (churned, snoozed, in progress ...), as the at-risk API says it:
    # a churned customer reads "churned", never "not at risk". A constant number of queries.
    follow_ups = call_list_follow_ups(rows=rows, today=timezone.localdate())
    for row in rows:
        row.follow_up = follow_ups.get(row.tenant_id)
    page.object_list = rows
    params = {k: data[k] for k in ("q", "level", "kind") if data[k]}
    params["sort"] = sort
    return render(
        request,
        "customers/list.html",
        {
            "form": form,
            "page": page,
            "sort": sort,
            "sort_links": _sort_links(params, sort),
            "page_query": urlencode(params),
            "lifecycle_chart": lifecycle_chart(),
            "lifecycle_legend": lifecycle_legend(),
            "expansion": expansion_candidates(limit=EXPANSION_LISTED),
        },
    )


def _csv_safe(value: Any) -> Any:
    """Neutralise spreadsheet formulas: tenant ids and names come from the customer's product."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


CSV_COLUMNS = [
    "tenant_id",
    "name",
    "risk_level",
    "risk_signal_strength",
    "primary_risk_reason",
    "secondary_signals",
    "stickiness_7d",
    "stickiness_30d",
    "stickiness_delta",
    "days_since_investigation",
    "friction_weighted_score",
    "friction_events_7d",
    "top_friction_type",
    "first_intervention",
    "first_intervention_priority",
    "triggering_signals",
    "recent_changes",
    "decay_correlation",
    "computed_at",
    # The follow-up: its state word (to_call, in_progress, snoozed, won_back, churned), and the
    # churn day with whether the customer came back after it.
    "follow_up",
    "churned_on",
    "came_back",
    # The score in force: the adopted churn model's chance of churn within 30 days and what raised it most
    # (empty while the heuristic orders the list), and which score ordered the row.
    "churn_probability_30d",
    "ranking_model",
    "churn_drivers",
    # What is at stake: the monthly recurring revenue (and its currency) and the expected loss, as the API.
    "mrr",
    "mrr_currency",
    "expected_loss",
    # Whom to call: each person once with their roles, email and the day last seen (customers/metrics/contacts.py).
    "contacts",
]


def _csv_row(m: TenantMetrics, follow_up: dict[str, Any] | None, contacts: list[dict[str, Any]]) -> list[Any]:
    first = m.interventions[0] if m.interventions else {}
    follow_up = follow_up or {}
    churned_on = follow_up.get("churned_on")
    return [
        m.tenant_id,
        m.tenant.name,
        m.risk_level,
        m.risk_signal_strength,
        m.primary_risk_reason,
        "; ".join(m.secondary_signals),
        m.stickiness_7d,
        m.stickiness_30d,
        "" if m.stickiness_delta is None else m.stickiness_delta,
        "" if m.days_since_investigation is None else m.days_since_investigation,
        m.friction_weighted_score,
        m.friction_events_7d,
        m.top_friction_type,
        first.get("suggested_action", ""),
        first.get("priority", ""),
        "; ".join(first.get("triggering_signals", [])),
        "; ".join(m.recent_changes),
        m.decay_correlation or "",
        m.computed_at.isoformat(),
        follow_up.get("state", ""),
        churned_on.isoformat() if churned_on else "",
        "yes" if follow_up.get("came_back") else "",
        "" if m.churn_probability_30d is None else m.churn_probability_30d,
        m.ranking_model,
        "; ".join(d["words"] for d in m.churn_drivers or []),
        "" if m.mrr is None else m.mrr,
        _mrr_currency(m),
        "" if m.expected_loss is None else round(m.expected_loss, 2),
        contacts_words(contacts),
    ]


def _mrr_currency(m: TenantMetrics) -> str:
    revenue = getattr(m.tenant, "revenue", None) if m.mrr is not None else None
    return revenue.currency if revenue is not None else ""


@staff_required
def at_risk_csv(request: HttpRequest) -> HttpResponse:
    """The at-risk list (``tenants_at_risk``, as ``GET /ops/customers/at-risk``) as CSV: critical first,
    then high, then medium, the strongest signal first within a level."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y-%m-%d")
    response["Content-Disposition"] = f'attachment; filename="customers-at-risk-{stamp}.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    rows = tenants_at_risk(limit=CSV_MAX_ROWS)
    follow_ups = call_list_follow_ups(rows=rows, today=timezone.localdate())
    contacts = tenant_contacts_get(tenant_ids=[row.tenant_id for row in rows])
    for metrics in rows:
        values = _csv_row(metrics, follow_ups.get(metrics.tenant_id), contacts.get(metrics.tenant_id, []))
        writer.writerow([_csv_safe(value) for value in values])
    return response


def _stickiness_chart(series: list[dict[str, Any]], changes: list[tuple[date, str]]) -> SafeString:
    """``changes``: (day, the change type's label)."""
    by_day: dict[date, list[str]] = defaultdict(list)
    for day, label in changes:
        by_day[day].append(label)
    return line_chart(
        [
            Series("7-day stickiness", [(p["day"], p["stickiness_7d"]) for p in series]),
            Series("30-day baseline (per week)", [(p["day"], p["stickiness_30d"]) for p in series], dashed=True),
        ],
        title="Stickiness: last 7 days against the 30-day weekly baseline, 60 days",
        y_label="weighted engagement / week",
        markers=[Marker(day, ", ".join(labels)) for day, labels in sorted(by_day.items())],
        width=CHART_WIDTH,
        height=260,
    )


def _component_for_page(component: dict[str, Any], vocabulary: Vocabulary) -> dict[str, Any]:
    """A stored risk component with its title and what it measures, in the vocabulary's words."""
    name = str(component.get("signal", ""))
    return {
        **component,
        "title": component.get("title") or component_title(name, vocabulary=vocabulary),
        "help": component_help(name, max_points=float(component.get("max_points") or 0), vocabulary=vocabulary),
    }


def _metrics_parts(*, tenant_id: str, metrics: TenantMetrics) -> dict[str, Any]:
    """The charts and explanations of the customer's metrics (the page's kept part renders them)."""
    vocabulary = vocabulary_current()
    series = stickiness_series(tenant_id=tenant_id, as_of=metrics.as_of)
    changes = [(day, vocabulary.label(t)) for day, t in tenant_change_days(tenant_id=tenant_id, as_of=metrics.as_of)]
    components = [_component_for_page(component, vocabulary) for component in metrics.risk_components]
    return {
        "stickiness_chart": _stickiness_chart(series, changes),
        "friction_chart": bar_chart(
            [(p["day"], p["friction_score"]) for p in series],
            title=f"Daily friction score, 60 days (each day capped at {FRICTION_CAP_PER_DAY:g})",
            y_label="friction",
            hlines=[HLine(FRICTION_CAP_PER_DAY, "day cap")],
            width=CHART_WIDTH,
            height=200,
        ),
        "changes": changes,
        "components": components,
        "scored_components": sum(1 for component in components if component.get("points")),
        "engagement_formula": engagement_formula_text(vocabulary),
        "core_labels": vocabulary_facts(vocabulary)["core_labels"],
    }


METRICS_PARTS = (
    "stickiness_chart",
    "friction_chart",
    "changes",
    "components",
    "scored_components",
    "engagement_formula",
    "core_labels",
)


def _customer_panels(panel: Any) -> list[dict[str, Any]]:
    """The playbooks' sections of the Customer page (templates/customers/detail.html's ``panels``): the
    follow-up and the founder's forms go on the first screen (``actions_template``), the longer record
    further down (``template``); both get the same ``panel``, computed once."""
    return [
        {
            "template": "playbooks/partials/customer_panel.html",
            "actions_template": "playbooks/partials/customer_actions.html",
            "panel": panel,
        }
    ]


@staff_required
def customer_page(request: HttpRequest, tenant_id: str) -> HttpResponse:
    before = request.GET.get("before") or None
    # Kept whole per version check and minute, as the tenant and the timeline are (read_cache.page_per_check).
    return page_per_check(
        request,
        key=f"customer:{tenant_id}:{before}",
        render=lambda extra: _customer_page_render(request, tenant_id=tenant_id, before=before, extra=extra),
    )


def _customer_page_render(
    request: HttpRequest, *, tenant_id: str, before: str | None, extra: dict[str, Any]
) -> HttpResponse:
    """The Customer page rendered afresh (a 404 for an unknown customer, a 400 for a bad ``before``):
    read only when the page's kept HTML is not there, so a view served from it reads nothing."""
    # Live (edited in admin; events keep arriving), read as often as the version.
    tenant = cached_per_check(f"customer:tenant:{tenant_id}", lambda: get_object_or_404(Tenant, tenant_id=tenant_id))
    try:
        timeline = cached_per_check(
            f"customer:timeline:{tenant_id}:{before}",
            lambda: tenant_events_page(
                tenant_id=tenant_id, before=before, limit=TIMELINE_PAGE_SIZE if before else TIMELINE_FIRST_PAGE_SIZE
            ),
        )
    except ValueError:
        return render(
            request,
            "customers/bad_request.html",
            {
                "problem": "The 'before' parameter is not a timeline position from this page. Start from the newest events."
            },
            status=400,
        )
    # The metrics, charts and panels change only with a recompute or a founder action: read once per
    # version, and built only when the page's kept part is rendered (templates/customers/detail.html).
    metrics: Any = SimpleLazyObject(
        lambda: cached_per_recompute(f"customer:metrics:{tenant_id}", lambda: tenant_metrics_get(tenant_id=tenant_id))
    )
    panel: Any = SimpleLazyObject(lambda: customer_playbook_panel(tenant_id))
    context: dict[str, Any] = {
        "tenant": tenant,
        "metrics": metrics,
        "timeline": timeline,
        "before": before,
        "panels": SimpleLazyObject(lambda: _customer_panels(panel)),
        # The header reads its follow-up: a customer who came back after a churn is not called churned.
        "playbook_panel": panel,
        # Written by the recompute: read only where the page shows it.
        "people": SimpleLazyObject(lambda: contacts_people(tenant_contacts_get(tenant_ids=[tenant_id])[tenant_id])),
    }
    # Read only where the template has metrics to show.
    context.update(values_lazily(lambda: _metrics_parts(tenant_id=tenant_id, metrics=metrics), METRICS_PARTS))
    return render(request, "customers/detail.html", {**context, **extra})
