"""The authoritative record: every event the product sent, and what each type means.

``ops_events`` is append-only and is the single source of truth. Every other
table that holds numbers about tenants (rollups, ``ops_tenant_metrics``) is a
cache that ``manage.py recompute_metrics --full`` rebuilds from this table.
"""

from __future__ import annotations

from events.models.digest import (
    DigestDayState,
    MorningDigestDay,
    MorningDigestSettings,
)
from events.models.event import (
    Event,
    ExclusionReason,
    ImportRun,
)
from events.models.identities import (
    AccountTraits,
    UserAccount,
    UserAlias,
    UserProfile,
)
from events.models.keys import (
    IngestRateWindow,
)
from events.models.northstar import (
    AlertState,
    Milestone,
    NorthStarSettings,
)
from events.models.realness import (
    ClassificationState,
    InternalUserRule,
    InternalUserRuleKind,
    RealUser,
    UserAgentPattern,
    UserAgentReason,
)
from events.models.vocabulary import (
    EVENT_TYPE_NAME_MAX,
    LABEL_MAX,
    WEIGHT_MAX,
    WEIGHT_MIN,
    EventCategory,
    EventType,
    FrictionSignal,
    NorthStarRole,
    event_type_label_default,
    event_type_name_validate,
    weight_validate,
)

__all__ = [
    "EVENT_TYPE_NAME_MAX",
    "LABEL_MAX",
    "WEIGHT_MAX",
    "WEIGHT_MIN",
    "AccountTraits",
    "AlertState",
    "ClassificationState",
    "DigestDayState",
    "Event",
    "EventCategory",
    "EventType",
    "ExclusionReason",
    "FrictionSignal",
    "ImportRun",
    "IngestRateWindow",
    "InternalUserRule",
    "InternalUserRuleKind",
    "Milestone",
    "MorningDigestDay",
    "MorningDigestSettings",
    "NorthStarRole",
    "NorthStarSettings",
    "RealUser",
    "UserAccount",
    "UserAgentPattern",
    "UserAgentReason",
    "UserAlias",
    "UserProfile",
    "event_type_label_default",
    "event_type_name_validate",
    "weight_validate",
]
