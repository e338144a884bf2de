"""The console's own ingestion API (``POST /api/v1/events``, ``POST /metrics/interaction``),
the north star, and the names parked for want of a registry entry.

Both ingest views authenticate with DRF (Bearer keys) and hand the request to the one
gate (events/ingestion/gate.py) with the native format; the SDK endpoints are events/sdk_apis.py.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import IngestScope, ReadScopeOrStaff, request_api_key
from core.openapi import FIELD_ERRORS, error_responses, validated
from events.ingestion.formats.native import NATIVE, native_items
from events.ingestion.gate import Answer, gate_answer, gated_ingest, request_gate
from events.ingestion.parking import unregistered_event_types
from events.ingestion.services import IngestReceipt
from events.ingestion.validation import IngestError
from events.interactions import InteractionError, interaction_record
from events.schemas import INTERACTION_BODY, NATIVE_BODY
from events.selectors import north_star_payload

ReceiptSerializer = inline_serializer(
    name="IngestReceipt",
    fields={
        "accepted": serializers.IntegerField(help_text="Events stored by this request."),
        "duplicates": serializers.IntegerField(
            help_text="Events whose event_id was already stored; nothing new written."
        ),
        "rejected": serializers.ListField(
            child=inline_serializer(
                name="RejectedEvent",
                fields={
                    "index": serializers.IntegerField(),
                    "event_id": serializers.CharField(allow_null=True),
                    "errors": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
                },
            )
        ),
        "parked": serializers.IntegerField(
            required=False, help_text="Of the valid events, those of unregistered types (kept, not counted)."
        ),
        "parked_types": serializers.ListField(
            child=serializers.CharField(),
            required=False,
            help_text="The unregistered names among them, as sent: register them to have them counted.",
        ),
    },
)
# A 400: a malformed body ("detail" only) or a batch whose every event was rejected (the receipt too).
IngestRejectionSerializer = inline_serializer(
    name="IngestRejection",
    fields={
        "detail": serializers.CharField(),
        "accepted": serializers.IntegerField(required=False),
        "duplicates": serializers.IntegerField(required=False),
        "rejected": serializers.ListField(child=serializers.DictField(), required=False),
    },
)


class RawJSONParser(BaseParser):
    """Accepts application/json without parsing: the gate parses the bytes itself
    so that size, encoding and shape errors get precise messages."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        return None


def answer_response(answer: Answer) -> Response:
    return Response(answer.body, status=answer.status, headers=answer.headers or None)


class EventIngestApi(APIView):
    permission_classes = [IngestScope]
    cors_ingest = True  # a web page may send (events/cors.py)
    parser_classes = [RawJSONParser]

    @extend_schema(
        operation_id="events_ingest",
        summary="Send events (one object, or a batch of up to 1,000)",
        description=(
            'Body: one event object, or `{"events": [...]}` with at most 1,000 events and 1 MiB (after '
            "inflating: `Content-Encoding: gzip` and chunked bodies are accepted). Each event: `event_type` "
            "(required, 1-64 printable characters, matched case-insensitively against the registry), `event_id` "
            "(UUID, for idempotency; generated if absent), `tenant_id` and/or `user_id` (one is required), "
            "`session_id`, `occurred_at` (ISO 8601 with offset, not more than 5 minutes in the future; defaults "
            "to now) and `metadata` (object, at most 64 KiB). A duplicate key anywhere in the body is refused.\n\n"
            "An unregistered type is stored parked (kept, not counted until you register it), named in the "
            "receipt's `parked_types` and listed by `GET /ops/event-types/unregistered` and on the Vocabulary "
            "page. With `INGEST_REJECT_UNREGISTERED=1` it is rejected per event instead, naming it, unless the "
            "key's `park_unregistered` flag is on.\n\n"
            "The answer is a receipt. Valid events are stored even when others in the batch are rejected; "
            "resending stores nothing twice. A 2xx means the accepted events are committed. "
            "When every event is rejected the answer is 400 with the same receipt."
        ),
        request={"application/json": NATIVE_BODY},
        responses={
            200: ReceiptSerializer,
            400: OpenApiResponse(
                IngestRejectionSerializer, description="Malformed body, or every event rejected (with the receipt)."
            ),
            **error_responses(401, 403, 411, 413, 415, 429, 503),
        },
        examples=[
            OpenApiExample(
                "One event",
                value={
                    "event_id": "0b6e4a3c-3f7e-4c1e-9b8a-2f4f7d9c1a11",
                    "tenant_id": "acme",
                    "user_id": "u_42",
                    "session_id": "s_9",
                    "event_type": "REPLAY_ABORTED",
                    "occurred_at": "2026-02-08T14:32:15+02:00",
                    "metadata": {"user_agent": "Mozilla/5.0"},
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        return answer_response(gated_ingest(request._request, NATIVE, api_key=request_api_key(request)))


# --- The north star ---------------------------------------------------------------------------
class InteractionRecordApi(APIView):
    """``POST /metrics/interaction``: the north star's recording endpoint (ingest keys)."""

    permission_classes = [IngestScope]
    cors_ingest = True
    parser_classes = [RawJSONParser]

    @extend_schema(
        operation_id="metrics_interaction_record",
        summary="Record one real-user interaction",
        description=(
            "Body: `user_id` (required), `interaction_type` (required: signup, login, coach_call, agent_run, "
            "decision or feedback, recorded as the registry type with that north-star role (coach_call and "
            "agent_run: core_action), or any registered event type name), `metadata` (object), and optional "
            "`tenant_id`, `occurred_at` (ISO 8601 with offset; defaults to now) and `event_id` (UUID, makes a "
            "retry idempotent). Stored and classified like any event: internal, test, demo and bot traffic is "
            "kept but never counts. Rate-limited per key like every ingest endpoint."
        ),
        request={"application/json": INTERACTION_BODY},
        responses={
            200: inline_serializer(name="InteractionRecorded", fields={"status": serializers.CharField()}),
            400: OpenApiResponse(
                inline_serializer(
                    name="InteractionRejection",
                    fields={"detail": serializers.CharField(), "errors": serializers.DictField(required=False)},
                ),
                description="Malformed body or an invalid field (`errors` names each field).",
            ),
            **error_responses(401, 403, 411, 413, 415, 429, 503),
        },
        examples=[
            OpenApiExample(
                "A coach call",
                value={"user_id": "u_42", "interaction_type": "coach_call", "metadata": {"agent": "sre"}},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        refused: list[InteractionError] = []

        def run() -> IngestReceipt:
            gated = request_gate(request._request, NATIVE, api_key=request_api_key(request))
            _, is_single = native_items(gated.payload, max_items=1)
            if not is_single:
                raise IngestError("Send one interaction object, not a batch.")
            try:
                return interaction_record(payload=gated.payload, source=gated.api_key)
            except InteractionError as exc:
                refused.append(exc)  # answered with its per-field errors below
                raise

        answer = gate_answer(NATIVE, run)
        if refused:
            return Response({"detail": refused[0].message, "errors": refused[0].errors}, status=refused[0].status)
        if answer.status == 200:
            return Response({"status": "recorded"}, status=200)
        return answer_response(answer)


class DaysSinceLastInteractionApi(APIView):
    """``GET /metrics/days-since-last-interaction`` (read keys or a staff session)."""

    @extend_schema(
        operation_id="metrics_days_since_last_interaction",
        summary="The north star: days since the last real user interaction",
        description=(
            "The documented fields: `metric`, `value` (float days, null when there are no real users), `status` "
            "(no_users_yet; active below 1 day; warning below 7; critical from 7), `target` (0), "
            "`last_interaction` (ISO 8601 with offset) and `total_users` (distinct real users). Then "
            "`current_state` (days since the first and last signup, login, core action and decision), "
            "`daily_active_users` and `monthly_active_users` against their targets, and `milestones` "
            "with the date each was reached."
        ),
        responses={200: OpenApiTypes.OBJECT, **error_responses(401, 403, 503)},
    )
    def get(self, request: Request) -> Response:
        return Response(north_star_payload())


# --- Parked names ------------------------------------------------------------------------------
class UnregisteredQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(
        min_value=1, max_value=1000, default=100, help_text="How many names, most events first."
    )


UnregisteredNameSerializer = inline_serializer(
    name="UnregisteredEventType",
    fields={
        "name": serializers.CharField(help_text="The name as the product sends it (the most used spelling)."),
        "events": serializers.IntegerField(help_text="Parked events of this name."),
        "first_seen": serializers.DateTimeField(),
        "last_seen": serializers.DateTimeField(),
        "example": serializers.DictField(help_text="The latest parked event of this name."),
    },
)


class UnregisteredEventTypesApi(APIView):
    """``GET /ops/event-types/unregistered`` (read keys or a staff session)."""

    permission_classes = [ReadScopeOrStaff]

    @extend_schema(
        operation_id="event_types_unregistered",
        summary="Names the product sends that the registry does not know (parked events)",
        description=(
            "Each name with its parked events (stored, never counted), first and last seen and one example. "
            "Registering a name (admin, or `PUT /ops/event-types/{name}`) makes its parked history count from "
            "the next recompute."
        ),
        parameters=[UnregisteredQuerySerializer],
        responses={
            200: inline_serializer(
                name="UnregisteredEventTypes",
                fields={"results": serializers.ListField(child=UnregisteredNameSerializer)},
            ),
            400: FIELD_ERRORS,
            **error_responses(401, 403, 503),
        },
    )
    def get(self, request: Request) -> Response:
        limit = validated(UnregisteredQuerySerializer, request.query_params)["limit"]
        results: list[dict[str, Any]] = [name.as_dict() for name in unregistered_event_types(limit=limit)]
        return Response({"results": results})
