"""Backtest runs in admin: their progress, errors and parameters (scores are read through the API)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from validation.models import BacktestRun


@admin.register(BacktestRun)
class BacktestRunAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "start_day", "end_day", "step_days", "horizons", "progress", "finished_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in BacktestRun._meta.fields]
    exclude = ["report", "dates_done"]

    @admin.display(description="dates scored")
    def progress(self, obj: BacktestRun) -> str:
        return f"{len(obj.dates_done)} / {obj.dates_total}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs are started by `manage.py backtest_risk` (or --background)
