"""The per-key rate windows the ingest gate counts in (the keys themselves are core's)."""

from __future__ import annotations

from django.db import models

from core.models.keys import ApiKey


class IngestRateWindow(models.Model):
    """Requests one key made in one minute: the ingest rate limiter's counter.

    Disposable (the table is UNLOGGED: no WAL per request, emptied by a crash,
    which only forgets a minute of counts); pruned hourly.
    """

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    window_start = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "window_start"], name="ingest_rate_window_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.api_key_id} {self.window_start:%Y-%m-%d %H:%M}: {self.requests}"
