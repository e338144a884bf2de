"""CORS for the ingest endpoints, so a product's web pages can send their events from the
visitor's browser (posthog-js, analytics.js, or a plain fetch to /api/v1/events).

Only views that declare ``cors_ingest = True`` take part (the ingest endpoints and the SDKs'
configuration endpoints); every other URL, the read and write API included, never answers a
cross-origin request. The browser learns nothing here that the page could not send itself:

- a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) is answered at once, 204,
  before any key is known (a preflight carries neither the body nor the Authorization header);
- every answer to a request with an ``Origin`` echoes it in ``Access-Control-Allow-Origin``,
  the errors too, so the page's SDK can read a 401, a 403 for an origin the key does not allow
  (events/ingestion/gate.py decides that, per key), or a 429 and its ``Retry-After``;
- credentials are never allowed: ``Access-Control-Allow-Credentials`` is never sent, so a
  browser never attaches the console's session cookie to a cross-origin call.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

# Headers the SDKs send: Segment's Basic auth and retry count, the native endpoint's Bearer
# key, and Content-Encoding from a client that gzips (posthog-js marks gzip in the body instead).
ALLOWED_REQUEST_HEADERS = "Authorization, Content-Type, Content-Encoding, X-Retry-Count"
ALLOWED_METHODS = "GET, POST, OPTIONS"
# Chromium caps this at 2 hours; a preflight per page view is what it saves.
PREFLIGHT_MAX_AGE_SECONDS = 7200
# A cross-origin script reads only the CORS-safelisted response headers unless told otherwise;
# analytics-next waits out Retry-After on a 429 (posthog-js does not retry one: README).
EXPOSED_HEADERS = "Retry-After"


# (URL configuration, path) -> whether its view takes part. Remembered per process: resolving a
# path tries the console's patterns first (opsconsole/urls.py), and the handler resolves it again for
# the view. Bounded: paths are the client's to choose.
_CORS_PATHS: dict[tuple[str, str], bool] = {}
CORS_PATHS_MAX = 4096


def _is_cors_ingest(request: HttpRequest) -> bool:
    key = (getattr(request, "urlconf", None) or settings.ROOT_URLCONF, request.path_info)
    known = _CORS_PATHS.get(key)
    if known is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            known = False
        else:
            view_class = getattr(match.func, "view_class", None) or getattr(match.func, "cls", None)
            known = bool(getattr(view_class, "cors_ingest", False))
        if len(_CORS_PATHS) >= CORS_PATHS_MAX:
            _CORS_PATHS.clear()
        _CORS_PATHS[key] = known
    return known


def _allow_origin(response: HttpResponse, origin: str) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    vary = response.get("Vary", "")
    if "origin" not in vary.lower():
        response["Vary"] = f"{vary}, Origin" if vary else "Origin"
    return response


class IngestCorsMiddleware:
    """Answers preflights and allows the page's origin on the ingest endpoints' answers.

    Sits before the database middleware, so a 503 for a database failure carries the
    header too (the SDK then retries instead of reporting a network error).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        origin = request.META.get("HTTP_ORIGIN", "")
        # Requests without Origin (server SDKs, curl, same-origin GETs) cost nothing here.
        if not origin or not _is_cors_ingest(request):
            return self.get_response(request)
        if request.method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in request.META:
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response["Access-Control-Allow-Headers"] = ALLOWED_REQUEST_HEADERS
            response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
            return _allow_origin(response, origin)
        return _allow_origin(self.get_response(request), origin)


def _url_configuration_changed(*, setting: str, **kwargs: object) -> None:
    if setting == "ROOT_URLCONF":
        _CORS_PATHS.clear()  # as Django clears its own URL caches


setting_changed.connect(_url_configuration_changed)
