"""Customer accounts and the caches, settings and versions the metrics engine keeps about them, one topic per
module (tenant, rollups, lifecycle, metrics, tunables, prediction, revenue, contacts). Django finds an app's models in its ``models``
module, so this one imports them all; code imports from the topic."""

from __future__ import annotations

from customers.models.contacts import (
    ContactRole,
    TenantContact,
)
from customers.models.lifecycle import (
    ActivityPeriod,
    LifecycleStage,
    LifecycleWeekCount,
    TenantLifecycleWeek,
    TenantPeriodCount,
)
from customers.models.metrics import (
    RISK_LEVEL_RANK,
    RiskLevel,
    StagedMetricsRow,
    TenantMetrics,
    at_risk_order,
    expected_loss_order,
    risk_level_rank,
    risk_sort_keys,
)
from customers.models.prediction import (
    ChurnModel,
    PeerLevelsDay,
)
from customers.models.revenue import (
    RevenueSource,
    TenantRevenue,
    TenantRevenueDay,
)
from customers.models.rollups import (
    AnswersVersion,
    DirtyTenant,
    MetricsState,
    SessionFrictionDayCount,
    TenantDayCount,
    TenantDaySummary,
    TenantEventSpan,
    TenantUserDayCount,
)
from customers.models.tenant import (
    Tenant,
    TenantKind,
)
from customers.models.tunables import (
    RiskWeights,
    RiskWeightsSource,
    RoleWording,
    WordingRole,
)

__all__ = [
    "RISK_LEVEL_RANK",
    "ActivityPeriod",
    "AnswersVersion",
    "ChurnModel",
    "ContactRole",
    "DirtyTenant",
    "LifecycleStage",
    "LifecycleWeekCount",
    "MetricsState",
    "PeerLevelsDay",
    "RevenueSource",
    "RiskLevel",
    "RiskWeights",
    "RiskWeightsSource",
    "RoleWording",
    "SessionFrictionDayCount",
    "StagedMetricsRow",
    "Tenant",
    "TenantContact",
    "TenantDayCount",
    "TenantDaySummary",
    "TenantEventSpan",
    "TenantKind",
    "TenantLifecycleWeek",
    "TenantMetrics",
    "TenantPeriodCount",
    "TenantRevenue",
    "TenantRevenueDay",
    "TenantUserDayCount",
    "WordingRole",
    "at_risk_order",
    "expected_loss_order",
    "risk_level_rank",
    "risk_sort_keys",
]
