"""URLs of the events app (ingestion and the north-star metric). Included from opsconsole/urls.py."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from events.apis import DaysSinceLastInteractionApi, EventIngestApi, InteractionRecordApi
from events.registry_apis import EventTypeDetailApi, EventTypeListApi
from events.views import metrics_view, vocabulary_page

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/events", EventIngestApi.as_view(), name="events-ingest"),
    path("metrics/interaction", InteractionRecordApi.as_view(), name="metrics-interaction"),
    path(
        "metrics/days-since-last-interaction",
        DaysSinceLastInteractionApi.as_view(),
        name="metrics-days-since-last-interaction",
    ),
    path("metrics", metrics_view, name="metrics-prometheus"),
    path("vocabulary/", vocabulary_page, name="vocabulary"),
    # The registry's contract; <path:> because a name may hold any printable character, "/" included.
    path("ops/event-types", EventTypeListApi.as_view(), name="event-types"),
    path("ops/event-types/<path:name>", EventTypeDetailApi.as_view(), name="event-type"),
]
