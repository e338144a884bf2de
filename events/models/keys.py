"""Ingest and read keys, and the per-key rate windows the gate counts in."""

from __future__ import annotations

import hashlib
import re
import secrets

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

# A web origin as a browser sends it in the Origin header: scheme, host, optional port, no path.
ORIGIN_RE = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")


def origin_validate(value: str) -> None:
    if not ORIGIN_RE.fullmatch(value):
        raise ValidationError(
            f"'{value[:80]}' is not an origin: write it as the browser sends it, e.g. https://app.example.com "
            "(scheme, host and port only; no path, no trailing slash)."
        )


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
    allowed_origins = ArrayField(
        models.CharField(max_length=255, validators=[origin_validate]),
        default=list,
        blank=True,
        help_text="Web pages (origins, e.g. https://www.example.com) whose browsers may send events with this "
        "ingest key, comma-separated; empty allows any origin (an ingest key shipped in a page is public anyway). "
        "Read and read-write keys never answer a cross-origin request.",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.scope}, {self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def origin_allowed(self, origin: str) -> bool:
        """Whether a browser page on ``origin`` may use this key (the gate's CORS check)."""
        if self.scope != ApiKeyScope.INGEST:
            return False
        return not self.allowed_origins or origin.lower() in (o.lower() for o in self.allowed_origins)

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
# Editing any of these through admin (events/rules.py) bumps the rules version and
# queues a set-based reclassification of history; see events/classification.py.
