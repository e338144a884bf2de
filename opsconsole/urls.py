"""URL map. Paths named by issues (``/api/v1/events``, ``/metrics/...``, ``/ops/...``)
are a public contract: keep them exactly. Each app owns its own ``urls.py``."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from events.urls import ingest_urlpatterns
from opsconsole.health import healthz, readyz
from opsconsole.views import favicon, today_page

admin.site.site_header = "Ops Console"
admin.site.site_title = "Ops Console admin"
admin.site.index_title = "Playbooks, rules, event types, keys and schedules"
# "View site" in admin goes back to the console's Today page.
admin.site.site_url = "/"


# Django tries the patterns in order, each include's one by one: the console's reads (the customers'
# answers, in customers and playbooks) come before the many SDK ingest routes (an ingest request is
# a batch, a read is one answer to serve cheaply). No two apps' patterns overlap, so the order
# changes no answer.
urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("favicon.ico", favicon, name="favicon"),
    # Django tries the patterns in order: Today and the reads first (their kept answers cost less
    # than walking the map), the ingest endpoints next (most requests, many of one event).
    path("", today_page, name="home"),
    path("", include("customers.urls")),
    path("", include(ingest_urlpatterns)),
    path("", include("playbooks.urls")),
    path("", include("events.urls")),
    path("", include("infra.urls")),
    path("", include("validation.urls")),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[]), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema", permission_classes=[]), name="api-docs"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=False), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
handler404 = "opsconsole.views.not_found"
handler500 = "opsconsole.views.server_error"
