"""Drop-in endpoints for the PostHog, Segment and RudderStack SDKs, unchanged.

Each view hands the request to the one gate (events/ingestion/gate.py) with its format adapter
(events/ingestion/formats/): the key travels the SDK's way (a body field, Basic auth, or a Bearer
token), and the answer is what that SDK expects (PostHog ``{"status": 1}``, Segment
``{"success": true}``; errors with the fields each SDK reads, and 429 with Retry-After,
which all three honour). Unregistered names are parked, never rejected.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import IngestScopeInGate
from core.openapi import error_responses
from events.apis import RawJSONParser, answer_response
from events.ingestion.formats.posthog import POSTHOG
from events.ingestion.formats.segment import SEGMENT_BATCH, SEGMENT_CALLS, SegmentFormat
from events.ingestion.gate import IngestFormat, gated_ingest, ingest_key_resolve, origin_enforce
from events.ingestion.validation import IngestError
from events.schemas import (
    POSTHOG_BODY,
    POSTHOG_ERROR,
    POSTHOG_OK,
    SEGMENT_BATCH_BODY,
    SEGMENT_ERROR,
    SEGMENT_OK,
    segment_message,
)

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
    cors_ingest = True  # posthog-js and analytics.js post from the product's web pages (events/cors.py)
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


# --- What the browser SDKs read before they send ------------------------------------------------
# posthog-js's remote config (/array/<key>/config, config.js) and its flags (/flags, /decide):
# no feature flags, no session recording, no surveys, no site apps, nothing loaded from
# elsewhere. posthog-js then sends events only, gzip-compressed (it reads supportedCompression).
POSTHOG_REMOTE_CONFIG: dict[str, Any] = {
    "supportedCompression": ["gzip", "gzip-js"],
    "hasFeatureFlags": False,
    "autocapture_opt_out": False,
    "capturePerformance": False,
    "autocaptureExceptions": False,
    "errorTracking": {"autocaptureExceptions": False, "suppressionRules": []},
    "logs": {"captureConsoleLogs": False},
    "elementsChainAsString": True,
    "sessionRecording": False,
    "surveys": False,
    "productTours": False,
    "heatmaps": False,
    "captureDeadClicks": False,
    "conversations": False,
    "defaultIdentifiedOnly": True,
    "siteApps": [],
    "toolbarParams": {},
    "isAuthenticated": False,
}
# /flags (v2) and /decide (v1) in one answer: each version reads its own keys and ignores the rest.
POSTHOG_FLAGS: dict[str, Any] = {
    **POSTHOG_REMOTE_CONFIG,
    "flags": {},
    "featureFlags": {},
    "featureFlagPayloads": {},
    "errorsWhileComputingFlags": False,
    "quotaLimited": [],
}


def _script_json(value: Any) -> str:
    """JSON safe inside a script: ASCII only (so no U+2028 line break), and no ``<``, ``>`` or
    ``&`` that could close a tag if the text is ever inlined."""
    text = json.dumps(value, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@method_decorator(csrf_exempt, name="dispatch")
class _BrowserSdkConfigView(View):
    """A configuration answer the browser SDKs fetch on every page load: no key is checked
    (it reveals nothing and stores nothing), no session is read (so no CSRF token), and CORS
    lets any page read it (events/cors.py)."""

    cors_ingest = True
    http_method_names = ["get", "post", "options"]

    def options(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = HttpResponse(status=204)
        response["Allow"] = "GET, POST, OPTIONS"
        return response


class PostHogFlagsView(_BrowserSdkConfigView):
    """``/flags`` (posthog-js's v2) and ``/decide``: no flags, no recordings, no surveys.
    The body (the visitor's distinct id, groups, maybe gzip) is not read: the answer is the same for all."""

    def get(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse(POSTHOG_FLAGS)

    def post(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse(POSTHOG_FLAGS)


class PostHogRemoteConfigView(_BrowserSdkConfigView):
    """``/array/<key>/config`` (JSON) and ``/array/<key>/config.js`` (the script posthog-js loads
    first, which hands it the same config under its key)."""

    script = False
    http_method_names = ["get", "options"]

    def get(self, request: HttpRequest, key: str) -> HttpResponse:
        if not self.script:
            return JsonResponse(POSTHOG_REMOTE_CONFIG)
        body = (
            "(function(){var w=window;w._POSTHOG_REMOTE_CONFIG=w._POSTHOG_REMOTE_CONFIG||{};"
            f"w._POSTHOG_REMOTE_CONFIG[{_script_json(key)}]={{config:{_script_json(POSTHOG_REMOTE_CONFIG)},siteApps:[]}};}})();"
        )
        return HttpResponse(body, content_type="application/javascript; charset=utf-8")


def segment_settings(*, write_key: str, api_host: str, protocol: str) -> dict[str, Any]:
    """analytics.js's project settings with its one destination, ``Segment.io``, pointed at
    the console (``api_host`` is host[:port]/v1): no other destinations, no middleware, no
    metrics sent to Segment."""
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": api_host,
                "protocol": protocol,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }


class SegmentSettingsView(_BrowserSdkConfigView):
    """``GET /v1/projects/<writeKey>/settings``: what analytics.js loads from its CDN, so
    ``AnalyticsBrowser.load({writeKey, cdnURL: <the console>})`` needs no Segment CDN. The write
    key must be a live ingest key that allows the page's origin (a clear 401/403 otherwise)."""

    http_method_names = ["get", "options"]

    def get(self, request: HttpRequest, write_key: str) -> HttpResponse:
        try:
            api_key = ingest_key_resolve(write_key)
            origin_enforce(request, api_key)
        except IngestError as exc:
            return JsonResponse(SEGMENT_BATCH.refusal(exc).body, status=exc.status)
        settings = segment_settings(
            write_key=write_key,
            api_host=f"{request.get_host()}/v1",
            protocol="https" if request.is_secure() else "http",
        )
        return JsonResponse(settings)
