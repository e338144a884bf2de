"""URLs of the validation app (API and page). Included from opsconsole/urls.py."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from validation import views
from validation.apis import BacktestApi, BacktestScoresApi

urlpatterns: list[URLPattern | URLResolver] = [
    path("ops/validation/backtest", BacktestApi.as_view(), name="validation-backtest"),
    path("ops/validation/backtest/scores", BacktestScoresApi.as_view(), name="validation-backtest-scores"),
    path("validation/", views.validation_page, name="validation-page"),
    path("validation/weights/adopt", views.learned_weights_adopt_page, name="validation-weights-adopt"),
    path("validation/weights/spec", views.spec_weights_restore_page, name="validation-weights-spec"),
    path("validation/model/adopt", views.churn_model_adopt_page, name="validation-model-adopt"),
    path("validation/model/stop", views.churn_model_stop_page, name="validation-model-stop"),
    path("validation/backtest/start", views.backtest_start_page, name="validation-backtest-start"),
]
