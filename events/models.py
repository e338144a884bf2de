"""The authoritative record: every event the product sent, and what each type means.

``ops_events`` is append-only and is the single source of truth. Every other
table that holds numbers about tenants (rollups, ``ops_tenant_metrics``) is a
cache that ``manage.py recompute_metrics --full`` rebuilds from this table.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import uuid

from django.contrib.postgres.indexes import BrinIndex
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class EventCategory(models.TextChoices):
    FRICTION = "friction", "Friction"
    INTENT = "intent", "Intent"
    VALUE = "value", "Value"
    ENGAGEMENT = "engagement", "Engagement"
    LIFECYCLE = "lifecycle", "User lifecycle"
    CHANGE = "change", "Change"
    CUSTOM = "custom", "Custom"


class FrictionSignal(models.TextChoices):
    """What an event of a type says about the customer's experience (empty: nothing)."""

    FRICTION = "friction", "Friction (a flow abandoned)"
    HESITATION = "hesitation", "Hesitation (looked, did nothing)"
    INTENT = "intent", "Intent (started something)"
    SYSTEM_ISSUE = "system_issue", "System issue (the product failed)"
    BLOCKED = "blocked", "Blocked (a rule or policy stopped them)"
    ENGAGEMENT = "engagement", "Engagement (session boundaries)"


class NorthStarRole(models.TextChoices):
    """The north star's lifecycle steps; each maps to the product's own event types."""

    SIGNUP = "signup", "Signup"
    LOGIN = "login", "Login"
    CORE_ACTION = "core_action", "Core action"
    DECISION = "decision", "Decision"
    FEEDBACK = "feedback", "Feedback"


# The bounds of every weight a founder may set (friction and engagement): a larger value
# overflows nothing, but no product's weighting needs one, and a typo like 1e308 is refused.
WEIGHT_MIN = 0.0
WEIGHT_MAX = 100.0
EVENT_TYPE_NAME_MAX = 64
LABEL_MAX = 100


def event_type_name_validate(value: str) -> None:
    """A type name is 1-64 printable characters as the product sends it ("Order Completed", "$pageview")."""
    if not value or len(value) > EVENT_TYPE_NAME_MAX:
        raise ValidationError(f"An event type name has 1 to {EVENT_TYPE_NAME_MAX} characters.")
    if value != value.strip() or not value.isprintable():
        raise ValidationError("An event type name has printable characters only, with no leading or trailing space.")


def weight_validate(value: float) -> None:
    """A weight is a finite number (NaN passes the range validators, since it compares false)."""
    if not math.isfinite(value):
        raise ValidationError(
            "A weight is a finite number between %(min)g and %(max)g.", params={"min": WEIGHT_MIN, "max": WEIGHT_MAX}
        )


def event_type_label_default(name: str) -> str:
    """The label a type reads as until the founder writes one: "invoice_sent" -> "Invoice sent"."""
    if "_" not in name and not name.isupper():
        return name  # already spelled for people ("Order Completed", "$pageview")
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:].lower()


class EventType(models.Model):
    """The event type registry: which types exist, how each one counts, and what role it plays.

    Every concept the engine uses is a property of types here, never a type name
    in code: ``core_value`` (the product's main value action), ``friction_signal``
    and ``friction_weight``, ``engagement_weight``, ``north_star_role``,
    ``page_view``, ``label``. The spec's taxonomy is only the seeded default.
    Names are matched case-insensitively and keep the first spelling (one unique
    index on ``lower(name)``). Weights are read by the metrics engine; editing
    one changes the next recompute.
    """

    name = models.CharField(
        primary_key=True,
        max_length=EVENT_TYPE_NAME_MAX,
        validators=[event_type_name_validate],
        help_text="The name as the product sends it, e.g. invoice_sent, Order Completed or REPLAY_ABORTED "
        "(matched case-insensitively).",
    )
    label = models.CharField(
        max_length=LABEL_MAX,
        blank=True,
        help_text='A human name used in every founder-facing text, e.g. "Invoice sent". Empty: derived from the name.',
    )
    category = models.CharField(max_length=16, choices=EventCategory.choices, default=EventCategory.CUSTOM)
    description = models.CharField(max_length=255, blank=True)
    core_value = models.BooleanField(
        default=False,
        help_text="The product's main value action (an invoice sent, an incident investigated). Silent churn "
        "and never-used-the-core-value read it.",
    )
    friction_signal = models.CharField(
        max_length=32,
        blank=True,
        choices=FrictionSignal.choices,
        help_text="What this type says about the experience; copied onto each event at ingestion. "
        "blocked feeds the repeated-block rule, system_issue counts failures.",
    )
    friction_weight = models.FloatField(
        default=0.0,
        validators=[weight_validate, MinValueValidator(WEIGHT_MIN), MaxValueValidator(WEIGHT_MAX)],
        help_text="Weight in the friction score (0-100); 0 means the type is not friction.",
    )
    engagement_weight = models.FloatField(
        default=0.0,
        validators=[weight_validate, MinValueValidator(WEIGHT_MIN), MaxValueValidator(WEIGHT_MAX)],
        help_text="Weight in the stickiness score (0-100); 0 means the type does not count.",
    )
    north_star_role = models.CharField(
        max_length=16,
        blank=True,
        choices=NorthStarRole.choices,
        help_text="The north star's lifecycle step this type is (its current-state rows and /metrics/interaction).",
    )
    page_view = models.BooleanField(
        default=False, help_text="A page view: the single-page-visit rule looks at these types."
    )
    counts_as_real_interaction = models.BooleanField(
        default=False,
        help_text="Whether this type moves 'days since last real user interaction'.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["category", "name"]
        constraints = [
            # Names match case-insensitively: "Login" and "LOGIN" are one type, first spelling kept.
            models.UniqueConstraint(
                Lower("name"),
                name="events_eventtype_name_ci",
                violation_error_message="An event type with this name already exists in another case "
                "(names match case-insensitively); edit that one instead.",
            ),
            models.CheckConstraint(
                condition=models.Q(friction_weight__gte=WEIGHT_MIN, friction_weight__lte=WEIGHT_MAX)
                & models.Q(engagement_weight__gte=WEIGHT_MIN, engagement_weight__lte=WEIGHT_MAX),
                name="events_eventtype_weights_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def display_label(self) -> str:
        return self.label or event_type_label_default(self.name)


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


class UserProfile(models.Model):
    """What the product said about a user (identify calls, ``$set``/``$set_once``).

    ``email_domain`` feeds the internal-user rule: an internal domain here excludes
    the user's events, past (a reclassification) and future (``classify_batch``).
    """

    user_id = models.CharField(primary_key=True, max_length=255)
    email = models.CharField(max_length=320, blank=True)
    # Lower-cased part of the email after the last @, compared with the internal domains.
    email_domain = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=255, blank=True)
    traits = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "ops_user_profiles"
        indexes = [
            # The rules fingerprint joins the internal domains to the profiles that carry them.
            models.Index(fields=["email_domain"], name="ops_user_profiles_domain", condition=~models.Q(email_domain=""))
        ]

    def __str__(self) -> str:
        return f"{self.user_id} <{self.email}>"


class UserAccount(models.Model):
    """A user's account (tenant), remembered from group calls, ``$groups`` and
    ``$groupidentify``, so a later event of that user with no group is attributed to it.

    One account per user: the latest group call wins (a user who moves company moves).
    """

    user_id = models.CharField(primary_key=True, max_length=255)
    tenant_id = models.CharField(max_length=128)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "ops_user_accounts"

    def __str__(self) -> str:
        return f"{self.user_id} -> {self.tenant_id}"


class AccountTraits(models.Model):
    """What the product said about an account (a group call's traits, ``$groupidentify``)."""

    tenant_id = models.CharField(primary_key=True, max_length=128)
    name = models.CharField(max_length=255, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "ops_account_traits"
        verbose_name_plural = "account traits"

    def __str__(self) -> str:
        return self.tenant_id


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


class NorthStarSettings(models.Model):
    """Singleton (pk=1): the targets the founder sets, editable in admin."""

    dau_target = models.PositiveIntegerField(default=10, help_text="Daily active real users to aim for.")
    mau_target = models.PositiveIntegerField(default=50, help_text="Monthly (30-day) active real users to aim for.")

    class Meta:
        verbose_name = "north-star targets"
        verbose_name_plural = "north-star targets"

    def __str__(self) -> str:
        return f"DAU target {self.dau_target}, MAU target {self.mau_target}"


class Milestone(models.Model):
    """A dated goal: reached on the day the number of distinct real users first hit ``users``."""

    name = models.CharField(max_length=120)
    target_date = models.DateField()
    users = models.PositiveIntegerField(help_text="Distinct real users needed.")
    max_days = models.FloatField(
        null=True, blank=True, help_text="The days-since metric should be below this (empty: no limit)."
    )
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "target_date"]

    def __str__(self) -> str:
        return self.name


# --- Alerts ----------------------------------------------------------------------------------------


class AlertState(models.Model):
    """Singleton (pk=1): the north-star status the last evaluation saw, so a
    transition is announced once and a critical reminder at most once a day."""

    status = models.CharField(max_length=16, blank=True)
    changed_at = models.DateTimeField(null=True, blank=True)
    last_reminder_at = models.DateTimeField(null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.status or 'never evaluated'} since {self.changed_at}"


class ConditionAlertState(models.Model):
    """The level last announced for one watched condition (``infra:db_storage``,
    ``metrics:freshness``...), so each change is announced once."""

    key = models.CharField(primary_key=True, max_length=64)
    level = models.CharField(max_length=16)
    changed_at = models.DateTimeField()
    evaluated_at = models.DateTimeField()
    detail = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.level}"


class NotificationKind(models.TextChoices):
    TRANSITION = "transition", "Status change"
    REMINDER = "reminder", "Daily reminder while critical"
    WEEKLY_CHECKIN = "weekly_checkin", "Weekly check-in"
    CONDITION = "condition", "Condition (infrastructure, stale metrics)"


class NotificationChannel(models.TextChoices):
    SLACK = "slack", "Slack incoming webhook"
    EMAIL = "email", "Email"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Failed, will retry"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed for good"


class AlertNotification(models.Model):
    """One message to one channel, with its delivery result. ``dedupe_key`` is
    unique, so an evaluation that runs twice (two workers, a retry) cannot send
    the same announcement twice."""

    created_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=NotificationKind.choices)
    channel = models.CharField(max_length=8, choices=NotificationChannel.choices)
    dedupe_key = models.CharField(max_length=200, unique=True)
    status_from = models.CharField(max_length=16, blank=True)
    status_to = models.CharField(max_length=16, blank=True)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    target = models.CharField(max_length=500, help_text="Webhook host or email addresses (never the secret path).")
    state = models.CharField(max_length=8, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="alert_notification_due")]

    def __str__(self) -> str:
        return f"{self.kind} {self.channel} {self.status_to} ({self.state})"
