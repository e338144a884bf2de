"""Error answers shared by every API view's OpenAPI declaration.

Every rejection the API gives is a 4xx with a message: ``{"detail": "..."}``, or
DRF's field errors ``{"parameter": ["message", ...]}`` for an invalid query
parameter. Declaring them once keeps the schema honest: the schema fuzz test
(tests/reliability/test_api_schema_fuzz.py) fails on any status code or body an
operation gives without declaring it.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

ErrorDetailSerializer = inline_serializer(
    name="ErrorDetail", fields={"detail": serializers.CharField(help_text="What was wrong and what to do.")}
)

_DESCRIPTIONS = {
    401: "No key, an unknown or revoked key, or a malformed Authorization header.",
    403: "The key's scope (or the user) does not allow this.",
    404: "Not found.",
    411: "A chunked body this server cannot read (it did not de-chunk it); send Content-Length.",
    413: "The body (inflated) is over the size or count limit.",
    415: "The Content-Type or Content-Encoding is not one this endpoint takes.",
    429: "Over this key's requests per minute; see Retry-After.",
    503: "The database is unavailable; nothing was stored. See Retry-After.",
}

FIELD_ERRORS = OpenApiResponse(
    OpenApiTypes.OBJECT, description='Invalid parameters or fields: {"name": ["message", ...]}.'
)


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """``{code: ErrorDetail}`` for each code, with a description of when it happens."""
    return {code: OpenApiResponse(ErrorDetailSerializer, description=_DESCRIPTIONS[code]) for code in codes}


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """``data`` validated by the serializer, or the 400 with DRF's field errors (``FIELD_ERRORS``)."""
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise ValidationError(serializer.errors)
    return dict(serializer.validated_data)
