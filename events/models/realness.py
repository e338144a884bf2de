"""The real-user rules (internal users, bot user agents), their state, and the real users they leave."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class InternalUserRuleKind(models.TextChoices):
    USER_ID = "user_id", "User id (exact)"
    EMAIL_DOMAIN = "email_domain", "Email domain (metadata.email)"


class InternalUserRule(models.Model):
    """The founder and the team: their events are ``internal_user``, never real."""

    kind = models.CharField(max_length=16, choices=InternalUserRuleKind.choices)
    value = models.CharField(
        max_length=255,
        help_text="A user id exactly as the product sends it, or an email domain such as example.com "
        "(matched case-insensitively against the part of metadata.email after the last @).",
    )
    note = models.CharField(max_length=255, blank=True, help_text="Who this is, e.g. 'the founder'.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["kind", "value"]
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="internal_user_rule_unique")]
        verbose_name = "internal user or domain"
        verbose_name_plural = "internal users and domains"

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"


class UserAgentReason(models.TextChoices):
    AUTOMATION_CLIENT = "automation_client", "Automation client (curl, scripts)"
    BOT = "bot", "Bot, crawler or headless browser"


class UserAgentPattern(models.Model):
    """A case-insensitive regular expression matched against ``metadata.user_agent``
    (the end user's agent as the product forwards it). The HTTP User-Agent of the
    ingestion request is the product's backend and never classifies anything.

    Patterns run both in Python (at ingestion) and in PostgreSQL (reclassifying
    history), so they must use the common subset: literals, ``|``, ``()``, ``[]``,
    ``.``, ``*``, ``+``, ``?``, ``^``, ``$``. No ``\\b`` (it means backspace in
    PostgreSQL) and no ``(?P<...>)``; saving checks both engines accept it.
    """

    pattern = models.CharField(max_length=255, unique=True)
    reason = models.CharField(max_length=32, choices=UserAgentReason.choices)
    description = models.CharField(max_length=255, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["id"]
        verbose_name = "user-agent pattern"

    def __str__(self) -> str:
        return f"{self.pattern} → {self.reason}"


class ClassificationState(models.Model):
    """Singleton (pk=1): bookkeeping for the classification passes.

    ``rules_version`` is bumped by every rule edit made through the services, so
    ingestion processes drop their cached rules at once. ``applied_fingerprint``
    is the digest of the rules the last full reclassification applied: the
    periodic pass compares it with the rules in force and reruns the full pass on
    any difference (this catches edits made outside the services, such as a tenant
    flagged internal in the customers admin).
    """

    rules_version = models.BigIntegerField(default=0)
    applied_fingerprint = models.CharField(max_length=64, blank=True)
    # ingest_xid (as an integer) below which every row has been re-checked by the periodic pass.
    xid_watermark = models.BigIntegerField(default=0)
    # PAGE_VIEWs that occurred before this instant have been judged for single-page visits.
    single_page_cutoff = models.DateTimeField(null=True, blank=True)
    last_full_at = models.DateTimeField(null=True, blank=True)
    last_full_changed = models.BigIntegerField(default=0, help_text="Rows the last full pass changed.")

    class Meta:
        verbose_name = "classification state"

    def __str__(self) -> str:
        return f"rules v{self.rules_version}, last full pass {self.last_full_at}"


# --- The north star: cached per-user first/last real interaction ----------------------------


class RealUser(models.Model):
    """One row per real user: first and last real interaction (counting types only).

    A cache of ``ops_events`` maintained by the ingest statement (an idempotent
    LEAST/GREATEST upsert) and rebuilt from the event table by every
    reclassification. It is what ``/metrics`` and the north-star endpoint read, so
    neither ever scans the event table.
    """

    user_id = models.CharField(primary_key=True, max_length=255)
    first_interaction_at = models.DateTimeField()
    last_interaction_at = models.DateTimeField()

    class Meta:
        db_table = "ops_real_users"
        indexes = [
            # max(last) for "days since", and DAU/MAU range counts.
            models.Index(fields=["last_interaction_at"], name="ops_real_users_last"),
            # "the date the Nth user arrived" for milestones.
            models.Index(fields=["first_interaction_at"], name="ops_real_users_first"),
        ]

    def __str__(self) -> str:
        return self.user_id
