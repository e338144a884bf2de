"""The customers API: ``GET /ops/customers``, and what every customers answer shares (the
heuristic's description, kept answers).

Read keys (or read-write keys, or a staff session). Every answer comes from the
cache (``ops_tenant_metrics``) and the rollups through customers/selectors.py,
which the console pages use too. ``/ops/customers/at-risk`` and ``/ops/customers/{tenant_id}``
carry the playbooks each customer matched and its follow-up, so they are answered one layer
up, in playbooks/customer_apis.py (the call list assembled in playbooks/call_list.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from core.auth import ReadScopeOrStaff
from core.openapi import FIELD_ERRORS, error_responses, validated
from customers.kept_answers import JSON_SUFFIX, KeptAnswerApi
from customers.metrics.interventions import BLOCKED_THRESHOLD, EMAIL_DELTA_THRESHOLD, SYSTEM_ISSUE_THRESHOLD
from customers.metrics.risk import RISK_COMPONENTS
from customers.metrics.thresholds import CORE_VALUE_GAP_DAYS, PRICING_USAGE_PCT, RISK_LEVEL_THRESHOLDS
from customers.models import TenantMetrics
from customers.read_cache import cached_per_recompute
from customers.selectors import CustomerFilters, customers_list
from customers.serializers import CustomerQuerySerializer, CustomerRowSerializer


def _heuristic_note() -> str:
    """The API's description of the heuristic, from the one definition of its components and rules."""
    levels = ", ".join(f"{level.value} >= {threshold:g}" for level, threshold in RISK_LEVEL_THRESHOLDS)
    components = ", ".join(f"`{c.name}` (max {c.max_points:g})" for c in RISK_COMPONENTS)
    return (
        "`risk_signal_strength` (0-100) is an attention ranking, not a prediction: an additive heuristic "
        "whose every component is listed in `risk_components` with its points and the measured value. "
        "Until it has been validated against real churns, treat it as 'look here first', never as a probability. "
        f"Components (the default maximum points; the active risk weights in admin may set others): {components}. "
        f"Levels: {levels}; below {RISK_LEVEL_THRESHOLDS[-1][1]:g} a tenant is not at risk (`risk_level` null). "
        "The event types each rule reads are the registry's roles (GET /ops/event-types): `core_value`, and "
        "the friction signals `blocked` and `system_issue`; texts use the types' labels. "
        f"Interventions: `call` (immediate) when critical; `email` (today) when stickiness_delta < "
        f"{EMAIL_DELTA_THRESHOLD:g}; `feature_help` (this_week) after more than {CORE_VALUE_GAP_DAYS} days without "
        f"a core-value event (or never one, while active); `technical` (today) on {BLOCKED_THRESHOLD}+ `blocked` "
        f"events (or {SYSTEM_ISSUE_THRESHOLD}+ `system_issue` events) in 7 days; `pricing` (this_week) when the "
        f"tenant's real events over 30 days reach {PRICING_USAGE_PCT:g}% of its plan's `monthly_event_limit` "
        "(set per tenant in admin). "
        "`last_investigation` and `days_since_investigation` keep their names: they are the last core-value event. "
        "`matched_playbooks`: the founder playbooks the tenant matched at the last recompute (see /ops/playbooks); "
        "a matched tenant is at risk at least at the playbook's level. "
        "All numbers come from a cache recomputed every few minutes; `computed_at` says when."
    )


HEURISTIC_NOTE = _heuristic_note()


# --- Pagination and kept answers --------------------------------------------------------
class CustomerPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def answer_cached(request: Request, key: str, build: Callable[[], Any]) -> HttpResponse | Response:
    """The answer built once per recompute; JSON clients get its cached bytes, rendered once too.

    Rendering the nested risk components and interventions costs more than the
    two small queries a cached request makes, so the bytes are what is kept.
    Other formats (DRF's browsable page) render the cached data as usual.
    """
    if request.accepted_renderer.format != "json":
        return Response(cached_per_recompute(key, build))
    body = cached_per_recompute(key + JSON_SUFFIX, lambda: JSONRenderer().render(build()))
    return HttpResponse(body, content_type="application/json")


# --- Views ------------------------------------------------------------------------------------
class CustomerListApi(KeptAnswerApi, generics.ListAPIView):
    permission_classes = [ReadScopeOrStaff]
    serializer_class = CustomerRowSerializer
    pagination_class = CustomerPagination

    def get_queryset(self) -> QuerySet[TenantMetrics]:
        params = validated(CustomerQuerySerializer, self.request.query_params)
        filters = CustomerFilters(
            kind=None if params["kind"] == "all" else params["kind"],
            risk_level=params.get("risk_level"),
            at_risk=params.get("at_risk"),
            has_baseline=params.get("has_baseline"),
            search=params["q"].strip(),
        )
        return customers_list(filters=filters, ordering=params["ordering"])

    @extend_schema(
        operation_id="customers_list",
        summary="Customers with stickiness, friction and risk (paginated, filterable, sortable)",
        description=HEURISTIC_NOTE,
        parameters=[CustomerQuerySerializer],
        responses={
            200: CustomerRowSerializer(many=True),
            400: FIELD_ERRORS,
            **error_responses(401, 403, 404, 503),
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse | Response:
        return answer_cached(
            request, self.kept_answer_key(request), lambda: super(CustomerListApi, self).get(request).data
        )

    def kept_answer_key(self, request: Any) -> str:
        # Keyed by what the answer's page links are made of (DRF builds them from the absolute URL):
        # the scheme, the host as the request gives it, the path and the raw query. Read from META:
        # building the absolute URL (the host checked again, the path escaped) cost a kept answer
        # more than finding its bytes; CommonMiddleware has checked the host already.
        meta = request.META
        host = f"{meta.get('HTTP_X_FORWARDED_HOST', '')}|{meta.get('HTTP_HOST', '')}|{meta.get('SERVER_NAME', '')}"
        return f"customers_list:{request.scheme}://{host}:{meta.get('SERVER_PORT', '')}{request.path}?" + meta.get(
            "QUERY_STRING", ""
        )
