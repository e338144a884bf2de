"""What the events app plugs into core's channels: the north star's gauges on ``GET /metrics``
(registered in EventsConfig.ready())."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric

from events.selectors import Status, north_star_targets, real_users_summary


def north_star_metrics() -> Iterable[Metric]:
    """The north star's gauges, from one query over the real-user cache."""
    summary = real_users_summary()
    targets = north_star_targets()
    days = GaugeMetricFamily(
        "opsconsole_days_since_last_real_user_interaction",
        "Days since the last real user interaction (absent while there are no real users).",
    )
    if summary.days_since_last is not None:
        days.add_metric([], summary.days_since_last)
    yield days
    last = GaugeMetricFamily(
        "opsconsole_last_real_user_interaction_timestamp_seconds",
        "Unix time of the last real user interaction (absent while there are no real users).",
    )
    if summary.last_interaction_at is not None:
        last.add_metric([], summary.last_interaction_at.timestamp())
    yield last
    status = GaugeMetricFamily(
        "opsconsole_north_star_status",
        "1 for the current north-star status (no_users_yet, active, warning, critical), 0 for the others.",
        labels=["status"],
    )
    for name in (Status.NO_USERS_YET, Status.ACTIVE, Status.WARNING, Status.CRITICAL):
        status.add_metric([name], 1.0 if summary.status == name else 0.0)
    yield status
    yield GaugeMetricFamily("opsconsole_real_users", "Distinct real users ever.", value=summary.total_users)
    yield GaugeMetricFamily(
        "opsconsole_daily_active_real_users", "Distinct real users in the last 24 hours.", value=summary.dau
    )
    yield GaugeMetricFamily(
        "opsconsole_monthly_active_real_users", "Distinct real users in the last 30 days.", value=summary.mau
    )
    yield GaugeMetricFamily(
        "opsconsole_daily_active_real_users_target", "DAU target (editable in admin).", value=targets.dau_target
    )
    yield GaugeMetricFamily(
        "opsconsole_monthly_active_real_users_target", "MAU target (editable in admin).", value=targets.mau_target
    )
