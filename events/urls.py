"""URLs of the events app (ingestion and the north-star metric). Included from opsconsole/urls.py."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path, register_converter

from events.apis import DaysSinceLastInteractionApi, EventIngestApi, InteractionRecordApi
from events.registry_apis import EventTypeDetailApi, EventTypeListApi
from events.views import metrics_view, vocabulary_page


class AnyNameConverter:
    """Any non-empty text, newlines and "/" included: a bad name gets the view's 400 naming
    the field, not a 404 from the resolver (whose ``path`` converter stops at a newline)."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AnyNameConverter, "any_name")

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
    path("ops/event-types", EventTypeListApi.as_view(), name="event-types"),
    path("ops/event-types/<any_name:name>", EventTypeDetailApi.as_view(), name="event-type"),
]
