"""The infra app's defaults: one limits row, with no limit set (the founder sets the plan's limits in
admin or by environment; until then days-to-limit says there is no limit)."""

from __future__ import annotations

from typing import Any

LIMITS_DEFAULTS: dict[str, Any] = {"db_storage_limit_gb": None, "redis_memory_limit_mb": None}


def infra_defaults_seed(apps: Any) -> None:
    apps.get_model("infra", "InfraLimitSettings").objects.get_or_create(pk=1, defaults=LIMITS_DEFAULTS)
