"""core's tables: Django finds an app's models here, so each topic module is imported."""

from __future__ import annotations

from core.models.keys import ApiKey, ApiKeyScope
from core.models.notifications import (
    AlertNotification,
    ConditionAlertState,
    DeliveryState,
    NotificationChannel,
    NotificationKind,
)

__all__ = [
    "AlertNotification",
    "ApiKey",
    "ApiKeyScope",
    "ConditionAlertState",
    "DeliveryState",
    "NotificationChannel",
    "NotificationKind",
]
