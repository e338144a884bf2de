"""URLs of the playbooks app (API and pages). Included from opsconsole/urls.py.

First the customers' answers and pages that show the playbooks each customer matched and its
follow-up (playbooks/customer_apis.py, playbooks/customer_views.py): their paths and names are the
customers' public ones, kept exactly."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from playbooks import views
from playbooks.apis import (
    ChurnDetailApi,
    ChurnListCreateApi,
    InterventionDetailApi,
    InterventionListCreateApi,
    InterventionOutcomeApi,
    PlaybookDetailApi,
    PlaybookEffectivenessApi,
    PlaybookListApi,
    SignalValidationApi,
    StripeWebhookApi,
)
from playbooks.customer_apis import CustomerAtRiskApi, CustomerDetailApi
from playbooks.customer_views import at_risk_csv, customer_page, customers_page

urlpatterns: list[URLPattern | URLResolver] = [
    # Before the detail route: "at-risk" is not a tenant id.
    path("ops/customers/at-risk", CustomerAtRiskApi.as_view(), name="customers-at-risk"),
    path("ops/customers/<str:tenant_id>", CustomerDetailApi.as_view(), name="customers-detail"),
    path("customers/", customers_page, name="customers-page"),
    # Before the Customer page's route: "at-risk.csv" is not a tenant id.
    path("customers/at-risk.csv", at_risk_csv, name="customers-at-risk-csv"),
    path("customers/<str:tenant_id>/", customer_page, name="customer-page"),
    path("ops/playbooks", PlaybookListApi.as_view(), name="playbooks-list"),
    # Before the detail route: "effectiveness" is not a playbook id.
    path("ops/playbooks/effectiveness", PlaybookEffectivenessApi.as_view(), name="playbooks-effectiveness"),
    path("ops/playbooks/<str:playbook_id>", PlaybookDetailApi.as_view(), name="playbooks-detail"),
    path("ops/signal-validation", SignalValidationApi.as_view(), name="signal-validation"),
    path("ops/interventions", InterventionListCreateApi.as_view(), name="interventions"),
    path("ops/interventions/<int:intervention_id>", InterventionDetailApi.as_view(), name="intervention-detail"),
    path(
        "ops/interventions/<int:intervention_id>/outcome", InterventionOutcomeApi.as_view(), name="intervention-outcome"
    ),
    path("ops/churns", ChurnListCreateApi.as_view(), name="churns"),
    path("ops/churns/<int:churn_id>", ChurnDetailApi.as_view(), name="churn-detail"),
    path("api/v1/stripe/webhook", StripeWebhookApi.as_view(), name="stripe-webhook"),
    # Pages
    path("playbooks/", views.playbooks_page, name="playbooks-page"),
    path("playbooks/interventions/new/", views.intervention_new, name="playbooks-intervention-new"),
    path(
        "playbooks/interventions/<int:intervention_id>/outcome/",
        views.intervention_outcome,
        name="playbooks-intervention-outcome",
    ),
    path(
        "playbooks/interventions/<int:intervention_id>/undo/",
        views.intervention_undo,
        name="playbooks-intervention-undo",
    ),
    path(
        "playbooks/interventions/<int:intervention_id>/outcome/undo/",
        views.intervention_outcome_undo,
        name="playbooks-intervention-outcome-undo",
    ),
    path("playbooks/churns/new/", views.churn_new, name="playbooks-churn-new"),
    path("playbooks/churns/<int:churn_id>/undo/", views.churn_undo, name="playbooks-churn-undo"),
    path("playbooks/snoozes/new/", views.snooze_new, name="playbooks-snooze-new"),
    path("playbooks/snoozes/end/", views.snooze_end_view, name="playbooks-snooze-end"),
    path("playbooks/snoozes/<int:snooze_id>/undo/", views.snooze_undo, name="playbooks-snooze-undo"),
    path("playbooks/<slug:playbook_id>/", views.playbook_page, name="playbook-page"),
]
