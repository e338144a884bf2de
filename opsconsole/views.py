"""The Today page (``/``): the one page the founder opens in the morning.

It lives in the project package, not in an app, because it reads every app
(events: the north star and alerts; customers: who to call; infra: days to
limit) and owns none of their data. Every number comes from the same selector
the API and the exporter call, and the page costs a constant number of queries
whatever the number of tenants (tests/test_today.py counts them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from core.charts import HLine, Series, line_chart
from core.models import AlertNotification, DeliveryState
from core.pages import staff_required
from customers.failures import recompute_failure_get
from customers.lifecycle_views import lifecycle_chart, lifecycle_legend
from customers.metrics.contacts import contacts_people, tenant_contacts_get
from customers.read_cache import cached_per_check, cached_per_recompute, page_per_check, values_lazily
from customers.selectors import metrics_freshness, real_users_daily, revenue_figures
from events.alerts import MESSAGES
from events.models import AlertState
from events.selectors import Status, north_star_targets, real_users_summary
from events.vocabulary import vocabulary_mismatch
from infra.projection import LEVEL_CRITICAL, LEVEL_WARNING
from infra.selectors import infra_overview
from playbooks.call_list import at_risk_answer, call_list_build
from playbooks.selectors import SNOOZE_DEFAULT_DAYS
from playbooks.services import SNOOZE_MAX_DAYS

TODAY_AT_RISK = 10
# How many at-risk customers Today reads to fill its ten rows when some are snoozed or won back.
TODAY_AT_RISK_READ = 30
DAU_CHART_DAYS = 30
DAU_CHART_WIDTH = 480
RESOURCE_NAMES = {"db_storage": "Database storage", "redis_memory": "Redis memory"}
# The status word shown next to the big number (the alert texts' own words).
STATUS_WORDS = {
    Status.ACTIVE: "HEALTHY",
    Status.WARNING: "WARNING",
    Status.CRITICAL: "ALERT",
    Status.NO_USERS_YET: "NO REAL USERS YET",
}


def _playbook_labels(entry: dict[str, Any]) -> list[str]:
    """Matched playbooks of an at-risk entry, whatever shape the playbooks app gives them
    (names, slugs or objects with a name); none until that app is installed."""
    matched = entry.get("matched_playbooks", entry.get("matched_playbook")) or []
    if not isinstance(matched, list):
        matched = [matched]
    labels = []
    for item in matched:
        if isinstance(item, dict):
            labels.append(str(item.get("name") or item.get("id") or item.get("slug") or ""))
        else:
            labels.append(str(item))
    return [label for label in labels if label]


def _open_alerts(*, resources: dict[str, Any]) -> list[dict[str, Any]]:
    """What is wrong right now: the north-star alert state, infra resources near their
    limit, and alert deliveries that are failing. Two queries."""
    alerts: list[dict[str, Any]] = []
    state = AlertState.objects.filter(pk=1).first()
    if state is not None and state.status in (Status.WARNING, Status.CRITICAL):
        _, meaning, action, _ = MESSAGES[state.status]
        alerts.append(
            {
                "level": "critical" if state.status == Status.CRITICAL else "warning",
                "what": f"North star: {STATUS_WORDS[state.status]}",
                "detail": f"{meaning}. Action: {action}.",
                "since": state.changed_at,
            }
        )
    for name, projection in resources.items():
        if projection.level in (LEVEL_WARNING, LEVEL_CRITICAL):
            alerts.append(
                {
                    "level": projection.level,
                    "what": f"{RESOURCE_NAMES[name]}: {projection.days_to_limit_whole} days to the limit",
                    "detail": projection.reason,
                    "since": None,
                }
            )
    failing = list(
        AlertNotification.objects.filter(state__in=[DeliveryState.FAILED, DeliveryState.RETRYING])
        .order_by("-created_at")
        .values("subject", "channel", "state", "last_error", "created_at")[:5]
    )
    for notification in failing:
        alerts.append(
            {
                "level": "warning",
                "what": f"Alert delivery {notification['state']} ({notification['channel']})",
                "detail": f"{notification['subject']} — {notification['last_error'] or 'no error recorded'}",
                "since": notification["created_at"],
            }
        )
    return alerts


# How an amount reads: the symbol for the currencies founders mostly bill in, the ISO code otherwise.
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def money_words(amount: Any, currency: str) -> str:
    """``$1,234`` (whole units: a figure to act on, not an invoice), ``1,234 CHF`` without a symbol."""
    whole = f"{round(float(amount)):,}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{whole}" if symbol else f"{whole} {currency}"


def revenue_at_risk_words(figures: list[Any]) -> str:
    """ "Revenue at risk: $X across N customers" per currency (the largest first); empty without any MRR."""
    parts = [
        f"{money_words(f.at_risk_mrr, f.currency)} across {f.at_risk_customers} "
        f"customer{'' if f.at_risk_customers == 1 else 's'}"
        for f in figures
        if f.mrr > 0
    ]
    return f"Revenue at risk: {'; '.join(parts)}" if parts else ""


def revenue_month_words(figures: list[Any]) -> list[str]:
    """This month's moves per currency, from the revenue history: "This month (USD): churned $490,
    expansion $120, contraction $0." Only currencies that moved."""
    return [
        f"This month ({f.currency}): churned {money_words(f.churned_mrr, f.currency)}, expansion "
        f"{money_words(f.expansion_mrr, f.currency)}, contraction {money_words(f.contraction_mrr, f.currency)}."
        for f in figures
        if f.churned_mrr or f.expansion_mrr or f.contraction_mrr
    ]


def _call_list() -> dict[str, list[dict[str, Any]]]:
    # The at-risk API's own answer (cached per recompute and founder action), each entry with its
    # follow-up state: the page and the API never differ. Read wider than the list shows, so
    # snoozed customers do not leave it short.
    at_risk = at_risk_answer(limit=TODAY_AT_RISK_READ)
    for entry in at_risk:
        entry["playbooks"] = _playbook_labels(entry)
        entry["people"] = contacts_people(entry["contacts"])
    call_list = call_list_build(at_risk=at_risk, today=timezone.localdate(), active_limit=TODAY_AT_RISK)
    # A follow-up still open for a customer no longer at risk is listed too, without the at-risk
    # answer's contacts: its people are read with one query for all of them.
    missing = [row for row in call_list["active"] if "people" not in row]
    if missing:
        found = tenant_contacts_get(tenant_ids=[row["tenant_id"] for row in missing])
        for row in missing:
            row["people"] = contacts_people(found.get(row["tenant_id"], []))
    return call_list


def _per_version_parts(*, now: datetime, targets: Any) -> dict[str, Any]:
    """What Today shows of the last recompute and founder actions, each read once per version
    (templates/today.html renders them in its kept parts, so a view served from those reads none)."""
    # Read once per recompute or founder action (a revenue change moves the same version).
    figures = cached_per_recompute(
        f"today:revenue_figures:{timezone.localdate().isoformat()}", lambda: revenue_figures()
    )
    freshness = metrics_freshness(now=now, per_recompute=True)
    # Rollup days are UTC days (the engine's windows), so the chart ends on today's UTC date.
    # Its cost grows with users x days; read once per recompute (only a run changes the rollup).
    as_of = now.astimezone(UTC).date()
    daily = cached_per_recompute(
        f"today:real_users_daily:{as_of.isoformat()}:{DAU_CHART_DAYS}",
        lambda: real_users_daily(as_of=as_of, days=DAU_CHART_DAYS),
    )
    dau_chart = cached_per_recompute(
        f"today:dau_chart:{as_of.isoformat()}:{targets.dau_target}",
        lambda: line_chart(
            [Series("Users with a real event that day", [(day, float(users)) for day, users in daily])],
            title=f"Real users per day, last {DAU_CHART_DAYS} days",
            y_label="users",
            hlines=[HLine(float(targets.dau_target), f"DAU target {targets.dau_target}")],
            # About the width of its half of the page at 1366 px, so its text is drawn at the page's
            # size there, and a phone scrolls it only a little (console.css).
            width=DAU_CHART_WIDTH,
            height=200,
        ),
    )
    # The runway moves with the hourly snapshot; read once per recompute (every few minutes).
    resources = cached_per_recompute("today:infra_resources", lambda: infra_overview(series_days=1, now=now).resources)
    return {
        "revenue_at_risk": revenue_at_risk_words(figures),
        "revenue_month": revenue_month_words(figures),
        # Drawn once per recompute and day (one query then, none on a cached page).
        "lifecycle_chart": lifecycle_chart(),
        "lifecycle_legend": lifecycle_legend(),
        "recompute_failure": cached_per_recompute("recompute_failure", recompute_failure_get),
        "dau_chart": dau_chart,
        "resources": [(RESOURCE_NAMES[name], p) for name, p in resources.items()],
        # Written by tasks on the recompute's beat (every five minutes, deliveries every minute).
        "alerts": cached_per_recompute("today:alerts", lambda: _open_alerts(resources=resources)),
        "freshness": freshness,
    }


TODAY_PARTS = (
    "revenue_at_risk",
    "revenue_month",
    "lifecycle_chart",
    "lifecycle_legend",
    "recompute_failure",
    "dau_chart",
    "resources",
    "alerts",
    "freshness",
)


def _today_context(*, now: datetime) -> dict[str, Any]:
    # Live (ingest keeps the users; the targets are edited in admin), read as often as the version.
    summary = cached_per_check("today:real_users_summary", lambda: real_users_summary(now=now))
    targets = cached_per_check("today:north_star_targets", north_star_targets)
    _, meaning, action, escalation = MESSAGES[summary.status]
    # Built only when the call list's part of the page is rendered: once per recompute, founder
    # action and minute (templates/today.html, per_recompute).
    call_list = SimpleLazyObject(_call_list)
    return {
        "summary": summary,
        "status_word": STATUS_WORDS[summary.status],
        "meaning": meaning,
        "action": action,
        "escalation": escalation,
        "targets": targets,
        "dau_on_target": summary.dau >= targets.dau_target,
        "mau_on_target": summary.mau >= targets.mau_target,
        "at_risk": SimpleLazyObject(lambda: call_list["active"]),
        "parked": SimpleLazyObject(lambda: call_list["parked"]),
        "snooze_default": timezone.localdate() + timedelta(days=SNOOZE_DEFAULT_DAYS),
        "snooze_max": timezone.localdate() + timedelta(days=SNOOZE_MAX_DAYS),
        # A link while the product's events do not fit the registry.
        "vocabulary_mismatch": cached_per_recompute("today:vocabulary_mismatch", vocabulary_mismatch),
        **values_lazily(lambda: _per_version_parts(now=now, targets=targets), TODAY_PARTS),
    }


@staff_required
def today_page(request: HttpRequest) -> HttpResponse:
    # Kept whole per version check and minute: every figure on it is read per recompute, founder
    # action or check (read_cache.page_per_check), so a view renders nothing.
    return page_per_check(
        request,
        key="today",
        render=lambda extra: render(request, "today.html", {**_today_context(now=timezone.now()), **extra}),
    )


API_PREFIXES = ("/api/", "/ops/", "/metrics/")


def server_error(request: HttpRequest) -> HttpResponse:
    """500 for the whole site, DEBUG off: JSON for API paths, the console's page otherwise.

    Rendered without the request's context processors (they may be what failed), so the
    page needs nothing but the template; the error itself is in the log (django.request)."""
    if request.path.startswith(API_PREFIXES):
        return JsonResponse(
            {"detail": "Internal error: the server log has the details. Nothing half-done was kept."}, status=500
        )
    return HttpResponse(loader.get_template("500.html").render({"path": request.path}), status=500)


FAVICON = (Path(__file__).resolve().parent / "static" / "console" / "favicon.ico").read_bytes()


def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``, which browsers ask for whatever the page links (a day's cache)."""
    response = HttpResponse(FAVICON, content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 for the whole site: JSON for API paths (a client never has to parse an HTML
    page, e.g. for /ops/interventions/abc/outcome), the console's page otherwise."""
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"detail": f"Nothing at {request.path}: check the path against /api/schema/."}, status=404)
    return render(request, "404.html", {"path": request.path}, status=404)
