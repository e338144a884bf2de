"""The authoritative record: every event the product sent, and what each type means.

``ops_events`` is append-only and is the single source of truth. Every other
table that holds numbers about tenants (rollups, ``ops_tenant_metrics``) is a
cache that ``manage.py recompute_metrics --full`` rebuilds from this table.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.utils import timezone


class EventCategory(models.TextChoices):
    FRICTION = "friction", "Friction"
    INTENT = "intent", "Intent"
    VALUE = "value", "Value"
    ENGAGEMENT = "engagement", "Engagement"
    LIFECYCLE = "lifecycle", "User lifecycle"
    CHANGE = "change", "Change"
    CUSTOM = "custom", "Custom"


class EventType(models.Model):
    """The event type registry: which types exist and how each one counts.

    Ingestion rejects a type that is not here. Weights are read by the metrics
    engine; editing one changes the next recompute.
    """

    name = models.CharField(
        primary_key=True,
        max_length=64,
        help_text="Upper-case name the product sends, e.g. REPLAY_ABORTED.",
    )
    category = models.CharField(max_length=16, choices=EventCategory.choices, default=EventCategory.CUSTOM)
    description = models.CharField(max_length=255, blank=True)
    friction_signal = models.CharField(
        max_length=32,
        blank=True,
        help_text="Signal this type carries (friction, hesitation, system_issue, intent, engagement); "
        "copied onto each event at ingestion.",
    )
    friction_weight = models.FloatField(
        default=0.0, help_text="Weight in the friction score; 0 means the type is not friction."
    )
    engagement_weight = models.FloatField(
        default=0.0, help_text="Weight in the stickiness score; 0 means the type does not count."
    )
    counts_as_real_interaction = models.BooleanField(
        default=False,
        help_text="Whether this type moves 'days since last real user interaction'.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["category", "name"]

    def __str__(self) -> str:
        return self.name


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


class ExclusionReason(models.TextChoices):
    INTERNAL_USER = "internal_user", "Internal user (founder or team)"
    INTERNAL_TENANT = "internal_tenant", "Internal tenant"
    TEST_TRAFFIC = "test_traffic", "Test traffic"
    AUTOMATION_CLIENT = "automation_client", "Automation client (curl, scripts, automation key)"
    BOT = "bot", "Bot or crawler"
    DEMO = "demo", "Demo account"
    SINGLE_PAGE_VISIT = "single_page_visit", "Single-page visit"


class Event(models.Model):
    """One thing that happened in the product. Append-only; never updated
    except for the derived classification columns (``is_real``,
    ``exclusion_reason``), which ``reclassify_events`` recomputes from the rules.
    """

    event_id = models.UUIDField(default=uuid.uuid4, unique=True, help_text="Client-supplied for idempotency.")
    tenant_id = models.CharField(
        max_length=128, blank=True, help_text="Customer account; empty for a user-level event such as a signup."
    )
    user_id = models.CharField(max_length=255, blank=True)
    session_id = models.CharField(max_length=255, blank=True)
    event_type = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    metadata = models.JSONField(default=dict, blank=True)
    source = models.ForeignKey(
        ApiKey,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        # No index: nothing looks events up by key, and every index costs each insert.
        db_index=False,
        help_text="Key that sent it.",
    )
    friction_signal = models.CharField(max_length=32, blank=True)
    is_real = models.BooleanField(default=True)
    exclusion_reason = models.CharField(max_length=32, choices=ExclusionReason.choices, blank=True)

    class Meta:
        db_table = "ops_events"
        indexes = [
            # Time-range scans over the whole table (full recompute, retention).
            BrinIndex(fields=["occurred_at"], name="ops_events_occurred_brin"),
            # Per-tenant time ranges (customer detail, timelines).
            models.Index(fields=["tenant_id", "occurred_at"], name="ops_events_tenant_time"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.tenant_id or '-'} {self.occurred_at:%Y-%m-%d %H:%M}"


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
