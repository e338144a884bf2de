"""URLs of the infra app (API and pages). Included from opsconsole/urls.py."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from infra.apis import InfraApi
from infra.views import infra_page

urlpatterns: list[URLPattern | URLResolver] = [
    path("ops/infra", InfraApi.as_view(), name="ops-infra"),
    path("infra/", infra_page, name="infra-page"),
]
