"""ops_tenant_metrics, one cached row per tenant, and the one order every list of customers at risk uses."""

from __future__ import annotations

from django.db import models

from customers.models.tenant import Tenant


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
            # (a range scan of the index, not a scan and sort of every row per request).
            models.Index(
                models.F("risk_signal_strength").desc(nulls_last=True),
                models.F("tenant_id"),
                name="ops_tm_list_default",
            ),
        ]

    def __str__(self) -> str:
        return f"metrics {self.tenant_id} ({self.computed_at:%Y-%m-%d %H:%M})"


class StagedMetricsRow(models.Model):
    """A row of ``ops_tenant_metrics`` on its way to a Citus cluster's shards (customers/metrics/staged.py;
    on plain PostgreSQL the write reads its rows from one jsonb parameter and this table stays empty).

    Distributed and co-located with ``ops_tenant_metrics``: the run COPYs its rows here, each goes straight
    to its tenant's shard, and one statement each shard runs on its own upserts them. The JSON columns
    travel as text and become jsonb on the shard, so the coordinator never parses them. Rows live only
    inside a run's transaction: the run deletes its own before it commits. Columns: write.METRICS_COLUMNS
    (a test holds them equal), and the MRR in force.
    """

    tenant_id = models.CharField(primary_key=True, max_length=128)
    computed_at = models.DateTimeField(null=True)
    as_of = models.DateField(null=True)
    events_7d = models.BigIntegerField(null=True)
    events_prev_7d = models.BigIntegerField(null=True)
    events_30d = models.BigIntegerField(null=True)
    stickiness_7d = models.FloatField(null=True)
    stickiness_30d = models.FloatField(null=True)
    stickiness_delta = models.FloatField(null=True)
    has_baseline = models.BooleanField(null=True)
    friction_weighted_score = models.FloatField(null=True)
    friction_events_7d = models.BigIntegerField(null=True)
    top_friction_type = models.TextField(null=True)  # noqa: DJ001
    last_seen_at = models.DateTimeField(null=True)
    last_investigation = models.TextField(null=True)  # noqa: DJ001
    last_investigation_at = models.DateTimeField(null=True)
    days_since_investigation = models.IntegerField(null=True)
    champion_user_id = models.TextField(null=True)  # noqa: DJ001
    champion_risk = models.BooleanField(null=True)
    cliff = models.BooleanField(null=True)
    plan_usage_pct = models.FloatField(null=True)
    recent_changes = models.TextField(null=True)  # noqa: DJ001
    decay_correlation = models.TextField(null=True)  # noqa: DJ001
    risk_signal_strength = models.FloatField(null=True)
    risk_level = models.TextField(null=True)  # noqa: DJ001
    ranking_score = models.FloatField(null=True)
    ranking_model = models.TextField(null=True)  # noqa: DJ001
    churn_probability_30d = models.FloatField(null=True)
    churn_drivers = models.TextField(null=True)  # noqa: DJ001
    primary_risk_reason = models.TextField(null=True)  # noqa: DJ001
    secondary_signals = models.TextField(null=True)  # noqa: DJ001
    risk_components = models.TextField(null=True)  # noqa: DJ001
    interventions = models.TextField(null=True)  # noqa: DJ001
    inputs_kind = models.TextField(null=True)  # noqa: DJ001
    inputs_monthly_event_limit = models.BigIntegerField(null=True)
    stale = models.BooleanField(null=True)
    unraised = models.TextField(null=True)  # noqa: DJ001
    mrr = models.DecimalField(max_digits=14, decimal_places=2, null=True)

    class Meta:
        db_table = "ops_metrics_staged"
        verbose_name = "metrics row of the running recompute"

    def __str__(self) -> str:
        return self.tenant_id
