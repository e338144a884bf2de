"""Customer accounts (tenants) as the product names them."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class TenantKind(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    INTERNAL = "internal", "Internal (our own account)"
    TEST = "test", "Test"
    DEMO = "demo", "Demo"


class Tenant(models.Model):
    """A customer account. Created on first sight by ingestion; the founder
    names it and flags internal, test and demo accounts in admin."""

    tenant_id = models.CharField(primary_key=True, max_length=128)
    name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(
        max_length=16,
        choices=TenantKind.choices,
        default=TenantKind.CUSTOMER,
        help_text="Internal, test and demo accounts never count as real users.",
    )
    first_seen_at = models.DateTimeField(default=timezone.now)
    notes = models.TextField(blank=True)
    monthly_event_limit = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="Events per 30 days the tenant's plan includes. Usage at 90% or more suggests a pricing talk.",
    )
    churned_at = models.DateField(
        null=True,
        blank=True,
        help_text="Day of the latest recorded churn (set by recording a churn). A churned customer is on no at-risk "
        "list until real activity resumes after this day (it then 'came back').",
    )

    class Meta:
        ordering = ["tenant_id"]
        indexes = [
            # Used by the churn settle statement (customers/churn.py), run by every recompute:
            # only the few churned tenants are read, never every tenant.
            models.Index(fields=["churned_at"], name="ops_tenant_churned", condition=models.Q(churned_at__isnull=False))
        ]

    def __str__(self) -> str:
        return self.name or self.tenant_id


# --- The metrics engine's caches ---------------------------------------------------------
# Everything below is derived from ``ops_events`` and is NOT authoritative: the
# rollups and ``ops_tenant_metrics`` can be dropped and rebuilt at any time with
# ``manage.py recompute_metrics --full``. They are shaped like Zulip's analytics
# count tables: (tenant, what, bucket, value) with one unique constraint, so the
# incremental path can add to them with INSERT ... ON CONFLICT DO UPDATE.
# Days are UTC calendar days of ``occurred_at``. Only events counted as real
# (``customers.metrics.fold.real_events_predicate``) are folded in.


class TenantDayCount(models.Model):
    """Raw number of real events per tenant, event type and UTC day.

    Counts, never weighted values: the event type registry's weights are
    applied when metrics are computed, so a weight edit changes the next
    recompute without a rebuild.
    """

    # The one unique key is the primary key: no surrogate id, so a fold writes one index per table.
    pk = models.CompositePrimaryKey("tenant_id", "event_type", "day")
    tenant_id = models.CharField(max_length=128)
    event_type = models.CharField(max_length=64)
    day = models.DateField()
    value = models.BigIntegerField()

    class Meta:
        db_table = "ops_rollup_tenant_day"

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.event_type} {self.day}: {self.value}"


class TenantEventSpan(models.Model):
    """First and latest ``occurred_at`` per tenant and event type, over all history.

    Kept apart from the day counts so "last core-value event", "last seen" and a
    tenant's age never need a scan of old days. ``min``/``max`` fold
    incrementally with LEAST/GREATEST.
    """

    pk = models.CompositePrimaryKey("tenant_id", "event_type")
    tenant_id = models.CharField(max_length=128)
    event_type = models.CharField(max_length=64)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()

    class Meta:
        db_table = "ops_rollup_tenant_span"
        indexes = [
            # Used by events.registry.event_types_speaking: has an example type been sent lately?
            # One probe per example type still untouched, on every page that names types.
            models.Index(fields=["event_type", "last_at"], name="ops_span_type_last"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.event_type} {self.first_at:%Y-%m-%d} .. {self.last_at:%Y-%m-%d}"


class SessionFrictionDayCount(models.Model):
    """Raw number of friction events per tenant, session, UTC day and type.

    The friction score caps each session's weighted sum at 5 and each day's at
    10. A cap is not additive, so the rollup keeps the uncapped raw counts per
    session and the caps are applied when metrics are computed
    (``LEAST(sum(count * weight), 5)``); incremental additions stay exact.
    Events without a session id are grouped per user (``user:<user_id>``).
    Only types with a friction weight when the rows were folded are kept here
    (the state row remembers which; a new friction type triggers a rebuild).
    """

    pk = models.CompositePrimaryKey("tenant_id", "day", "session_key", "event_type")
    tenant_id = models.CharField(max_length=128)
    day = models.DateField()
    session_key = models.CharField(max_length=300)
    event_type = models.CharField(max_length=64)
    value = models.BigIntegerField()

    class Meta:
        db_table = "ops_rollup_session_friction"

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.session_key} {self.day} {self.event_type}: {self.value}"


class TenantDaySummary(models.Model):
    """One tenant's real events of one UTC day, summed across event types, with the
    registry's weights applied: what the metrics and the playbooks read per day.

    A tenant has up to (event types x days) day counts; recomputing its metrics from
    them cost time that grew with how busy the tenant was (4x more rows per tenant at
    10M events than at 1M in the bench). This table holds at most one row per day, so
    recomputing a tenant reads at most ~60 rows. The weighted sums are exact decimals
    (``numeric``), so adding a fold's delta gives exactly what a rebuild gives.
    ``friction_score`` is the day's capped friction (each session capped at 5, the day
    at 10), recomputed from the day's session counts whenever the day gets new events.

    Unlike the other rollups it depends on the event type registry: the run that sees
    a registry edit rebuilds it from the day counts (no event is read again).
    """

    pk = models.CompositePrimaryKey("tenant_id", "day")
    tenant_id = models.CharField(max_length=128)
    day = models.DateField()
    events = models.BigIntegerField()
    engagement = models.DecimalField(max_digits=30, decimal_places=12, help_text="sum(count x engagement weight)")
    friction_events = models.BigIntegerField(help_text="Events of types with a friction weight.")
    policy_blocks = models.BigIntegerField()
    failures = models.BigIntegerField(help_text="Events whose type carries the system_issue signal.")
    friction_score = models.DecimalField(max_digits=30, decimal_places=12, help_text="The day's capped friction.")

    class Meta:
        db_table = "ops_rollup_tenant_day_summary"

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day}: {self.events}"


class TenantUserDayCount(models.Model):
    """Real events per tenant, user and UTC day (champion risk). Events without a user are not kept."""

    pk = models.CompositePrimaryKey("tenant_id", "user_id", "day")
    tenant_id = models.CharField(max_length=128)
    user_id = models.CharField(max_length=255)
    day = models.DateField()
    value = models.BigIntegerField()

    class Meta:
        db_table = "ops_rollup_tenant_user_day"

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.user_id} {self.day}: {self.value}"


class MetricsState(models.Model):
    """The one row that says how far the rollups have read ``ops_events``.

    Invariant: every committed event with ``ingest_xid < watermark_xid`` is in
    the rollups, and of the events with ``ingest_xid >= watermark_xid`` exactly
    those whose xid is in ``folded_xids`` are. All transactions below the
    watermark had finished when it was recorded, so nothing can commit under
    it later. Updated in the same transaction as the rollups, so a crashed run
    leaves the previous (consistent) state.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    watermark_xid = models.BigIntegerField(default=0, help_text="xid8 below which every event is folded.")
    folded_xids = models.JSONField(
        default=list, help_text="xid8 values at or above the watermark whose events are already folded."
    )
    friction_types = models.JSONField(
        default=list, help_text="Event types with a friction weight when the session rollup was last built."
    )
    rollups_start_day = models.DateField(
        null=True, blank=True, help_text="First UTC day the day-level rollups keep (older days are pruned)."
    )
    last_incremental_at = models.DateTimeField(null=True, blank=True)
    last_full_at = models.DateTimeField(null=True, blank=True)
    last_events_folded = models.BigIntegerField(default=0)
    last_fanout_finished_at = models.DateTimeField(
        null=True, blank=True, help_text="The fanned-out run whose hooks have run (compare-and-set)."
    )
    last_tenants_rebuilt_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The last rebuild of some tenants (after a reclassification or a tenant edit); "
        "moves the version the cached API answers are keyed by.",
    )
    registry_key = models.CharField(
        max_length=32,
        blank=True,
        help_text="Fingerprint of everything a founder edits that the metrics read (the registry's weights, "
        "roles and labels, the role wording, the active risk weights); when it changes, the next run "
        "recomputes every tenant.",
    )
    fold_registry_key = models.CharField(
        max_length=32,
        blank=True,
        help_text="Fingerprint of the registry fields the day summaries carry (weights, signals); when it "
        "changes, the next run rebuilds the day summaries from the day counts.",
    )
    # The last failed recompute, written by the task's failure path (customers/failures.py)
    # outside the failed transaction; cleared by the next run that succeeds.
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="First failed recompute since the last one that succeeded; null: not failing."
    )
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_failure_task = models.CharField(max_length=200, blank=True, help_text="Task or command that failed.")
    last_failure_message = models.TextField(blank=True, help_text="The error, as raised (type: message).")
    failures_in_a_row = models.IntegerField(default=0)

    class Meta:
        db_table = "ops_metrics_state"
        verbose_name = "metrics engine state"
        verbose_name_plural = "metrics engine state"

    def __str__(self) -> str:
        return f"watermark {self.watermark_xid}"


class AnswersVersion(models.Model):
    """One row (id=1) whose ``changed_at`` moves when a founder action (an intervention, an
    outcome, a snooze, a churn) changes what the cached at-risk answers show.

    Kept apart from ``MetricsState``: a recompute holds that row locked for its whole run,
    and a founder's form must never wait for a recompute. Read with the run stamps by
    ``customers.selectors.metrics_version`` (one query).
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "ops_answers_version"
        verbose_name = "cached answers version"

    def __str__(self) -> str:
        return f"answers changed at {self.changed_at}"


class RiskLevel(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"


# How urgent each risk level is, the one definition (sorting here; raising and the day's
# history in playbooks.services). Not at risk ranks below every level.
RISK_LEVEL_RANK: dict[RiskLevel, int] = {RiskLevel.CRITICAL: 3, RiskLevel.HIGH: 2, RiskLevel.MEDIUM: 1}


def risk_level_rank(field: str = "risk_level") -> models.Case:
    """How urgent a risk level is (RISK_LEVEL_RANK), as a number to sort by; NULL when not at risk.

    ``field`` is the path to the level from the model sorted (``metrics__risk_level`` from a Tenant).
    """
    return models.Case(
        *(models.When(**{field: level}, then=models.Value(rank)) for level, rank in RISK_LEVEL_RANK.items()),
        output_field=models.IntegerField(),
    )


def risk_sort_keys() -> tuple[models.Case, models.F]:
    """What "most at risk first" sorts by: the level, then the ranking score within a level.

    The ranking score is the score in force (``customers/metrics/ranking.py``): the heuristic's
    strength, or 100 x the adopted churn model's probability. Level first because a matched
    playbook can raise a tenant above its score's band (strength 45 but critical): that tenant
    is called before a merely high one at 55.
    """
    return (risk_level_rank(), models.F("ranking_score"))


def at_risk_order() -> list[models.OrderBy]:
    """The one order of every list of tenants at risk: critical, high, medium; within a level the
    strongest signal first; ties by tenant_id. The at-risk API and CSV, the Today page, the weekly
    check-in, the customer list's default order and admin all sort by it, and the indexes below are
    built from it: PostgreSQL reads an ORDER BY from an index only when its expressions, directions
    and NULLS placement are exactly the index's.
    """
    return [*(key.desc(nulls_last=True) for key in risk_sort_keys()), models.F("tenant_id").asc()]


def expected_loss_order() -> list[models.OrderBy]:
    """The other order a call list can take: the most revenue expected to be lost first
    (``expected_loss``: the ranking score / 100 x MRR), then the at-risk order's keys, then tenant_id.
    Customers whose MRR is unknown (null) come last, in risk order. Served by ``ops_tm_at_risk_loss``.
    """
    return [models.F("expected_loss").desc(nulls_last=True), *at_risk_order()]


class TenantMetrics(models.Model):
    """One row per tenant with everything the console and the API read.

    NON-AUTHORITATIVE CACHE. Rebuilt from ``ops_events`` (through the rollups)
    by ``manage.py recompute_metrics``; written for all tenants in one
    transaction so a page never sees half a run. ``computed_at`` says when.
    ``as_of`` is the UTC day the windows end on (inclusive).
    """

    tenant = models.OneToOneField(
        Tenant, primary_key=True, on_delete=models.CASCADE, db_column="tenant_id", related_name="metrics"
    )
    computed_at = models.DateTimeField()
    as_of = models.DateField(help_text="Last UTC day of every window (7 days = as_of-6 .. as_of).")

    events_7d = models.BigIntegerField(default=0)
    events_prev_7d = models.BigIntegerField(default=0, help_text="Real events in the 7 days before the last 7.")
    events_30d = models.BigIntegerField(default=0)

    stickiness_7d = models.FloatField(default=0.0)
    stickiness_30d = models.FloatField(default=0.0, help_text="30-day engagement / 4.3 (a weekly rate).")
    stickiness_delta = models.FloatField(null=True, blank=True, help_text="7d / 30d; null without a baseline.")
    has_baseline = models.BooleanField(default=False, help_text="False when stickiness_30d is 0.")

    friction_weighted_score = models.FloatField(default=0.0)
    friction_events_7d = models.BigIntegerField(default=0)
    top_friction_type = models.CharField(max_length=64, blank=True)

    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_investigation = models.CharField(
        max_length=64, blank=True, help_text="Event type of the last core-value event (the registry's core_value)."
    )
    last_investigation_at = models.DateTimeField(null=True, blank=True)
    days_since_investigation = models.IntegerField(null=True, blank=True)

    champion_user_id = models.CharField(max_length=255, blank=True)
    champion_risk = models.BooleanField(default=False)
    cliff = models.BooleanField(default=False)
    plan_usage_pct = models.FloatField(null=True, blank=True, help_text="events_30d / monthly_event_limit * 100.")

    recent_changes = models.JSONField(default=list)
    # null (not "") is the API's "no change explains the decay" / "not at risk": part of the contract.
    decay_correlation = models.CharField(max_length=200, blank=True, null=True)  # noqa: DJ001

    risk_signal_strength = models.FloatField(default=0.0, db_index=True)
    # What orders every list: risk_signal_strength under the heuristic, 100 x churn_probability_30d when an
    # adopted churn model is in force (ranking_model says which: "spec" or "learned-<version>").
    ranking_score = models.FloatField(default=0.0)
    ranking_model = models.CharField(max_length=32, default="spec")
    churn_probability_30d = models.FloatField(
        null=True, blank=True, help_text="The adopted churn model's calibrated chance of churn within 30 days."
    )
    churn_drivers = models.JSONField(
        default=list, help_text="The features that raised the model's probability most, in plain words."
    )
    # The customer's monthly recurring revenue (customers/revenue.py, ops_tenant_revenue), copied here by the
    # engine's write and by every revenue change, so a list ordered by what is at stake is read from one index.
    mrr = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    # What the customer's churn would cost: the chance of churn (ranking_score = 100 x the adopted model's
    # probability) x MRR; under the heuristic, the risk strength / 100 x MRR (an attention weight, not a
    # probability). Null while the MRR is unknown. In the customer's own currency.
    expected_loss = models.GeneratedField(
        expression=models.F("ranking_score") * models.F("mrr") / models.Value(100.0),
        output_field=models.FloatField(),
        db_persist=True,
    )
    risk_level = models.CharField(max_length=16, choices=RiskLevel.choices, null=True, blank=True)  # noqa: DJ001
    primary_risk_reason = models.CharField(max_length=300, blank=True)
    secondary_signals = models.JSONField(default=list)
    risk_components = models.JSONField(default=list)
    interventions = models.JSONField(default=list)

    # The tenant settings this row was computed from: a run recomputes only tenants with new
    # events or a stale row, and an edit of either setting in admin makes the row stale.
    inputs_kind = models.CharField(max_length=16, blank=True)
    inputs_monthly_event_limit = models.PositiveBigIntegerField(null=True, blank=True)
    stale = models.BooleanField(
        default=False, help_text="Waiting for a shard of a fanned-out recompute (the values are the previous run's)."
    )
    unraised = models.JSONField(
        null=True,
        blank=True,
        help_text="The engine's own risk_level, primary_risk_reason, secondary_signals and interventions before a "
        "matched playbook raised this row; null when no playbook raised it. Lets the playbooks hook undo a raise "
        "that no longer holds without recomputing the tenant.",
    )

    class Meta:
        db_table = "ops_tenant_metrics"
        verbose_name = "tenant metrics (cache)"
        verbose_name_plural = "tenant metrics (cache)"
        indexes = [
            # Used by the at-risk query (tenants_at_risk: the API, the CSV, Today, the weekly
            # check-in): at_risk_order() among at-risk tenants, read in order with a LIMIT, no sort.
            models.Index(*at_risk_order(), name="ops_tm_at_risk", condition=models.Q(risk_level__isnull=False)),
            # Used by the customer list's default order (-risk_level, the same at_risk_order() over
            # every tenant, not-at-risk ones last): GET /ops/customers?page=N and /customers/.
            models.Index(*at_risk_order(), name="ops_tm_list_risk"),
            # Used by the at-risk query ordered by expected loss (CALL_LIST_ORDER): expected_loss_order()
            # among at-risk tenants, read in order with a LIMIT like ops_tm_at_risk.
            models.Index(
                *expected_loss_order(), name="ops_tm_at_risk_loss", condition=models.Q(risk_level__isnull=False)
            ),
            # Used by the customer list sorted by ordering=-risk_signal_strength (its default until
            # 0007): the page is read from the index instead of sorting every tenant's wide row
            # (measured at 10,000 tenants: 200 ms seq scan + sort per request -> an index range scan).
            models.Index(
                models.F("risk_signal_strength").desc(nulls_last=True),
                models.F("tenant_id"),
                name="ops_tm_list_default",
            ),
        ]

    def __str__(self) -> str:
        return f"metrics {self.tenant_id} ({self.computed_at:%Y-%m-%d %H:%M})"


class WordingRole(models.TextChoices):
    """The roles whose founder-facing words cannot be made from type labels alone."""

    # The examples are in no product's types in particular: the admin shows them to every founder.
    CORE_VALUE = "core_value", "Core value: what 'Never …' says (e.g. 'won a deal')"
    BLOCKED = "blocked", "Blocked: the technical action (e.g. 'Raise their seat limit')"
    SYSTEM_ISSUE = "system_issue", "System issue: the technical action (e.g. 'Fix the bouncing emails')"


class RoleWording(models.Model):
    """The founder's own words for a role, tied to the types they were written for.

    The words apply only while exactly ``for_types`` (matched case-insensitively) hold
    the role in the event type registry; once the founder marks other types, the
    engine's texts fall back to the types' labels ("Never used Deploy shipped"), so a
    word written for one vocabulary never describes another. Seeded with the spec's
    words for the spec's types (customers/migrations/0009).
    """

    role = models.CharField(max_length=16, choices=WordingRole.choices, primary_key=True)
    for_types = models.CharField(
        max_length=500,
        help_text="The event type names (comma-separated) these words describe; the words apply only while "
        "exactly these types have the role.",
    )
    text = models.CharField(max_length=120, help_text="The words, in the founder's voice.")

    class Meta:
        db_table = "customers_role_wording"
        ordering = ["role"]

    def __str__(self) -> str:
        return f"{self.role}: {self.text}"

    def type_names(self) -> frozenset[str]:
        return frozenset(part.strip().lower() for part in self.for_types.split(",") if part.strip())


class RiskWeightsSource(models.TextChoices):
    DEFAULT = "default", "The spec's defaults"
    FOUNDER = "founder", "Edited by the founder"
    LEARNED = "learned", "Learned from outcomes"


class RiskWeights(models.Model):
    """A version of the risk components' maximum points; exactly one is active.

    ``weights`` maps a component name (customers/metrics/risk.py::RISK_COMPONENTS)
    to its maximum points (0-100); a component left out keeps its default. The
    engine reads the active version once per run (customers/metrics/weights.py),
    and an edit or a switch of version recomputes every tenant at the next run.
    Versions are kept, so adopting a learned version and going back are each one
    click in admin ("Make active").
    """

    version = models.PositiveIntegerField(unique=True)
    source = models.CharField(max_length=16, choices=RiskWeightsSource.choices, default=RiskWeightsSource.FOUNDER)
    weights = models.JSONField(default=dict, help_text='Maximum points per component, e.g. {"silent_churn": 50}.')
    note = models.CharField(max_length=255, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    is_active = models.BooleanField(default=False)

    class Meta:
        db_table = "customers_risk_weights"
        ordering = ["-version"]
        verbose_name = "risk weights version"
        constraints = [
            # At most one active version: the engine reads exactly one.
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="risk_weights_one_active"
            )
        ]

    def __str__(self) -> str:
        return f"v{self.version} ({self.source}{', active' if self.is_active else ''})"


class ChurnModel(models.Model):
    """A version of the learned churn model; at most one is active (adopted).

    ``definition`` is everything the engine scores with (customers/metrics/churn_model.py):
    the features in order, their standardisation, the coefficients, the intercept and the
    calibration, as fitted walk-forward by a backtest (validation/). Adopting a version and
    going back are each one click on the Validation page; who and when are kept.
    """

    version = models.PositiveIntegerField(unique=True)
    definition = models.JSONField()
    evidence = models.JSONField(default=dict, help_text="How it did out of sample when adopted (AUCs, churns).")
    backtest_run_id = models.IntegerField(null=True, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    is_active = models.BooleanField(default=False)
    deactivated_by = models.CharField(max_length=150, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "customers_churn_model"
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="churn_model_one_active"
            )
        ]

    def __str__(self) -> str:
        return f"churn model v{self.version}{' (active)' if self.is_active else ''}"


class PeerLevelsDay(models.Model):
    """The customers' levels of use on one as-of day (customers/metrics/peers.py). NON-AUTHORITATIVE CACHE:
    measured by the first run of a day (with enough customers to compare with) so that every run of the day
    compares accounts with the same reference."""

    as_of = models.DateField(primary_key=True)
    levels = models.JSONField()
    measured_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "ops_peer_levels"

    def __str__(self) -> str:
        return f"peer levels of {self.as_of}"


# --- Revenue ------------------------------------------------------------------------------------
# What each customer pays per month (customers/revenue.py). Billing (the Stripe webhook and the
# subscriptions export), the product's account traits and the founder each give a figure; the one
# in force is the founder's if set, else billing's once billing is connected, else the traits'.


class RevenueSource(models.TextChoices):
    STRIPE = "stripe", "Stripe"
    TRAITS = "traits", "Account traits (mrr)"
    FOUNDER = "founder", "Set by the founder"


class TenantRevenue(models.Model):
    """A customer's monthly recurring revenue now, per source, and the figure in force.

    Amounts are in the currency's major unit (dollars, not cents), normalised to a month.
    ``mrr`` null: nothing is known. Edit ``founder_mrr`` in admin to override the others.
    """

    tenant = models.OneToOneField(
        Tenant, primary_key=True, on_delete=models.CASCADE, db_column="tenant_id", related_name="revenue"
    )
    mrr = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True, editable=False)
    currency = models.CharField(max_length=3, blank=True, editable=False)
    source = models.CharField(max_length=16, choices=RevenueSource.choices, blank=True, editable=False)
    billing_connected = models.BooleanField(
        default=False, help_text="Billing (Stripe) has reported this customer: its figure wins over the traits'."
    )
    stripe_mrr = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True, editable=False)
    stripe_currency = models.CharField(max_length=3, blank=True, editable=False)
    traits_mrr = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True, editable=False)
    traits_currency = models.CharField(max_length=3, blank=True, editable=False)
    plan = models.CharField(max_length=200, blank=True, help_text="The plan, from billing or the traits.")
    traits_seen_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="The account traits' updated_at last read."
    )
    founder_mrr = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Your own figure (per month, e.g. 490.00); it wins over billing and traits. Empty: not set.",
    )
    founder_currency = models.CharField(max_length=3, blank=True, help_text="ISO 4217 code, e.g. USD.")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "ops_tenant_revenue"
        verbose_name = "revenue (MRR)"
        verbose_name_plural = "revenue (MRR)"
        constraints = [
            models.CheckConstraint(condition=models.Q(mrr__gte=0), name="ops_tenant_revenue_mrr_not_negative"),
            models.CheckConstraint(
                condition=models.Q(founder_mrr__gte=0), name="ops_tenant_revenue_founder_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.mrr} {self.currency}"


class TenantRevenueDay(models.Model):
    """The MRR in force from ``day`` on (until the tenant's next row): one row per tenant and day it changed.

    The history the churned, expansion and contraction figures are read from.
    """

    pk = models.CompositePrimaryKey("tenant_id", "day")
    tenant_id = models.CharField(max_length=128)
    day = models.DateField()
    mrr = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    source = models.CharField(max_length=16, choices=RevenueSource.choices)

    class Meta:
        db_table = "ops_tenant_revenue_day"
        constraints = [
            models.CheckConstraint(condition=models.Q(mrr__gte=0), name="ops_tenant_revenue_day_not_negative")
        ]
        indexes = [
            # Used by the month's churned / expansion / contraction figures (revenue_figures): one month's rows.
            models.Index(fields=["day"], name="ops_tenant_revenue_day_day")
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day}: {self.mrr} {self.currency}"
