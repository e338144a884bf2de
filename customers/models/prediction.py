"""The churn model a founder adopted, and the customers' levels of a day it and the heuristic compare with."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


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
