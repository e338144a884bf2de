"""Every URL pattern of the project, read from the resolver, with converters filled with sample values
(tests/test_auth_matrix.py checks who may reach each; tests/test_url_map.py that each is reached)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

SAMPLE_ARGUMENTS = {
    "str": "acme",
    "slug": "acme",
    "int": "1",
    "path": "acme",
    "any_name": "acme",  # an event type name (events/urls.py)
    "uuid": str(uuid.uuid4()),
}


@dataclass(frozen=True)
class Route:
    path: str
    name: str
    callback: Any

    @property
    def api_view(self) -> type[APIView] | None:
        cls = getattr(self.callback, "cls", None)
        return cls if isinstance(cls, type) and issubclass(cls, APIView) else None


def url_routes(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[Route]:
    """Every URL pattern, depth first, with converters filled with sample values."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = str(entry.pattern)
        if isinstance(entry, URLResolver):
            if route == "admin/":
                # Django's own admin: its index stands for all of it (admin_view guards each page).
                yield Route("/admin/", "admin:index", None)
                continue
            yield from url_routes(entry.url_patterns, prefix + route)
        elif isinstance(entry, URLPattern):
            path = prefix + route
            for converter, value in SAMPLE_ARGUMENTS.items():
                while f"<{converter}:" in path:
                    start = path.index(f"<{converter}:")
                    path = path[:start] + value + path[path.index(">", start) + 1 :]
            assert "<" not in path, f"add a sample value for the converter in {path}"
            yield Route("/" + path, entry.name or path, entry.callback)
