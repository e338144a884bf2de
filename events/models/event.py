"""``ops_events``, the authoritative record, and the import runs that fill it from history."""

from __future__ import annotations

import uuid

from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.utils import timezone

from core.models.keys import ApiKey


class ExclusionReason(models.TextChoices):
    INTERNAL_USER = "internal_user", "Internal user (founder or team)"
    INTERNAL_TENANT = "internal_tenant", "Internal tenant"
    TEST_TRAFFIC = "test_traffic", "Test traffic"
    AUTOMATION_CLIENT = "automation_client", "Automation client (curl, scripts, automation key)"
    BOT = "bot", "Bot or crawler"
    DEMO = "demo", "Demo account"
    SINGLE_PAGE_VISIT = "single_page_visit", "Single-page visit"
    # Parked: the type is not in the registry yet. Kept, never counted; registering the
    # name makes the next reclassification count it (events/classification.py).
    UNREGISTERED = "unregistered", "Unregistered type (parked)"


class Event(models.Model):
    """One thing that happened in the product. Append-only; never updated
    except for the derived classification columns (``is_real``,
    ``exclusion_reason``), which ``reclassify_events`` recomputes from the rules.
    """

    # Unique per account, not globally (ops_events_tenant_event below): Citus requires every unique key of a
    # table distributed by tenant_id to include it, and a retry carries the same account as its first send.
    event_id = models.UUIDField(default=uuid.uuid4, help_text="Client-supplied for idempotency (unique per account).")
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
        # No database constraint: its check ran once per stored row at every ingest commit, for a
        # key the gate had just authenticated; keys are revoked, not deleted, and Django's PROTECT
        # still refuses to delete one that sent events (as on Citus, where such keys are dropped).
        db_constraint=False,
        help_text="Key that sent it.",
    )
    friction_signal = models.CharField(max_length=32, blank=True)
    is_real = models.BooleanField(default=True)
    exclusion_reason = models.CharField(max_length=32, choices=ExclusionReason.choices, blank=True)

    class Meta:
        db_table = "ops_events"
        constraints = [
            # The ingest statement's ON CONFLICT (tenant_id, event_id) arbiter: a resend stores nothing twice.
            models.UniqueConstraint(fields=["tenant_id", "event_id"], name="ops_events_tenant_event"),
        ]
        indexes = [
            # Time-range scans over the whole table (full recompute, retention).
            BrinIndex(fields=["occurred_at"], name="ops_events_occurred_brin"),
            # Per-tenant time ranges (customer detail, timelines).
            models.Index(fields=["tenant_id", "occurred_at"], name="ops_events_tenant_time"),
            # The north star's "Current State": first and last real event of a type is one
            # top-1 probe of this small partial index (real, attributed events only).
            models.Index(
                fields=["event_type", "occurred_at"],
                name="ops_events_real_type_time",
                condition=models.Q(is_real=True) & ~models.Q(user_id=""),
            ),
            # Single-page visits: "is this page view the only event of its session?"
            models.Index(fields=["session_id"], name="ops_events_session", condition=~models.Q(session_id="")),
            # An anonymous visitor's history, re-attributed when they identify (events/ingestion/identities.py):
            # tenant-less events only, which is what an anonymous visitor sends, so the index stays small.
            models.Index(fields=["user_id"], name="ops_events_tenantless_user", condition=models.Q(tenant_id="")),
            # Parked events (unregistered types): the unregistered-types list and the rename
            # that registering a name triggers read only these rows.
            models.Index(
                fields=["event_type", "occurred_at"],
                name="ops_events_parked",
                condition=models.Q(exclusion_reason="unregistered"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.tenant_id or '-'} {self.occurred_at:%Y-%m-%d %H:%M}"


class ImportRun(models.Model):
    """How far ``import_events`` got through one file: a crashed import resumes here.

    Written in the same transaction as each batch, so ``bytes_done`` never claims rows
    that were not committed (the event ids dedupe anything stored twice anyway).
    """

    file_key = models.CharField(max_length=64, unique=True, help_text="Digest of the file's path, size and head.")
    path = models.CharField(max_length=1000)
    file_format = models.CharField(max_length=16)
    bytes_done = models.BigIntegerField(default=0)
    rows_done = models.BigIntegerField(default=0)
    accepted = models.BigIntegerField(default=0)
    duplicates = models.BigIntegerField(default=0)
    rejected = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.path}: {self.rows_done} rows"
