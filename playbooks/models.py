"""Founder playbooks: editable records the metrics engine evaluates, and what the founder did about them.

A ``Playbook`` is data, not prose: its ``TriggerCondition`` rows name a metric
from a fixed catalogue (playbooks/conditions.py), an operator, a threshold and
a window, and the engine turns them into SQL after every recompute. What the
founder does (``InterventionRecord``) and who was lost (``ChurnRecord``) are
kept so the heuristics can be validated before anything is automated.

``PlaybookMatch`` and ``TenantRiskDay`` are written by the post-recompute hook
(playbooks.evaluation.playbooks_evaluate). ``PlaybookMatch`` is a cache of the
current matches (rebuilt every run); ``TenantRiskDay`` is history: one row per
flagged tenant per UTC day, and it cannot be rebuilt from ``ops_events`` because
playbooks and thresholds change over time. Keep it.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from customers.models import RiskLevel, Tenant
from events.registry import event_type_registry
from playbooks.conditions import condition_text, selectors_split

# The longest note, outcome note or churn reason a founder action keeps (the API, the page
# forms and the services check it).
NOTE_MAX_CHARS = 5000


class Channel(models.TextChoices):
    CALL = "call", "Phone call"
    VIDEO_CALL = "video_call", "Video call"
    EMAIL = "email", "Email"
    IN_APP = "in_app", "In-app message"
    SLACK = "slack", "Shared Slack channel"
    INTERNAL = "internal", "Internal (no customer contact)"
    OTHER = "other", "Other"


class Operator(models.TextChoices):
    LT = "<", "<"
    LTE = "<=", "<="
    GT = ">", ">"
    GTE = ">=", ">="
    EQ = "==", "=="


class PlaybookPurpose(models.TextChoices):
    RISK = "risk", "Risk: a matched customer is at risk"
    EXPANSION = "expansion", "Expansion: a matched customer is growing"


class Playbook(models.Model):
    """Signal -> action mapping a founder edits in admin ("learn manually before automating").

    A tenant matches when every condition holds; a matched tenant is at risk at
    least at ``risk_level``, unless the playbook's purpose is expansion: its
    matches are expansion candidates (the Customers page) and raise no level.
    Disabled playbooks are never evaluated.
    """

    id = models.SlugField(primary_key=True, max_length=64, help_text="Stable id used in the API, e.g. silent_churn.")
    name = models.CharField(max_length=120)
    risk_level = models.CharField(
        max_length=16,
        choices=RiskLevel.choices,
        help_text="A matched tenant is at risk at least at this level (ignored for an expansion playbook).",
    )
    purpose = models.CharField(
        max_length=16,
        choices=PlaybookPurpose.choices,
        default=PlaybookPurpose.RISK,
        help_text="Risk playbooks put matched customers on the call list; expansion playbooks list them as "
        "expansion candidates on the Customers page and never raise a risk level.",
    )
    success_metric = models.TextField(help_text="How to tell whether the playbook worked.")
    notes = models.TextField(blank=True, help_text="Context for the founder.")
    enabled = models.BooleanField(default=True, help_text="Disabled playbooks are not evaluated.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class TriggerCondition(models.Model):
    """One condition of a playbook: ``<metric> <operator> <threshold>`` over ``window_days``.

    ``metric`` is a key of playbooks.conditions.METRICS. ``event_types`` (comma
    separated) is only for ``event_count``; ``window_days`` only for windowed
    metrics. A NULL measured value (e.g. stickiness_delta without a baseline)
    never satisfies a condition.
    """

    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="conditions")
    metric = models.CharField(max_length=40)
    event_types = models.CharField(
        max_length=300,
        blank=True,
        help_text="For event_count only: comma-separated event type names (any case) or roles written "
        "'<role> events', e.g. invoice_sent, blocked events, core_value events, friction events weighing 2+.",
    )
    operator = models.CharField(max_length=2, choices=Operator.choices)
    threshold = models.FloatField()
    window_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Days the metric is measured over (windowed metrics only), ending today."
    )
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["playbook_id", "order", "id"]

    def __str__(self) -> str:
        # Roles read as the product's types: one read of the (small) registry.
        return condition_text(self, registry=event_type_registry())

    def event_type_list(self) -> list[str]:
        """The selectors as saved (type names in their registered spelling, or roles)."""
        return selectors_split(self.event_types)


class PlaybookAction(models.Model):
    """An ordered step of a playbook, with what to say."""

    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="actions")
    order = models.PositiveSmallIntegerField(default=0, help_text="Steps run in this order (1, 2, 3 ...).")
    step = models.CharField(max_length=200, help_text="What to do, e.g. 'Send a personal check-in email'.")
    timing = models.CharField(max_length=60, help_text="When, e.g. 'day 0', 'within 48h', 'day 7'.")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    talk_track = models.TextField(help_text="What to actually say or write.")

    class Meta:
        ordering = ["playbook_id", "order", "id"]

    def __str__(self) -> str:
        return f"{self.order}. {self.step} ({self.timing})"


class PlaybookMatch(models.Model):
    """A tenant matched by a playbook at the last recompute (cache, rewritten every run).

    ``measured`` holds, per condition in order, its readable text and the value
    that satisfied it. ``first_matched_at`` survives runs while the match holds.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="playbook_matches")
    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="matches")
    matched_at = models.DateTimeField()
    first_matched_at = models.DateTimeField()
    as_of = models.DateField()
    measured = models.JSONField(default=list)

    class Meta:
        db_table = "ops_playbook_match"
        constraints = [models.UniqueConstraint(fields=["tenant", "playbook"], name="ops_playbook_match_unique")]
        ordering = ["playbook_id", "tenant_id"]
        verbose_name_plural = "playbook matches (cache)"

    def __str__(self) -> str:
        return f"{self.tenant_id} matches {self.playbook_id}"


class EvaluationState(models.Model):
    """What the last playbook evaluation covered (one row, id=1): a fingerprint of the
    playbooks it evaluated and the day it evaluated them for.

    A recompute that rewrote only some tenants' metrics (the incremental path) and finds
    the same playbooks and day re-evaluates only those tenants: every other tenant's
    inputs (its rollups, its metrics row, its kind) are what they were, so its matches
    and raises still hold. A playbook edit, a new day or a full run evaluates everyone.
    Written in the recompute's transaction, so it never runs ahead of the matches.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    playbooks_key = models.CharField(max_length=64, blank=True)
    as_of = models.DateField(null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    tenants_evaluated = models.IntegerField(default=0, help_text="How many tenants the last evaluation covered.")

    class Meta:
        db_table = "ops_playbook_evaluation_state"
        verbose_name = "playbook evaluation state"

    def __str__(self) -> str:
        return f"playbooks evaluated for {self.as_of} at {self.evaluated_at}"


class TenantRiskDay(models.Model):
    """Who was at risk when: one row per flagged customer per UTC day (history, not a cache).

    Written by every recompute for the run's ``as_of`` day with an upsert: the
    day keeps the HIGHEST level any run that day assigned (after playbooks
    raised it) and the union of the playbooks matched that day. Tenants that
    were not at risk have no row. Used by playbook effectiveness (comparison
    group) and signal validation (was a churned tenant flagged, and how early).
    """

    pk = models.CompositePrimaryKey("tenant_id", "day")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="risk_days")
    day = models.DateField()
    risk_level = models.CharField(max_length=16, choices=RiskLevel.choices)
    risk_signal_strength = models.FloatField(default=0.0)
    playbooks = models.JSONField(default=list, help_text="Ids of the playbooks matched that day.")

    class Meta:
        db_table = "ops_tenant_risk_day"
        indexes = [models.Index(fields=["day"], name="ops_risk_day_day")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day}: {self.risk_level}"


class Outcome(models.TextChoices):
    RETAINED = "retained", "Retained"
    EXPANDED = "expanded", "Expanded"
    CHURNED = "churned", "Churned"
    NO_RESPONSE = "no_response", "No response"


class InterventionRecord(models.Model):
    """Something the founder did for a tenant, and later what came of it."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="interventions_taken")
    playbook = models.ForeignKey(
        Playbook, on_delete=models.SET_NULL, null=True, blank=True, related_name="interventions"
    )
    action = models.CharField(max_length=300, help_text="What was done, e.g. 'Called the CTO'.")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    date = models.DateField(default=timezone.localdate, help_text="Day the intervention was taken.")
    note = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, null=True, blank=True)  # noqa: DJ001
    outcome_at = models.DateField(null=True, blank=True, help_text="Day the outcome was observed.")
    outcome_note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.CharField(max_length=150, blank=True, help_text="Staff user or API key that recorded it.")

    class Meta:
        ordering = ["-date", "-id"]
        indexes = [models.Index(fields=["tenant", "date"], name="ops_intervention_tenant_day")]

    def __str__(self) -> str:
        return f"{self.date} {self.tenant_id}: {self.action}"


class ChurnRecord(models.Model):
    """A lost customer: the ground truth the risk signal is validated against."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="churns")
    date = models.DateField(help_text="Day the customer was lost (cancelled, did not renew, went silent for good).")
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-date", "-id"]

    def __str__(self) -> str:
        return f"{self.tenant_id} churned {self.date}"


class Snooze(models.Model):
    """The founder's choice to take a customer off the call list until a day, and why.

    The latest snooze of a tenant whose ``until`` is today or later holds; an earlier
    one, or one that has run out, is history. Logging an intervention after a snooze
    does not end it: the founder said when to look again.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="snoozes")
    until = models.DateField(help_text="Back on the call list on this day.")
    reason = models.CharField(max_length=300, help_text="Why, e.g. 'On holiday until the 14th'.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.CharField(max_length=150, blank=True)

    class Meta:
        db_table = "ops_snooze"
        ordering = ["-created_at", "-id"]
        # Used by the follow-up selector: a tenant's latest snoozes, newest first.
        indexes = [models.Index(fields=["tenant", "-created_at"], name="ops_snooze_tenant_latest")]

    def __str__(self) -> str:
        return f"{self.tenant_id} snoozed until {self.until}"


# --- Billing: churns and plan changes that arrive from Stripe ---------------------------------
class StripeCustomerLink(models.Model):
    """Which tenant a Stripe customer is. Filled from a subscription's ``metadata.tenant_id``
    when it names a known tenant, or by the founder in admin; ``tenant`` empty means the
    customer is waiting to be mapped (its events are kept and recorded once it is)."""

    stripe_customer_id = models.CharField(primary_key=True, max_length=255)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, null=True, blank=True, related_name="stripe_customers")
    hint = models.CharField(
        max_length=300, blank=True, help_text="What Stripe said about the customer (metadata.tenant_id, email)."
    )
    first_seen_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "ops_stripe_customer_link"
        ordering = ["stripe_customer_id"]

    def __str__(self) -> str:
        return f"{self.stripe_customer_id} -> {self.tenant_id or 'unmapped'}"


class StripeEventStatus(models.TextChoices):
    RECORDED = "recorded", "Recorded"
    UNMAPPED = "unmapped", "Waiting for the customer's tenant"
    IGNORED = "ignored", "Not a churn, plan or revenue change"


class StripeEvent(models.Model):
    """Every verified Stripe event received, keyed by Stripe's event id: a replayed event
    finds its row and records nothing twice, and an event whose customer is unknown is
    kept (``unmapped``) until the founder maps the customer."""

    event_id = models.CharField(primary_key=True, max_length=255)
    event_type = models.CharField(max_length=100)
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(help_text="When Stripe created the event.")
    received_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=StripeEventStatus.choices)
    tenant = models.ForeignKey(Tenant, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    churn = models.ForeignKey(ChurnRecord, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    payload = models.JSONField(help_text="The event's data.object, as Stripe sent it.")

    class Meta:
        db_table = "ops_stripe_event"
        ordering = ["-created_at"]
        # Used by the mapping of a customer: its unmapped events, oldest first.
        indexes = [models.Index(fields=["stripe_customer_id", "status"], name="ops_stripe_event_customer")]

    def __str__(self) -> str:
        return f"{self.event_id} {self.event_type} ({self.status})"


class PlanChangeRecord(models.Model):
    """A tenant's subscription plan changed (from ``customer.subscription.updated``)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="plan_changes")
    date = models.DateField()
    previous_plan = models.CharField(max_length=255, blank=True)
    plan = models.CharField(max_length=255, blank=True)
    stripe_event_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "ops_plan_change"
        ordering = ["-date", "-id"]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.previous_plan or '?'} -> {self.plan or '?'} on {self.date}"


class StripeSubscription(models.Model):
    """A Stripe subscription's monthly revenue as of the newest event (or export row) that described it.

    ``described_at`` is that event's ``created`` time: an older event delivered later changes
    nothing here (Stripe does not deliver in order). A customer's billed MRR is the sum of its
    subscriptions' ``mrr`` (a canceled subscription's is 0), per currency.
    """

    subscription_id = models.CharField(primary_key=True, max_length=255)
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=32, blank=True, help_text="Stripe's status (active, trialing, canceled...).")
    mrr = models.DecimalField(max_digits=14, decimal_places=2, help_text="Per month, in the currency's major unit.")
    currency = models.CharField(max_length=3)
    plan = models.CharField(max_length=255, blank=True)
    described_at = models.DateTimeField(help_text="When Stripe created the newest event (or export) applied.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "ops_stripe_subscription"
        # Used by the sum of a tenant's subscriptions after each change.
        indexes = [models.Index(fields=["tenant"], name="ops_stripe_subscription_tenant")]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.mrr} {self.currency} ({self.status})"
