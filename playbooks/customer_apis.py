"""The customers answers that carry playbooks data: ``GET /ops/customers/at-risk`` (who to call
today) and ``GET /ops/customers/{tenant_id}`` (one customer), each with the playbooks the customer
matched and its follow-up.

Read keys (or read-write keys, or a staff session). The at-risk answer is the call list's
(playbooks/call_list.py::at_risk_answer), kept once per recompute and served before DRF's
dispatch when kept (customers/kept_answers.py); Today shows the same list. The paths and
``operationId``s are the customers API's, as before the answers moved up to this layer.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import ReadScopeOrStaff
from core.openapi import FIELD_ERRORS, error_responses, validated
from customers.apis import HEURISTIC_NOTE, answer_cached
from customers.kept_answers import KeptAnswerApi
from customers.selectors import tenant_daily_series, tenant_metrics_get
from playbooks.call_list import at_risk_answer, call_list_context
from playbooks.customer_serializers import AtRiskQuerySerializer, CustomerAtRiskSerializer, CustomerDetailSerializer


class CustomerAtRiskApi(KeptAnswerApi):
    permission_classes = [ReadScopeOrStaff]

    @extend_schema(
        operation_id="customers_at_risk",
        summary="Who should I call today? Customers at risk with suggested interventions",
        description=HEURISTIC_NOTE
        + " Ordered as CALL_LIST_ORDER says: by risk, that is `risk_level` (critical, then high, then medium: a"
        " matched playbook can raise a tenant above its strength's band), then the score in force, strongest first,"
        " then `tenant_id`; or by `expected_loss`, largest first (unknown MRR last), then by risk. `auto` (the"
        " default) orders by expected loss once most customers at risk have an MRR."
        " Internal, test and demo tenants are never listed.",
        parameters=[AtRiskQuerySerializer],
        responses={200: CustomerAtRiskSerializer(many=True), 400: FIELD_ERRORS, **error_responses(401, 403, 503)},
    )
    def get(self, request: Request) -> HttpResponse | Response:
        def build() -> Any:
            # Validated inside: only a valid query is cached, and a cached answer costs no validation.
            return at_risk_answer(limit=validated(AtRiskQuerySerializer, request.query_params)["limit"])

        return answer_cached(request, self.kept_answer_key(request), build)

    def kept_answer_key(self, request: Any) -> str:
        # The raw query: parsing it cost a kept answer more than finding its bytes, and an answer
        # kept twice under two spellings of one query is still the one answer.
        return f"customers_at_risk:{request.META.get('QUERY_STRING', '')}"


class CustomerDetailApi(APIView):
    permission_classes = [ReadScopeOrStaff]

    @extend_schema(
        operation_id="customers_detail",
        summary="One customer: every risk component and a 60-day daily series of stickiness and friction",
        description=HEURISTIC_NOTE,
        responses={200: CustomerDetailSerializer, **error_responses(401, 403, 404, 503)},
    )
    def get(self, request: Request, tenant_id: str) -> Response:
        metrics = tenant_metrics_get(tenant_id=tenant_id)
        if metrics is None:
            raise NotFound(
                f"No metrics for tenant '{tenant_id[:128]}': it does not exist or has not been computed yet "
                "(metrics are recomputed every few minutes)."
            )
        daily = tenant_daily_series(tenant_id=tenant_id, as_of=metrics.as_of)
        context = call_list_context(rows=[metrics], today=timezone.localdate())
        return Response(CustomerDetailSerializer(metrics, context={**context, "daily": daily}).data)
