"""``GET /ops/lifecycle`` and ``GET /ops/retention``: accounts' lifecycle per week and cohort retention.

Read keys (or read-write keys, or a staff session), like the other /ops reads. Both answer from
the caches the recompute writes (customers/metrics/lifecycle.py, customers/retention.py), through
the same selectors as the Today, Customers and Retention pages, built once per recompute.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import ReadScopeOrStaff
from core.openapi import FIELD_ERRORS, error_responses, validated
from customers.apis import answer_cached
from customers.metrics.lifecycle import LIFECYCLE_WEEKS_DEFAULT, LIFECYCLE_WEEKS_MAX, STAGES, lifecycle_weeks
from customers.retention import RETENTION_MONTHS_DEFAULT, RETENTION_MONTHS_MAX, retention_table

STAGES_NOTE = "; ".join(f"`{s.stage.value}`: {s.meaning}" for s in STAGES)


# Serializer names are the schema's component names: "Lifecycle..." and "CohortRetention..." keep
# them apart from every other component (the raw-event retention setting among them).
class LifecycleQuerySerializer(serializers.Serializer):
    weeks = serializers.IntegerField(
        min_value=1,
        max_value=LIFECYCLE_WEEKS_MAX,
        default=LIFECYCLE_WEEKS_DEFAULT,
        help_text=f"How many weeks, the current one last (1-{LIFECYCLE_WEEKS_MAX}).",
    )


class LifecycleWeekAnswerSerializer(serializers.Serializer):
    week = serializers.DateField(help_text="Monday of the week, in the console's TIME_ZONE.")
    new = serializers.IntegerField()
    returning = serializers.IntegerField()
    resurrecting = serializers.IntegerField()
    dormant = serializers.IntegerField()
    # The field is named for the API; DRF takes declared fields off the class, so it never hides `partial`.
    partial = serializers.BooleanField(help_text="The current week, still running.")  # type: ignore[assignment]


class LifecycleAnswerSerializer(serializers.Serializer):
    time_zone = serializers.CharField(help_text="The time zone weeks are counted in (weeks start on Monday).")
    weeks = LifecycleWeekAnswerSerializer(many=True)


class RetentionQuerySerializer(serializers.Serializer):
    months = serializers.IntegerField(
        min_value=1,
        max_value=RETENTION_MONTHS_MAX,
        default=RETENTION_MONTHS_DEFAULT,
        help_text=f"How many cohorts (months of first real activity), the current month's last (1-{RETENTION_MONTHS_MAX}).",
    )


class CohortRetentionCellSerializer(serializers.Serializer):
    months_since = serializers.IntegerField(help_text="0 is the cohort's own month.")
    month = serializers.DateField()
    accounts = serializers.IntegerField(help_text="Accounts of the cohort with real activity that month.")
    share = serializers.FloatField(help_text="accounts / the cohort's accounts (0-1).")
    mrr = serializers.DecimalField(max_digits=16, decimal_places=2, help_text="Their MRR weight (see `currency`).")
    mrr_share = serializers.FloatField(allow_null=True, help_text="mrr / the cohort's MRR; null when it has none.")
    partial = serializers.BooleanField(help_text="The current month, still running.")  # type: ignore[assignment]


class CohortRetentionRowSerializer(serializers.Serializer):
    cohort = serializers.DateField(help_text="First day of the month of the accounts' first real activity.")
    accounts = serializers.IntegerField()
    mrr = serializers.DecimalField(max_digits=16, decimal_places=2)
    cells = CohortRetentionCellSerializer(many=True)


class CohortRetentionAnswerSerializer(serializers.Serializer):
    time_zone = serializers.CharField(help_text="The time zone months are counted in.")
    currency = serializers.CharField(help_text="Only accounts billed in this currency carry an MRR weight.")
    cohorts = CohortRetentionRowSerializer(many=True)


def lifecycle_answer(*, weeks: int) -> dict[str, Any]:
    now = timezone.now()
    rows = lifecycle_weeks(weeks=weeks, now=now)
    return {
        "time_zone": settings.TIME_ZONE,
        "weeks": [
            {
                "week": w.week,
                "new": w.new,
                "returning": w.returning,
                "resurrecting": w.resurrecting,
                "dormant": w.dormant,
                "partial": index == len(rows) - 1,
            }
            for index, w in enumerate(rows)
        ],
    }


def retention_answer(*, months: int) -> dict[str, Any]:
    table = retention_table(months=months, now=timezone.now())
    return {
        "time_zone": settings.TIME_ZONE,
        "currency": table.currency,
        "cohorts": [
            {"cohort": c.cohort, "accounts": c.accounts, "mrr": c.mrr, "cells": [vars(cell) for cell in c.cells]}
            for c in table.cohorts
        ],
    }


class LifecycleApi(APIView):
    permission_classes = [ReadScopeOrStaff]

    @extend_schema(
        operation_id="lifecycle_weeks",
        summary="Customer accounts per lifecycle stage, week by week",
        description="Stages as PostHog defines them for persons, applied to customer accounts; active means at "
        f"least one real event that week. {STAGES_NOTE}. Weeks are calendar weeks in the console's TIME_ZONE, "
        "Monday first; the last is the current week so far. Internal, test and demo accounts are not counted.",
        parameters=[LifecycleQuerySerializer],
        responses={200: LifecycleAnswerSerializer, 400: FIELD_ERRORS, **error_responses(401, 403, 503)},
    )
    def get(self, request: Request) -> HttpResponse | Response:
        weeks = validated(LifecycleQuerySerializer, request.query_params)["weeks"]
        # Keyed by the day: the current week (the last row) moves with the date.
        key = f"lifecycle:{weeks}:{timezone.localdate().isoformat()}"
        return answer_cached(request, key, lambda: LifecycleAnswerSerializer(lifecycle_answer(weeks=weeks)).data)


class RetentionApi(APIView):
    permission_classes = [ReadScopeOrStaff]

    @extend_schema(
        operation_id="cohort_retention",
        summary="Cohort retention: accounts by month of first real activity, share still active each month since",
        description="An account is active in a month with at least one real event that month (months in the "
        "console's TIME_ZONE). `share` counts accounts; `mrr_share` weighs each account by its MRR at the end of "
        "its cohort month (revenue history; the current MRR when the history starts later), in `currency` only. "
        "Churned accounts stay in their cohort. Internal, test and demo accounts are not counted.",
        parameters=[RetentionQuerySerializer],
        responses={200: CohortRetentionAnswerSerializer, 400: FIELD_ERRORS, **error_responses(401, 403, 503)},
    )
    def get(self, request: Request) -> HttpResponse | Response:
        months = validated(RetentionQuerySerializer, request.query_params)["months"]
        key = f"retention:{months}:{timezone.localdate().isoformat()}"
        return answer_cached(
            request, key, lambda: CohortRetentionAnswerSerializer(retention_answer(months=months)).data
        )
