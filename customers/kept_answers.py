"""Read API answers served from their kept JSON before DRF's dispatch.

A read API's answer is kept per recompute as its rendered JSON (customers/apis.py::answer_cached).
Serving those bytes through DRF still cost its dispatch: wrapping the request, making the
authenticators, parsers, renderers and permissions, negotiating and finishing the response,
several times what finding the bytes costs. A GET that DRF would answer with those bytes (a key
in a Bearer header that the view's own authenticator accepts and its own permissions allow, no
format asked for) gets them here, with the headers DRF's ``finalize_response`` adds; anything else
(a session, an ``Accept`` header or ``?format=``, a refused key, an answer not kept yet for this
version, a database error) goes through DRF's dispatch unchanged, which answers it as before.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.db import DatabaseError, InterfaceError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from rest_framework.exceptions import APIException
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from core.auth import ApiKeyAuthentication
from customers.read_cache import kept_per_recompute

# What DRF reads a missing Accept header as: the first renderer (JSON) answers it.
ANY_MEDIA_TYPE = "*/*"
# The suffix answer_cached keeps the JSON bytes of an answer under.
JSON_SUFFIX = ":json"


# The view class -> the headers DRF's finalize_response adds to its answers (Allow, and Vary: Accept,
# the format depending on it): a function of the class, so worked out once.
_kept_headers: dict[type, dict[str, str]] = {}


def format_asked(request: HttpRequest) -> bool:
    """Whether the query names a format (DRF's ``?format=``): read from the raw query string, since
    parsing it into ``request.GET`` cost a kept answer more than finding its bytes. A query holding
    the parameter's name anywhere, or any escape, is parsed, so an encoded name is still seen."""
    override = api_settings.URL_FORMAT_OVERRIDE
    if not override:
        return False
    query = request.META.get("QUERY_STRING", "")
    if override not in query and "%" not in query:
        return False
    return override in request.GET


class KeptAnswerApi(APIView):
    """An APIView whose GET answer is kept by ``answer_cached(request, self.kept_answer_key(request), ...)``."""

    def kept_answer_key(self, request: HttpRequest) -> str:
        raise NotImplementedError

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            body = self._kept_answer(request)
        except (DatabaseError, InterfaceError, APIException):
            body = None  # DRF's dispatch meets it again and answers it (a 401, a 503 naming the failure)
        if body is None:
            return super().dispatch(request, *args, **kwargs)
        headers = _kept_headers.get(type(self))
        if headers is None:
            headers = _kept_headers[type(self)] = self.default_response_headers
        # What DRF's finalize_response makes of the same HttpResponse (a fresh one has no Vary to merge).
        return HttpResponse(body, content_type="application/json", headers=headers)

    def _kept_answer(self, request: HttpRequest) -> bytes | None:
        if (
            request.method != "GET"
            or request.META.get("HTTP_ACCEPT", ANY_MEDIA_TYPE) != ANY_MEDIA_TYPE
            or format_asked(request)
        ):
            return None
        if not self.authentication_classes or not issubclass(self.authentication_classes[0], ApiKeyAuthentication):
            return None
        # The view's first authenticator, as DRF would call it (it reads only the Authorization header).
        found = self.authentication_classes[0]().authenticate(request)
        if found is None:
            return None
        user, api_key = found
        caller = SimpleNamespace(user=user, auth=api_key, method=request.method)
        if not all(permission.has_permission(caller, self) for permission in self.get_permissions()):  # type: ignore[arg-type]
            return None
        body = kept_per_recompute(self.kept_answer_key(request) + JSON_SUFFIX)
        return body if isinstance(body, bytes) else None
