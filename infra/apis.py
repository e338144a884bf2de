"""``GET /ops/infra``: days to limit, growth rates and a daily series, from measured snapshots."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import ReadScopeOrStaff
from core.openapi import FIELD_ERRORS, error_responses
from infra.selectors import infra_overview

MAX_SERIES_DAYS = 365


class LinearFitSerializer(serializers.Serializer):
    origin = serializers.DateTimeField(help_text="Time at which the line's value is intercept_bytes.")
    intercept_bytes = serializers.FloatField()
    slope_bytes_per_day = serializers.FloatField(
        help_text="Fitted growth; value(t) = intercept + slope x days since origin."
    )


class ResourceProjectionSerializer(serializers.Serializer):
    current_bytes = serializers.IntegerField(allow_null=True, help_text="Latest measured value.")
    current_at = serializers.DateTimeField(allow_null=True, help_text="When it was measured.")
    limit_bytes = serializers.IntegerField(allow_null=True, help_text="Null: no limit is set.")
    limit_source = serializers.CharField(help_text="admin, settings, redis_maxmemory, or empty (no limit).")
    points = serializers.IntegerField(help_text="Readings in the trailing window.")
    method = serializers.ChoiceField(
        choices=["least_squares", "event_volume", "none"],
        help_text="least_squares over the window; event_volume (bytes per event x events per day) when readings "
        "are too few; none when there is nothing to project from.",
    )
    growth_rate_bytes_per_day = serializers.FloatField(allow_null=True)
    days_to_limit = serializers.FloatField(
        allow_null=True,
        help_text="Headroom / growth per day. Null when there is no limit or rate, or when flat or shrinking "
        "(see reason); 0 when already at the limit.",
    )
    projected_limit_at = serializers.DateTimeField(allow_null=True, help_text="current_at + days_to_limit.")
    level = serializers.ChoiceField(
        choices=["ok", "warning", "critical", "unknown"],
        help_text="critical below 3 days to limit, warning below 14 (INFRA_CRITICAL_DAYS, INFRA_WARNING_DAYS).",
    )
    reason = serializers.CharField(help_text="How the numbers were found, or why one is null.")
    fit = LinearFitSerializer(allow_null=True, help_text="The fitted line, to draw the projection on a chart.")


class ApiGrowthSerializer(serializers.Serializer):
    last_7d = serializers.IntegerField(help_text="API requests in the 7 days (whole hours) before now.")
    prior_7d = serializers.IntegerField(
        allow_null=True, help_text="The 7 days before those; null when not fully counted."
    )
    growth_pct_per_week = serializers.FloatField(allow_null=True)
    counted_since = serializers.DateTimeField(allow_null=True, help_text="First hour with a counted request.")
    reason = serializers.CharField()


class EventVolumeSerializer(serializers.Serializer):
    bytes_per_event = serializers.FloatField(help_text="ops_events total size / rows, from the latest snapshot.")
    events_per_day = serializers.IntegerField(help_text="Events received in the 24 hours before the latest snapshot.")
    growth_bytes_per_day = serializers.FloatField()


class LimitsSerializer(serializers.Serializer):
    db_storage_bytes = serializers.IntegerField(allow_null=True)
    db_storage_source = serializers.CharField()
    redis_memory_bytes = serializers.IntegerField(allow_null=True)
    redis_memory_source = serializers.CharField()


class DailyReadingSerializer(serializers.Serializer):
    day = serializers.DateField()
    taken_at = serializers.DateTimeField(help_text="The day's last snapshot.")
    db_size_bytes = serializers.IntegerField()
    events_table_bytes = serializers.IntegerField()
    redis_used_memory_bytes = serializers.IntegerField(allow_null=True)
    redis_maxmemory_bytes = serializers.IntegerField(allow_null=True)
    events_received_24h = serializers.IntegerField()
    api_requests_24h = serializers.IntegerField()


class InfraLimitsSerializer(serializers.Serializer):
    generated_at = serializers.DateTimeField()
    window_days = serializers.IntegerField(help_text="Trailing window the growth line is fitted to.")
    db_storage_days_to_limit = serializers.IntegerField(
        allow_null=True, help_text="Whole days until the database limit."
    )
    redis_memory_days_to_limit = serializers.IntegerField(
        allow_null=True, help_text="Whole days until the Redis limit."
    )
    db_growth_rate_gb_per_day = serializers.FloatField(allow_null=True, help_text="GB = 1024³ bytes.")
    api_growth_rate_pct_per_week = serializers.FloatField(
        allow_null=True, help_text="Last 7 days of API requests against the 7 before, in percent."
    )
    db_storage = ResourceProjectionSerializer()
    redis_memory = ResourceProjectionSerializer()
    api_requests = ApiGrowthSerializer()
    event_volume = EventVolumeSerializer(allow_null=True)
    limits = LimitsSerializer()
    series = DailyReadingSerializer(many=True, help_text="One reading per day (the day's last snapshot), oldest first.")


class InfraQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(
        required=False, default=30, min_value=1, max_value=MAX_SERIES_DAYS, help_text="Days of daily series."
    )


class InfraApi(APIView):
    permission_classes = [ReadScopeOrStaff]

    @extend_schema(
        operation_id="ops_infra",
        summary="Infrastructure runway: days until the database and Redis reach their limits",
        description=(
            "From hourly measured snapshots: growth by least squares over the trailing window "
            "(INFRA_PROJECTION_WINDOW_DAYS, 7 by default); with too few snapshots the database is projected "
            "from event volume (method `event_volume`). Null values come with a `reason`. "
            "Sizes are bytes; GB and MB are binary (1024³, 1024²)."
        ),
        parameters=[OpenApiParameter("days", int, description="Days of daily series (1-365, default 30).")],
        responses={
            200: InfraLimitsSerializer,
            400: FIELD_ERRORS,
            **error_responses(401, 403, 503),
        },
    )
    def get(self, request: Request) -> Response:
        query = InfraQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        overview = infra_overview(series_days=query.validated_data["days"])
        return Response(InfraLimitsSerializer(overview).data)
