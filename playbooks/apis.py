"""The playbooks API.

Reads (read or read-write key, or a staff session): ``GET /ops/playbooks``,
``/ops/playbooks/{id}``, ``/ops/playbooks/effectiveness``,
``/ops/signal-validation``, ``/ops/interventions``, ``/ops/churns``.
Writes (read-write key or a staff session; read and ingest keys get 403):
``POST /ops/interventions``, ``POST /ops/interventions/{id}/outcome``,
``POST /ops/churns``, and their undo: ``DELETE /ops/interventions/{id}``,
``DELETE /ops/interventions/{id}/outcome``, ``DELETE /ops/churns/{id}``. Bad input is a 400
naming the field, and writes nothing; an unknown id is a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import ReadScopeOrStaff, WriteScopeOrStaff, request_api_key
from core.openapi import FIELD_ERRORS, ErrorDetailSerializer, error_responses, validated
from playbooks.billing import BillingInputError, BillingNotConfigured, stripe_event_receive
from playbooks.churns import churn_delete, churn_record
from playbooks.effectiveness import OBSERVATIONAL_NOTE, playbook_effectiveness
from playbooks.selectors import churns_list, interventions_list, playbook_detail_payload, playbooks_payload
from playbooks.serializers import (
    ChurnInputSerializer,
    ChurnQuerySerializer,
    ChurnSerializer,
    EffectivenessResponseSerializer,
    InterventionInputSerializer,
    InterventionQuerySerializer,
    InterventionSerializer,
    OutcomeInputSerializer,
    PlaybookDetailSerializer,
    SignalValidationSerializer,
)
from playbooks.services import (
    PlaybookInputError,
    intervention_create,
    intervention_delete,
    intervention_outcome_clear,
    intervention_outcome_record,
)
from playbooks.signal_validation import signal_validation

PLAYBOOK_NOTE = (
    "Playbooks are edited in Django admin. `trigger_conditions` are the conditions the engine evaluates after "
    "every recompute, as readable text; a tenant matches when all of them hold, and is then at risk at least at "
    "the playbook's `risk_level`. `matched_tenants` are the matches of the last recompute, with the measured "
    "value behind each condition."
)


def _field_errors(exc: PlaybookInputError) -> ValidationError:
    """DRF's field-error shape, ``{"field": ["message"]}``, like every other 400 of the API."""
    return ValidationError(
        {field: [message] if isinstance(message, str) else message for field, message in exc.errors.items()}
    )


T = TypeVar("T")


def _service(call: Callable[[], T]) -> T:
    """Run a founder action's service; its refusal as the API says it: an unknown id (the service looked
    it up, so no second query here) is a 404, anything else a 400 by field."""
    try:
        return call()
    except PlaybookInputError as exc:
        if "id" in exc.errors:
            raise NotFound(exc.errors["id"]) from exc
        raise _field_errors(exc) from exc


def _recorded_by(request: Request) -> str:
    key = request_api_key(request)
    return f"key:{key.prefix}" if key is not None else request.user.get_username()


class _ReadOrWrite(APIView):
    """GET needs read scope; POST needs write scope (read-write key or staff session)."""

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [ReadScopeOrStaff()]
        return [WriteScopeOrStaff()]


# --- Views ---------------------------------------------------------------------------------------
class PlaybookListApi(APIView):
    permission_classes = [ReadScopeOrStaff]

    @extend_schema(
        operation_id="playbooks_list",
        summary="All founder playbooks with their conditions, steps and the tenants they match now",
        description=PLAYBOOK_NOTE,
        responses={200: PlaybookDetailSerializer(many=True), **error_responses(401, 403, 503)},
    )
    def get(self, request: Request) -> Response:
        return Response(PlaybookDetailSerializer(playbooks_payload(), many=True).data)


class PlaybookDetailApi(APIView):
    permission_classes = [ReadScopeOrStaff]

    @extend_schema(
        operation_id="playbooks_detail",
        summary="One playbook (PlaybookDetail) with the tenants it matches now",
        description=PLAYBOOK_NOTE,
        responses={200: PlaybookDetailSerializer, **error_responses(401, 403, 404, 503)},
    )
    def get(self, request: Request, playbook_id: str) -> Response:
        payload = playbook_detail_payload(playbook_id=playbook_id)
        if payload is None:
            raise NotFound(f"No playbook '{playbook_id[:64]}'.")
        return Response(PlaybookDetailSerializer(payload).data)


class PlaybookEffectivenessApi(APIView):
    permission_classes = [ReadScopeOrStaff]

    @extend_schema(
        operation_id="playbooks_effectiveness",
        summary="Per playbook: times applied, share retained 30 and 60 days later, vs an untreated comparison group",
        description=OBSERVATIONAL_NOTE
        + " Treated tenants are anchored at their first intervention with the playbook; comparison tenants (flagged "
        "for the playbook, or at its risk level, in the same period, with no intervention) at their first flag. "
        "Retained: no churn recorded within the window and no recorded outcome of churned or no_response. Only "
        "tenants followed for the whole window count (`evaluable`).",
        responses={200: EffectivenessResponseSerializer, 400: FIELD_ERRORS, **error_responses(401, 403, 503)},
    )
    def get(self, request: Request) -> Response:
        data = {"note": OBSERVATIONAL_NOTE, "playbooks": playbook_effectiveness()}
        return Response(EffectivenessResponseSerializer(data).data)


class SignalValidationApi(APIView):
    permission_classes = [ReadScopeOrStaff]

    @extend_schema(
        operation_id="signal_validation",
        summary="Was the risk signal right? Recorded churns against the daily risk history",
        description="For each recorded churn: the highest risk level in the 90 days before it and how many days "
        "before it was first reached; for tenants flagged at each level: how many churned afterwards. "
        "`warning` is set while fewer than MIN_CHURNS_FOR_TRUST (10 by default) churns are recorded.",
        responses={200: SignalValidationSerializer, **error_responses(401, 403, 503)},
    )
    def get(self, request: Request) -> Response:
        return Response(SignalValidationSerializer(signal_validation()).data)


class InterventionListCreateApi(_ReadOrWrite):
    @extend_schema(
        operation_id="interventions_list",
        summary="Interventions recorded, newest first",
        parameters=[InterventionQuerySerializer],
        responses={200: InterventionSerializer(many=True), 400: FIELD_ERRORS, **error_responses(401, 403, 503)},
    )
    def get(self, request: Request) -> Response:
        params = validated(InterventionQuerySerializer, request.query_params)
        qs = interventions_list(tenant_id=params.get("tenant_id"), playbook_id=params.get("playbook_id"))
        return Response(InterventionSerializer(qs[:500], many=True).data)

    @extend_schema(
        operation_id="interventions_create",
        summary="Record an intervention the founder took (read-write key or staff session)",
        request=InterventionInputSerializer,
        responses={201: InterventionSerializer, 400: FIELD_ERRORS, **error_responses(401, 403, 415, 503)},
    )
    def post(self, request: Request) -> Response:
        data = validated(InterventionInputSerializer, request.data)
        record = _service(
            lambda: intervention_create(
                tenant_id=data["tenant_id"],
                playbook_id=data.get("playbook_id") or None,
                action=data["action"],
                channel=data["channel"],
                day=data.get("date"),
                note=data["note"],
                outcome=data.get("outcome"),
                outcome_at=data.get("outcome_at"),
                created_by=_recorded_by(request),
            )
        )
        return Response(InterventionSerializer(record).data, status=status.HTTP_201_CREATED)


class InterventionOutcomeApi(APIView):
    permission_classes = [WriteScopeOrStaff]

    @extend_schema(
        operation_id="interventions_outcome",
        summary="Record (or correct) the outcome of an intervention",
        request=OutcomeInputSerializer,
        responses={200: InterventionSerializer, 400: FIELD_ERRORS, **error_responses(401, 403, 404, 415, 503)},
    )
    def post(self, request: Request, intervention_id: int) -> Response:
        data = validated(OutcomeInputSerializer, request.data)
        record = _service(
            lambda: intervention_outcome_record(
                intervention_id=intervention_id,
                outcome=data["outcome"],
                outcome_at=data.get("outcome_at"),
                note=data["note"],
            )
        )
        return Response(InterventionSerializer(record).data)

    @extend_schema(
        operation_id="interventions_outcome_undo",
        summary="Take back the outcome of an intervention: the step is open again",
        description="A churn that a `churned` outcome recorded is a churn of its own and stays: "
        "`DELETE /ops/churns/{id}` takes it back.",
        request=None,
        responses={200: InterventionSerializer, 400: FIELD_ERRORS, **error_responses(401, 403, 404, 503)},
    )
    def delete(self, request: Request, intervention_id: int) -> Response:
        record = _service(lambda: intervention_outcome_clear(intervention_id=intervention_id))
        return Response(InterventionSerializer(record).data)


class InterventionDetailApi(APIView):
    permission_classes = [WriteScopeOrStaff]

    @extend_schema(
        operation_id="interventions_delete",
        summary="Take back a logged intervention, as if it was never logged (read-write key or staff session)",
        request=None,
        responses={204: None, **error_responses(401, 403, 404, 503)},
    )
    def delete(self, request: Request, intervention_id: int) -> Response:
        _service(lambda: intervention_delete(intervention_id=intervention_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChurnListCreateApi(_ReadOrWrite):
    @extend_schema(
        operation_id="churns_list",
        summary="Recorded churns, newest first",
        parameters=[ChurnQuerySerializer],
        responses={200: ChurnSerializer(many=True), 400: FIELD_ERRORS, **error_responses(401, 403, 503)},
    )
    def get(self, request: Request) -> Response:
        params = validated(ChurnQuerySerializer, request.query_params)
        return Response(ChurnSerializer(churns_list(tenant_id=params.get("tenant_id"))[:500], many=True).data)

    @extend_schema(
        operation_id="churns_create",
        summary="Mark a customer as lost (read-write key or staff session)",
        request=ChurnInputSerializer,
        responses={201: ChurnSerializer, 400: FIELD_ERRORS, **error_responses(401, 403, 415, 503)},
    )
    def post(self, request: Request) -> Response:
        data = validated(ChurnInputSerializer, request.data)
        record = _service(
            lambda: churn_record(
                tenant_id=data["tenant_id"],
                day=data.get("date"),
                reason=data["reason"],
                created_by=_recorded_by(request),
            )
        )
        return Response(ChurnSerializer(record).data, status=status.HTTP_201_CREATED)


class ChurnDetailApi(APIView):
    permission_classes = [WriteScopeOrStaff]

    @extend_schema(
        operation_id="churns_delete",
        summary="Take back a recorded churn (read-write key or staff session)",
        description="Through the one churn service: with no churn left the customer is un-churned, and the next "
        "recompute puts it back on the at-risk lists if it is still at risk; with an earlier churn left, that one "
        "holds.",
        request=None,
        responses={204: None, **error_responses(401, 403, 404, 503)},
    )
    def delete(self, request: Request, churn_id: int) -> Response:
        _service(lambda: churn_delete(churn_id=churn_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Billing ---------------------------------------------------------------------------------------
class StripeReceiptSerializer(serializers.Serializer):
    received = serializers.BooleanField()
    event_id = serializers.CharField()
    event_type = serializers.CharField()
    status = serializers.CharField(
        help_text="recorded (a churn or plan change was recorded), unmapped (the customer awaits a tenant "
        "in admin; recorded once mapped) or ignored (not a churn or plan change)."
    )
    duplicate = serializers.BooleanField(help_text="The event id was already received: nothing was recorded again.")
    tenant_id = serializers.CharField(allow_null=True)


class StripeWebhookApi(APIView):
    """Stripe calls this; it authenticates by the ``Stripe-Signature`` header, not by a key."""

    authentication_classes: list[type] = []
    permission_classes: list[type[BasePermission]] = []

    @extend_schema(
        operation_id="stripe_webhook",
        summary="Stripe webhook: records churns (subscription deleted) and plan changes (subscription updated)",
        description="Verified with STRIPE_WEBHOOK_SECRET; idempotent on Stripe's event id; an unknown customer "
        "is acknowledged and listed in admin for mapping.",
        request=OpenApiTypes.OBJECT,
        responses={
            200: StripeReceiptSerializer,
            400: OpenApiResponse(
                ErrorDetailSerializer,
                description="Invalid signature, not a Stripe event, or STRIPE_WEBHOOK_SECRET unset (Stripe retries).",
            ),
            **error_responses(503),
        },
    )
    def post(self, request: Request) -> Response:
        try:
            receipt = stripe_event_receive(payload=request.body, signature=request.headers.get("Stripe-Signature"))
        except (BillingInputError, BillingNotConfigured) as exc:
            # Unconfigured is a 400 too (never a 5xx): Stripe retries any non-2xx for days.
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(
            {
                "received": True,
                "event_id": receipt.event_id,
                "event_type": receipt.event_type,
                "status": receipt.status,
                "duplicate": receipt.duplicate,
                "tenant_id": receipt.tenant_id,
            }
        )
