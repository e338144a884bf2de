"""DRF's content negotiation with the commonest request answered without parsing.

Every API read that names no format (no ``Accept`` header, or ``*/*``: curl, requests, the SDKs,
monitoring) gets what DRF's ``DefaultContentNegotiation`` picks for it, the first renderer with its
own media type. DRF reaches that by building the request's header mapping and parsing the media
types, which costs a cached read answer more than finding its bytes; anything else (an ``Accept``
header naming types, ``?format=``, a format suffix) goes through DRF's own negotiation unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

# What DRF reads a missing Accept header as.
ANY_MEDIA_TYPE = "*/*"


class ContentNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: Any = None
    ) -> tuple[BaseRenderer, str]:
        first = next(iter(renderers), None)
        if (
            first is not None
            and request.META.get("HTTP_ACCEPT", ANY_MEDIA_TYPE) == ANY_MEDIA_TYPE
            and not format_suffix
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            # DRF's answer for */*: the first renderer, with its media type (no parameters to carry).
            return first, str(first.media_type)
        return super().select_renderer(request, renderers, format_suffix)
