"""URLs of the customers app (API and pages). Included from opsconsole/urls.py.

The at-risk and detail answers, the Customers and Customer pages and the at-risk CSV show the
playbooks each customer matched and its follow-up: their routes (same paths and names) are in
playbooks/urls.py, with their views.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from customers.apis import CustomerListApi
from customers.lifecycle_apis import LifecycleApi, RetentionApi
from customers.lifecycle_views import retention_page

urlpatterns: list[URLPattern | URLResolver] = [
    path("ops/customers", CustomerListApi.as_view(), name="customers-list"),
    path("ops/lifecycle", LifecycleApi.as_view(), name="lifecycle"),
    path("ops/retention", RetentionApi.as_view(), name="retention"),
    # Console pages.
    path("retention/", retention_page, name="retention-page"),
]
