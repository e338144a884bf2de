"""The validation API (read or read-write key, or a staff session).

``GET /ops/validation/backtest``: the figures of the newest finished walk-forward backtest.
``GET /ops/validation/backtest/scores?as_of=YYYY-MM-DD``: the scores they were computed from.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import ReadScopeOrStaff
from core.openapi import FIELD_ERRORS, error_responses, validated
from validation.selectors import backtest_payload, backtest_scores

BACKTEST_NOTE = (
    "Walk-forward: each as-of date's scores are what the engine would have computed that day from the events that "
    "had occurred by then, and each learned score comes from a model trained only on churns dated before it. "
    "Observational: customers the founder helped may have stayed because of the help, so a flagged customer who "
    "did not churn is not proof of a false alarm. Figures are defined in validation/figures.py."
)


class LeadDaysSerializer(serializers.Serializer):
    median = serializers.FloatField(allow_null=True)
    p25 = serializers.FloatField(allow_null=True)
    p75 = serializers.FloatField(allow_null=True)


class FiguresSerializer(serializers.Serializer):
    auc = serializers.FloatField(allow_null=True)
    top_decile_lift = serializers.FloatField(allow_null=True)
    precision_at_threshold = serializers.FloatField(allow_null=True)
    recall_at_threshold = serializers.FloatField(allow_null=True)
    precision_at_10 = serializers.FloatField(allow_null=True)
    lead_days = LeadDaysSerializer()
    observations = serializers.IntegerField()
    churned_within_horizon = serializers.IntegerField()
    as_of_dates = serializers.IntegerField()
    auc_interval = serializers.ListField(
        child=serializers.FloatField(),
        allow_null=True,
        required=False,
        help_text="The AUC's 95% bootstrap interval [low, high] (customers resampled with all their dates).",
    )


class RankingFiguresSerializer(FiguresSerializer):
    """The score that ordered the list on each date: the churn model's once it was chosen, else the heuristic's."""

    threshold = serializers.FloatField(allow_null=True)
    lead_days_by_chance = LeadDaysSerializer(
        help_text="Lead time of the same scores shuffled within each date: what chance would give."
    )
    as_of_dates_ordered_by_model = serializers.IntegerField()
    as_of_dates_total = serializers.IntegerField()
    ordered_by = serializers.ChoiceField(choices=["spec", "learned", "mixed"])


class LearnedFiguresSerializer(FiguresSerializer):
    threshold = serializers.FloatField(
        allow_null=True, help_text="The learned score's cut-off: it flags as many customers as the at-risk threshold."
    )
    heuristic_on_same_dates = FiguresSerializer()
    verdict = serializers.ChoiceField(choices=["better", "no better"])


class HorizonSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    heuristic = FiguresSerializer()
    learned = LearnedFiguresSerializer(allow_null=True)
    ranking = RankingFiguresSerializer(allow_null=True, required=False)
    lift_by_decile = serializers.ListField(child=serializers.FloatField(allow_null=True))


class ComponentSerializer(serializers.Serializer):
    signal = serializers.CharField()
    auc = serializers.FloatField(allow_null=True)


class FeatureSerializer(serializers.Serializer):
    name = serializers.CharField()
    coefficient = serializers.FloatField(help_text="Log odds of churn per unit of the feature.")
    std_error = serializers.FloatField(allow_null=True)
    in_words = serializers.CharField()


class ModelSerializer(serializers.Serializer):
    horizon_days = serializers.IntegerField()
    trained_on_churns = serializers.IntegerField()
    observations = serializers.IntegerField()
    features = FeatureSerializer(many=True)


class InProgressSerializer(serializers.Serializer):
    run_id = serializers.IntegerField()
    status = serializers.CharField()
    dates_done = serializers.IntegerField()
    dates_total = serializers.IntegerField()
    error = serializers.CharField(allow_null=True)


class BacktestSerializer(serializers.Serializer):
    run_id = serializers.IntegerField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    in_progress = InProgressSerializer(allow_null=True)
    as_of_dates = serializers.ListField(child=serializers.DateField())
    churns_used = serializers.IntegerField()
    minimum_churns_for_trust = serializers.IntegerField()
    warning = serializers.CharField(allow_null=True)
    weights_in_force = serializers.CharField(
        help_text='The engine\'s risk weights now: "spec", "learned-<version>" once learned weights are adopted '
        '(Validation page), or "founder-<version>" for weights set in admin.'
    )
    scored_with_weights = serializers.CharField(
        allow_null=True, help_text="The weights the newest backtest scored with (null before any run)."
    )
    at_risk_threshold = serializers.FloatField(allow_null=True)
    horizons = HorizonSerializer(many=True)
    components = ComponentSerializer(many=True)
    model = ModelSerializer(allow_null=True)
    learned_component_weights = serializers.JSONField(allow_null=True)
    blind_spots = serializers.JSONField()
    ranking = RankingFiguresSerializer(
        allow_null=True, help_text="The score that ordered the list, at the first horizon (see each horizon's too)."
    )
    ranking_choice = serializers.ChoiceField(
        choices=["spec", "learned"],
        allow_null=True,
        help_text="Which score the walk-forward judgement on the past chose at the end of the run.",
    )
    ranking_in_force = serializers.CharField(
        help_text='What orders the lists now: "spec" (the heuristic) or "learned-<version>" (an adopted churn model).'
    )


class ScoreSerializer(serializers.Serializer):
    tenant_id = serializers.CharField()
    risk_signal_strength = serializers.FloatField()
    learned_score = serializers.FloatField(allow_null=True)
    ranking_score = serializers.FloatField(
        allow_null=True,
        help_text="The customer's place on that date's list by the score that ordered it (1 at the top, 0 at the "
        "bottom): the churn model's probability once the walk-forward judgement chose it, the heuristic before.",
    )
    ranking_model = serializers.ChoiceField(choices=["spec", "learned"], allow_null=True)
    churn_probability = serializers.DictField(
        child=serializers.FloatField(),
        help_text='The churn model\'s calibrated probability per horizon, e.g. {"30": 0.12}; empty before a model.',
    )


class ScoresQuerySerializer(serializers.Serializer):
    as_of = serializers.DateField(help_text="An as-of date of the backtest (YYYY-MM-DD).")
    horizon = serializers.IntegerField(
        required=False, min_value=1, max_value=365, help_text="Whose learned score (days); the run's first by default."
    )


class BacktestApi(APIView):
    permission_classes = [ReadScopeOrStaff]

    @extend_schema(
        operation_id="validation_backtest",
        summary="How well the risk signal predicted churn, walk-forward, and what learned weights would do",
        description=BACKTEST_NOTE,
        responses={200: BacktestSerializer, **error_responses(401, 403, 503)},
    )
    def get(self, request: Request) -> Response:
        return Response(BacktestSerializer(backtest_payload()).data)


class BacktestScoresApi(APIView):
    permission_classes = [ReadScopeOrStaff]

    @extend_schema(
        operation_id="validation_backtest_scores",
        summary="Every customer's backtest score on one as-of date (recompute any figure from these)",
        parameters=[ScoresQuerySerializer],
        responses={200: ScoreSerializer(many=True), 400: FIELD_ERRORS, **error_responses(401, 403, 503)},
    )
    def get(self, request: Request) -> Response:
        params = validated(ScoresQuerySerializer, request.query_params)
        rows = backtest_scores(as_of=params["as_of"], horizon=params.get("horizon"))
        return Response(ScoreSerializer(rows, many=True).data)
