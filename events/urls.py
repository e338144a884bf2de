"""URLs of the events app (ingestion and the north-star metric). Included from opsconsole/urls.py."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from events.apis import EventIngestApi

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/events", EventIngestApi.as_view(), name="events-ingest"),
]
