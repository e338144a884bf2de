"""The ingestion API: ``POST /api/v1/events``."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.auth import IngestScope, request_api_key
from events.selectors import north_star_payload
from events.services import (
    IngestError,
    InteractionError,
    events_ingest,
    ingest_items_parse,
    ingest_rate_check,
    interaction_record,
)
from opsconsole.openapi import error_responses

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
    """Accepts application/json without parsing: the view parses the bytes itself
    so that size, encoding and shape errors get precise messages."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        return None


class EventIngestApi(APIView):
    permission_classes = [IngestScope]
    parser_classes = [RawJSONParser]

    @extend_schema(
        operation_id="events_ingest",
        summary="Send events (one object, or a batch of up to 1,000)",
        description=(
            'Body: one event object, or `{"events": [...]}` with at most 1,000 events and 1 MiB. '
            "Each event: `event_type` (required, a registered type), `event_id` (UUID, for idempotency; "
            "generated if absent), `tenant_id`, `user_id`, `session_id`, `occurred_at` (ISO 8601 with offset, "
            "not more than 5 minutes in the future; defaults to now) and `metadata` (object).\n\n"
            "The answer is a receipt. Valid events are stored even when others in the batch are rejected; "
            "resending stores nothing twice. A 2xx means the accepted events are committed. "
            "When every event is rejected the answer is 400 with the same receipt."
        ),
        request=OpenApiTypes.OBJECT,
        responses={
            200: ReceiptSerializer,
            400: OpenApiResponse(
                IngestRejectionSerializer, description="Malformed body, or every event rejected (with the receipt)."
            ),
            **error_responses(401, 403, 413, 415, 429, 503),
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
        refused = _json_content_type_refusal(request)
        if refused is not None:
            return refused
        encoding = request.headers.get("Content-Encoding", "identity").lower()
        if encoding not in ("", "identity"):
            return Response(
                {"detail": f"Content-Encoding '{encoding}' is not accepted; send uncompressed JSON."}, status=415
            )
        api_key = request_api_key(request)
        if api_key is not None:
            retry_after = ingest_rate_check(api_key=api_key)
            if retry_after is not None:
                response = Response(
                    {"detail": f"Rate limit for this key reached; nothing was stored. Retry in {retry_after} s."},
                    status=429,
                )
                response["Retry-After"] = str(retry_after)
                return response
        try:
            items, _is_single = ingest_items_parse(_read_body(request))
            receipt = events_ingest(items=items, source=api_key)
        except IngestError as exc:
            return Response({"detail": exc.message}, status=exc.status)
        body = receipt.as_dict()
        if receipt.rejected and not receipt.accepted and not receipt.duplicates:
            body["detail"] = "Every event was rejected; see 'rejected' for the reason for each."
            return Response(body, status=400)
        return Response(body, status=200)


def _json_content_type_refusal(request: Request) -> Response | None:
    """415 unless the body is declared as JSON (the views parse the bytes themselves)."""
    media_type = (request.content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        return Response(
            {"detail": f"Content-Type must be application/json, not '{media_type or 'missing'}'."}, status=415
        )
    return None


def _read_body(request: Request) -> bytes:
    """Read at most one byte over the limit, so an oversized body is refused
    without being buffered whole."""
    limit = settings.INGEST_MAX_BYTES
    length = request.headers.get("Content-Length")
    if length is not None:
        try:
            if int(length) > limit:
                raise IngestError(f"Request body is over the {limit} byte limit.", status=413)
        except ValueError as exc:
            raise IngestError("Content-Length is not a number.") from exc
    return request._request.read(limit + 1)


# --- The north star ---------------------------------------------------------------------------
class InteractionRecordApi(APIView):
    """``POST /metrics/interaction``: the spec's recording endpoint (ingest keys)."""

    permission_classes = [IngestScope]
    parser_classes = [RawJSONParser]

    @extend_schema(
        operation_id="metrics_interaction_record",
        summary="Record one real-user interaction",
        description=(
            "Body: `user_id` (required), `interaction_type` (required: signup, login, coach_call, agent_run, "
            "decision, export, feedback, or any registered event type name), `metadata` (object), and optional "
            "`tenant_id`, `occurred_at` (ISO 8601 with offset; defaults to now) and `event_id` (UUID, makes a "
            "retry idempotent). Stored and classified like any event: internal, test, demo and bot traffic is "
            "kept but never counts."
        ),
        request=OpenApiTypes.OBJECT,
        responses={
            200: inline_serializer(name="InteractionRecorded", fields={"status": serializers.CharField()}),
            400: OpenApiResponse(
                inline_serializer(
                    name="InteractionRejection",
                    fields={"detail": serializers.CharField(), "errors": serializers.DictField(required=False)},
                ),
                description="Malformed body or an invalid field (`errors` names each field).",
            ),
            **error_responses(401, 403, 413, 415, 503),
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
        refused = _json_content_type_refusal(request)
        if refused is not None:
            return refused
        try:
            items, is_single = ingest_items_parse(_read_body(request))
            if not is_single:
                raise IngestError("Send one interaction object, not a batch.")
            interaction_record(payload=items[0], source=request_api_key(request))
        except InteractionError as exc:
            return Response({"detail": exc.message, "errors": exc.errors}, status=exc.status)
        except IngestError as exc:
            return Response({"detail": exc.message}, status=exc.status)
        return Response({"status": "recorded"}, status=200)


class DaysSinceLastInteractionApi(APIView):
    """``GET /metrics/days-since-last-interaction`` (read keys or a staff session)."""

    @extend_schema(
        operation_id="metrics_days_since_last_interaction",
        summary="The north star: days since the last real user interaction",
        description=(
            "The spec's fields: `metric`, `value` (float days, null when there are no real users), `status` "
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
