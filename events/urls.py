"""URLs of the events app (ingestion, the SDK drop-in endpoints, the north-star metric and the
parked names). Included from opsconsole/urls.py."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path, register_converter

from events.apis import DaysSinceLastInteractionApi, EventIngestApi, InteractionRecordApi, UnregisteredEventTypesApi
from events.registry_apis import EventTypeDetailApi, EventTypeListApi
from events.sdk_apis import (
    SEGMENT_ALIAS_VIEWS,
    SEGMENT_VIEWS,
    PostHogCaptureAliasApi,
    PostHogCaptureApi,
    PostHogFlagsView,
    PostHogRemoteConfigView,
    SegmentSettingsView,
)
from events.views import metrics_view, vocabulary_examples_remove, vocabulary_page


class AnyNameConverter:
    """Any non-empty text, newlines and "/" included: a bad name gets the view's 400 naming
    the field, not a 404 from the resolver (whose ``path`` converter stops at a newline)."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AnyNameConverter, "any_name")

# PostHog's capture paths, as its SDKs post them (with and without the trailing slash: a POST
# that APPEND_SLASH would redirect loses its body).
POSTHOG_PATHS = ("batch", "capture", "e", "i/v0/e")
# analytics.js (analytics-next) posts each call to the first letter of its type under its apiHost.
SEGMENT_SHORT_PATHS = {
    "t": "track",
    "p": "page",
    "i": "identify",
    "g": "group",
    "a": "alias",
    "s": "screen",
    "b": "batch",
}

# The ingest endpoints, included by opsconsole/urls.py on their own, right after the console's reads:
# Django walks the patterns in order, and ingest is most of a console's requests, many of one event.
ingest_urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/events", EventIngestApi.as_view(), name="events-ingest")
]
for _path in POSTHOG_PATHS:
    ingest_urlpatterns += [
        path(f"{_path}/", PostHogCaptureApi.as_view(), name=f"posthog-{_path.replace('/', '-')}"),
        path(_path, PostHogCaptureAliasApi.as_view()),
    ]
for _call, _view in SEGMENT_VIEWS.items():
    ingest_urlpatterns += [
        path(f"v1/{_call}", _view.as_view(), name=f"segment-{_call}"),
        path(f"v1/{_call}/", SEGMENT_ALIAS_VIEWS[_call].as_view()),
    ]
for _short, _call in SEGMENT_SHORT_PATHS.items():
    ingest_urlpatterns.append(
        path(f"v1/{_short}", SEGMENT_ALIAS_VIEWS[_call].as_view(), name=f"segment-short-{_short}")
    )
urlpatterns: list[URLPattern | URLResolver] = [
    path("metrics/interaction", InteractionRecordApi.as_view(), name="metrics-interaction"),
    path(
        "metrics/days-since-last-interaction",
        DaysSinceLastInteractionApi.as_view(),
        name="metrics-days-since-last-interaction",
    ),
    path("metrics", metrics_view, name="metrics-prometheus"),
    path("vocabulary/", vocabulary_page, name="vocabulary"),
    path("vocabulary/examples/remove", vocabulary_examples_remove, name="vocabulary-examples-remove"),
    path("ops/event-types", EventTypeListApi.as_view(), name="event-types"),
    # Before "ops/event-types/<name>": "unregistered" is the parked names' list, not a type name.
    path("ops/event-types/unregistered", UnregisteredEventTypesApi.as_view(), name="event-types-unregistered"),
    path("ops/event-types/<any_name:name>", EventTypeDetailApi.as_view(), name="event-type"),
    # What posthog-js and analytics.js read on every page load before they send.
    path("flags/", PostHogFlagsView.as_view(), name="posthog-flags"),
    path("flags", PostHogFlagsView.as_view(), name="posthog-flags-unslashed"),
    path("decide/", PostHogFlagsView.as_view(), name="posthog-decide"),
    path("decide", PostHogFlagsView.as_view(), name="posthog-decide-unslashed"),
    path("array/<str:key>/config", PostHogRemoteConfigView.as_view(), name="posthog-config"),
    path("array/<str:key>/config.js", PostHogRemoteConfigView.as_view(script=True), name="posthog-config-js"),
    path("v1/projects/<str:write_key>/settings", SegmentSettingsView.as_view(), name="segment-settings"),
]
