"""The registry's REST contract: ``GET /ops/event-types``, ``GET``, ``PUT`` and ``DELETE /ops/event-types/{name}``.

Infrastructure-as-code describes a product through it. Reading needs a read or
read-write key or a staff session; writing a read-write key or a staff session.
The serializer only checks JSON types and documents each field; every value is
validated by the model (events/models/vocabulary.py) through ``event_type_put``, exactly as
admin validates it. An edit takes effect at the next incremental recompute (the
engine's registry fingerprint sees it).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import ReadScopeOrStaff, WriteScopeOrStaff
from core.openapi import FIELD_ERRORS, ErrorDetailSerializer, error_responses
from events.models import EventCategory, EventType, FrictionSignal, NorthStarRole
from events.registry import (
    EventTypeHasEvents,
    event_type_delete,
    event_type_entry,
    event_type_find,
    event_type_put,
)


def _help(field: str) -> str:
    return str(EventType._meta.get_field(field).help_text)


class EventTypeSerializer(serializers.Serializer):
    """One registry entry. Types and documentation only: the model validates the values."""

    name = serializers.CharField(
        required=False,
        trim_whitespace=False,
        help_text="1-64 printable characters as the product sends it (spaces and $ allowed). In a PUT it may be "
        "left out; if given it must equal the name in the path (in any case).",
    )
    label = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="At most 100 characters. In answers: the display label (derived from the name when none was set).",
    )
    category = serializers.CharField(required=False, help_text="One of: " + ", ".join(EventCategory.values))
    description = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, help_text="At most 255 characters."
    )
    core_value = serializers.BooleanField(required=False, help_text=_help("core_value"))
    friction_signal = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Empty or one of: " + ", ".join(FrictionSignal.values) + ". " + _help("friction_signal"),
    )
    friction_weight = serializers.FloatField(required=False, help_text="0-100. " + _help("friction_weight"))
    engagement_weight = serializers.FloatField(required=False, help_text="0-100. " + _help("engagement_weight"))
    north_star_role = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Empty or one of: " + ", ".join(NorthStarRole.values) + ". " + _help("north_star_role"),
    )
    page_view = serializers.BooleanField(required=False, help_text=_help("page_view"))
    counts_as_real_interaction = serializers.BooleanField(required=False, help_text=_help("counts_as_real_interaction"))


# ?retire= on DELETE: what it may say, and what each value means.
RETIRE_CHOICES = {"1": True, "true": True, "0": False, "false": False}

NAME_PARAMETER = OpenApiParameter(
    "name",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The type's name in any case, percent-encoded (Order%20Completed, %24pageview).",
)
EXAMPLE = OpenApiExample(
    "An invoicing product's core value",
    value={
        "label": "Invoice sent",
        "category": "value",
        "description": "An invoice was sent to a customer",
        "core_value": True,
        "engagement_weight": 1.0,
        "counts_as_real_interaction": True,
    },
    request_only=True,
)


class EventTypeListApi(APIView):
    permission_classes = [ReadScopeOrStaff]

    @extend_schema(
        operation_id="event_types_list",
        summary="Every registered event type with its roles and weights",
        responses={200: EventTypeSerializer(many=True), **error_responses(401, 403, 503)},
    )
    def get(self, request: Request) -> Response:
        return Response([event_type_entry(t) for t in EventType.objects.order_by("name")])


class EventTypeDetailApi(APIView):
    def get_permissions(self) -> list[BasePermission]:
        return [WriteScopeOrStaff() if self.request.method in ("PUT", "DELETE") else ReadScopeOrStaff()]

    @extend_schema(
        operation_id="event_types_get",
        summary="One event type (name matched case-insensitively)",
        parameters=[NAME_PARAMETER],
        responses={200: EventTypeSerializer, **error_responses(401, 403, 404, 503)},
    )
    def get(self, request: Request, name: str) -> Response:
        event_type = event_type_find(name=name)
        if event_type is None:
            raise NotFound(f"No event type is registered as '{name}' (in any case).")
        return Response(event_type_entry(event_type))

    @extend_schema(
        operation_id="event_types_put",
        summary="Create or replace an event type",
        description=(
            "Replaces every field: a field left out takes its default (empty, false, 0, category custom). "
            "A name that differs only in case from a registered type replaces that type and keeps its first "
            "spelling. 201 when created, 200 when replaced; the body is the entry. Takes effect at the next "
            "incremental recompute."
        ),
        parameters=[NAME_PARAMETER],
        request=EventTypeSerializer,
        examples=[EXAMPLE],
        responses={
            200: OpenApiResponse(EventTypeSerializer, description="Replaced."),
            201: OpenApiResponse(EventTypeSerializer, description="Created."),
            400: FIELD_ERRORS,
            **error_responses(401, 403, 415, 503),
        },
    )
    def put(self, request: Request, name: str) -> Response:
        serializer = EventTypeSerializer(data=request.data)
        if not serializer.is_valid():
            raise ValidationError(serializer.errors)
        data: dict[str, Any] = dict(serializer.validated_data)
        body_name = data.pop("name", None)
        if body_name is not None and body_name.lower() != name.lower():
            raise ValidationError({"name": [f"The body names '{body_name}' but the path names '{name}'."]})
        try:
            event_type, created = event_type_put(name=name, data=data)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from exc
        return Response(event_type_entry(event_type), status=201 if created else 200)

    @extend_schema(
        operation_id="event_types_delete",
        summary="Remove an event type, or retire it while its events are stored",
        description=(
            "A type no stored event carries is deleted (204); a later event of that name is parked. While events "
            "of the type are stored the answer is 409, since deleting it would park its history: send "
            "`?retire=1` to retire it instead (200 with the entry): it stays registered and its history stays "
            "stored, with every role and weight dropped (label and description kept), so no text, condition or "
            "score reads it any more. Takes effect at the next incremental recompute."
        ),
        parameters=[
            NAME_PARAMETER,
            OpenApiParameter(
                "retire",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                enum=list(RETIRE_CHOICES),
                description="1 (or true): retire the type when its events are stored, instead of answering 409.",
            ),
        ],
        responses={
            200: OpenApiResponse(EventTypeSerializer, description="Retired: its events are stored."),
            204: OpenApiResponse(description="Deleted: no stored event carried it."),
            400: FIELD_ERRORS,
            409: OpenApiResponse(ErrorDetailSerializer, description="Events of it are stored; retire it instead."),
            **error_responses(401, 403, 404, 503),
        },
    )
    def delete(self, request: Request, name: str) -> Response:
        given = request.query_params.get("retire", "0").strip().lower()
        if given not in RETIRE_CHOICES:
            raise ValidationError({"retire": [f"'{given}' is not one of: {', '.join(RETIRE_CHOICES)}."]})
        try:
            removed = event_type_delete(name=name, retire=RETIRE_CHOICES[given])
        except EventTypeHasEvents as exc:
            return Response(
                {
                    "detail": f"Events of '{exc}' are stored, and deleting the type would park them. Retire it "
                    "instead (DELETE with ?retire=1): its history is kept and its roles and weights are dropped."
                },
                status=409,
            )
        if removed is None:
            raise NotFound(f"No event type is registered as '{name}' (in any case).")
        event_type, outcome = removed
        if outcome == "deleted":
            return Response(status=204)
        return Response(event_type_entry(event_type))
