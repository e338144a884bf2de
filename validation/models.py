"""The walk-forward backtest's runs and scores.

A ``BacktestRun`` is one request: every ``step_days`` days from ``start_day`` to
``end_day``, each customer's risk as the engine would have computed it on that day
from the events that had occurred by then. Its ``BacktestScore`` rows are what the
figures (validation/figures.py) and the API are computed from, so anyone can
recompute every figure from the scores. Derived data: a run can be deleted and
run again from ``ops_events`` and the recorded churns.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class BacktestStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a worker"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed (resumes where it stopped when run again)"


class BacktestRun(models.Model):
    created_at = models.DateTimeField(default=timezone.now)
    start_day = models.DateField()
    end_day = models.DateField(help_text="The last as-of date (the day the run was requested).")
    step_days = models.PositiveSmallIntegerField()
    horizons = models.JSONField(help_text="Days ahead a churn counts, e.g. [30, 60].")
    registry_key = models.CharField(
        max_length=64, help_text="Fingerprint of the event type registry the scores were computed with."
    )
    status = models.CharField(max_length=16, choices=BacktestStatus.choices, default=BacktestStatus.PENDING)
    dates_total = models.PositiveIntegerField(default=0)
    dates_done = models.JSONField(default=list, help_text="As-of dates whose scores are stored (ISO dates).")
    learned_at = models.DateTimeField(null=True, blank=True, help_text="When the walk-forward learned scores were set.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    report = models.JSONField(
        null=True, blank=True, help_text="The figures computed from the scores when the run finished."
    )

    class Meta:
        db_table = "ops_backtest_run"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"backtest {self.pk}: {self.start_day}..{self.end_day} every {self.step_days}d ({self.status})"


class BacktestScore(models.Model):
    """One customer's score on one as-of date of a run.

    ``components`` maps each risk component to its points; ``features`` holds the
    per-customer values the learned model reads (validation/features.py);
    ``learned_scores`` the walk-forward learned probability per horizon (``{"30": p}``),
    null while fewer than MIN_CHURNS_FOR_TRUST churns preceded ``as_of``;
    ``learned_score`` is the first horizon's.
    """

    pk = models.CompositePrimaryKey("run_id", "as_of", "tenant_id")
    run = models.ForeignKey(BacktestRun, on_delete=models.CASCADE, related_name="scores")
    as_of = models.DateField()
    tenant_id = models.CharField(max_length=128)
    risk_signal_strength = models.FloatField()
    components = models.JSONField()
    features = models.JSONField()
    learned_score = models.FloatField(null=True, blank=True)
    learned_scores = models.JSONField(null=True, blank=True)
    # Per horizon: the customer's place on as_of's list as a score (higher is called first), from the score
    # that ordered that list (the chosen model's or the heuristic's), and which score it was.
    ranking_scores = models.JSONField(null=True, blank=True)
    ranking_models = models.JSONField(null=True, blank=True)

    class Meta:
        db_table = "ops_backtest_score"

    def __str__(self) -> str:
        return f"{self.tenant_id} on {self.as_of}: {self.risk_signal_strength}"
