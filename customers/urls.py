"""URLs of the customers app (API and pages). Included from opsconsole/urls.py."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from customers.apis import CustomerAtRiskApi, CustomerDetailApi, CustomerListApi
from customers.lifecycle_apis import LifecycleApi, RetentionApi
from customers.lifecycle_views import retention_page
from customers.views import at_risk_csv, customer_page, customers_page

urlpatterns: list[URLPattern | URLResolver] = [
    path("ops/customers", CustomerListApi.as_view(), name="customers-list"),
    # Before the detail route: "at-risk" is not a tenant id.
    path("ops/customers/at-risk", CustomerAtRiskApi.as_view(), name="customers-at-risk"),
    path("ops/customers/<str:tenant_id>", CustomerDetailApi.as_view(), name="customers-detail"),
    path("ops/lifecycle", LifecycleApi.as_view(), name="lifecycle"),
    path("ops/retention", RetentionApi.as_view(), name="retention"),
    # Console pages.
    path("customers/", customers_page, name="customers-page"),
    path("retention/", retention_page, name="retention-page"),
    path("customers/at-risk.csv", at_risk_csv, name="customers-at-risk-csv"),
    path("customers/<str:tenant_id>/", customer_page, name="customer-page"),
]
