"""Drop-in endpoints for the PostHog, Segment and RudderStack SDKs, unchanged.

Each view hands the request to the one gate (events/gate.py) with its format adapter
(events/formats/): the key travels the SDK's way (a body field, Basic auth, or a Bearer
token), and the answer is what that SDK expects (PostHog ``{"status": 1}``, Segment
``{"success": true}``; errors with the fields each SDK reads, and 429 with Retry-After,
which all three honour). Unregistered names are parked, never rejected.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.apis import RawJSONParser, answer_response
from events.auth import IngestScopeInGate
from events.formats.posthog import POSTHOG
from events.formats.segment import SEGMENT_BATCH, SEGMENT_CALLS, SegmentFormat
from events.gate import IngestFormat, gated_ingest
from events.schemas import (
    POSTHOG_BODY,
    POSTHOG_ERROR,
    POSTHOG_OK,
    SEGMENT_BATCH_BODY,
    SEGMENT_ERROR,
    SEGMENT_OK,
    segment_message,
)
from opsconsole.openapi import error_responses

# The statuses the gate answers with, in each format's error shape.
_REFUSALS = (400, 401, 403, 411, 413, 415, 429)
_KEY_WAYS = [{"BearerKey": []}, {}]  # {}: the key may travel in the body instead


class _AnyBodyParser(RawJSONParser):
    """Leaves every body to the gate (posthog-js sends text/plain and forms too)."""

    media_type = "*/*"


class SdkIngestApi(APIView):
    """Base of the SDK endpoints: the gate reads the key the SDK's way. DRF authenticates
    sessions only, so a logged-in console user is told a session cannot send events (403)."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IngestScopeInGate]
    parser_classes = [_AnyBodyParser]
    fmt: IngestFormat

    def post(self, request: Request) -> Response:
        return answer_response(gated_ingest(request._request, self.fmt))


def _responses(ok: dict[str, Any], error: dict[str, Any]) -> dict[int, Any]:
    refusals = {code: OpenApiResponse(error, description="Refused; nothing stored.") for code in _REFUSALS}
    return {200: OpenApiResponse(ok, description="Stored."), **refusals, **error_responses(503)}


_POSTHOG_SCHEMA = extend_schema(
    summary="PostHog capture (posthog-python, posthog-node, posthog-js)",
    description=(
        "PostHog's capture API: point an SDK's host at the console and use an ingest key as the project API "
        "key. `distinct_id` -> user, `uuid` -> event id, `properties` -> metadata, `$set`/`$set_once` -> the "
        "user's traits, `$groups.<INGEST_ACCOUNT_GROUP_TYPE>` -> account. Unregistered names are parked."
    ),
    request={"application/json": POSTHOG_BODY},
    responses=_responses(POSTHOG_OK, POSTHOG_ERROR),
    auth=_KEY_WAYS,
    tags=["PostHog"],
)


@extend_schema_view(post=_POSTHOG_SCHEMA)
class PostHogCaptureApi(SdkIngestApi):
    fmt = POSTHOG


@extend_schema_view(post=extend_schema(exclude=True))
class PostHogCaptureAliasApi(PostHogCaptureApi):
    """The same endpoint without its trailing slash (some SDK versions post there)."""


def _segment_view(fmt: SegmentFormat, *, documented: bool = True) -> type[SdkIngestApi]:
    call = fmt.call or "batch"
    schema = extend_schema(
        summary=f"Segment/RudderStack {call}",
        description=(
            "Segment's HTTP Tracking API (RudderStack's too): point the SDK's host at the console and use an "
            "ingest key as the write key (Basic auth or `writeKey`). `userId`/`anonymousId` -> user, "
            "`messageId` -> event id, `context.groupId` -> account, `traits` -> the user's (or a group's) "
            "traits, `context.userAgent` -> the user agent. 500 KB per batch, 32 KB per message."
        ),
        request={"application/json": SEGMENT_BATCH_BODY if fmt.call is None else segment_message(fmt.call)},
        responses=_responses(SEGMENT_OK, SEGMENT_ERROR),
        auth=_KEY_WAYS,
        tags=["Segment"],
        exclude=not documented,
    )
    name = f"Segment{call.title()}{'' if documented else 'Alias'}Api"
    return extend_schema_view(post=schema)(type(name, (SdkIngestApi,), {"fmt": fmt, "__doc__": f"POST /v1/{call}"}))


SEGMENT_VIEWS = {"batch": _segment_view(SEGMENT_BATCH)} | {
    call: _segment_view(fmt) for call, fmt in sorted(SEGMENT_CALLS.items())
}
SEGMENT_ALIAS_VIEWS = {"batch": _segment_view(SEGMENT_BATCH, documented=False)} | {
    call: _segment_view(fmt, documented=False) for call, fmt in sorted(SEGMENT_CALLS.items())
}
