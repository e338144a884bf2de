"""The registry's REST contract: ``GET /ops/event-types``, ``GET`` and ``PUT /ops/event-types/{name}``.

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

from events.auth import ReadScopeOrStaff, WriteScopeOrStaff
from events.models import EventCategory, EventType, FrictionSignal, NorthStarRole
from events.registry import event_type_entry, event_type_find, event_type_put
from opsconsole.openapi import FIELD_ERRORS, error_responses


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
        return [WriteScopeOrStaff() if self.request.method == "PUT" else ReadScopeOrStaff()]

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
