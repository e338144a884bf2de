"""The metrics engine's caches: rollups, its run state, and the founder-actions stamp."""

from __future__ import annotations

from django.db import models

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
    ``friction_score`` is the day's capped friction (customers/metrics/friction.py:
    FRICTION_CAPS_TEXT), recomputed from the day's session counts whenever the day gets new events.

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
    lifecycle_week = models.DateField(
        null=True,
        blank=True,
        help_text="The week (Monday, TIME_ZONE) the lifecycle stages were last written for; when the week "
        "turns, every account's stages are rewritten (last week's active accounts become dormant).",
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


class DirtyTenant(models.Model):
    """A tenant whose metrics the running recompute rewrites: the run's dirty set on a Citus cluster
    (customers/metrics/scope.py; on plain PostgreSQL a run uses a temp table and this one stays empty).

    Distributed and co-located with the events, so a query limited to the dirty tenants is a join
    each shard runs on its own. Rows live only inside a run's transaction: the run deletes its own
    before it commits, so concurrent runs (the fan-out's shard tasks) never see each other's.
    """

    tenant_id = models.CharField(primary_key=True, max_length=128)

    class Meta:
        db_table = "ops_metrics_dirty"
        verbose_name = "tenant of the running recompute"

    def __str__(self) -> str:
        return self.tenant_id


class AnswersVersion(models.Model):
    """One row (id=1) whose ``changed_at`` moves when a founder action (an intervention, an
    outcome, a snooze, a churn) changes what the cached at-risk answers show.

    Kept apart from ``MetricsState``: a recompute holds that row locked for its whole run,
    and a founder's form must never wait for a recompute. Read with the run stamps by
    ``customers.read_cache.metrics_version`` (one query).
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "ops_answers_version"
        verbose_name = "cached answers version"

    def __str__(self) -> str:
        return f"answers changed at {self.changed_at}"
