"""Ingest and read keys, and the per-key rate windows the gate counts in."""

from __future__ import annotations

import hashlib
import secrets

from django.db import models
from django.utils import timezone


class ApiKeyScope(models.TextChoices):
    INGEST = "ingest", "Ingest (send events)"
    READ = "read", "Read (metrics and customers)"
    WRITE = "write", "Read-write (read, plus record interventions)"


class ApiKey(models.Model):
    """A bearer key. Only its SHA-256 is stored; the raw key is shown once.

    Keys are 256-bit random tokens, so a fast hash is enough: there is nothing
    to brute-force that a slow hash would protect.
    """

    PREFIX_LENGTH = 12

    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=16, choices=ApiKeyScope.choices)
    prefix = models.CharField(
        max_length=16, db_index=True, editable=False, help_text="First characters, to recognise a key."
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    is_automation = models.BooleanField(
        default=False,
        help_text="Events sent with this key are test or automation traffic and never count as real users.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(
        null=True, blank=True, help_text="Set to revoke the key; it stops working at once."
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Ingest requests this key may make per minute; empty uses INGEST_RATE_LIMIT_PER_MINUTE, 0 means no limit.",
    )
    park_unregistered = models.BooleanField(
        default=False,
        help_text="On /api/v1/events, store events of unregistered types parked (kept, never counted, listed "
        "under unregistered types) instead of rejecting them. The SDK endpoints always park.",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.scope}, {self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def hash_raw_key(raw_key: str) -> str:
        return hashlib.sha256(raw_key.encode()).hexdigest()

    @staticmethod
    def generate_raw_key() -> str:
        return "oc_" + secrets.token_urlsafe(32)


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


# --- Real or not: the classification rules ---------------------------------------------
# Editing any of these through admin (events.services) bumps the rules version and
# queues a set-based reclassification of history; see events/classification.py.
