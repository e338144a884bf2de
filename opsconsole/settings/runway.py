"""The infrastructure runway (the infra app): the limits days-to-limit is computed against, and its alert levels."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from opsconsole.settings.environment import CELERY_BROKER_URL, REDIS_URL, env

# --- Infrastructure runway (infra) ------------------------------------------------
# Limits that days-to-limit is computed against. Binary units, as PostgreSQL and
# Redis report them (1 GB = 1024³ bytes, 1 MB = 1024² bytes). A value edited in
# admin (Infrastructure limits) wins; an empty Redis limit falls back to Redis's
# own maxmemory. Empty means "no limit known": days-to-limit is then null with a reason.
INFRA_DB_STORAGE_LIMIT_GB = env.float("INFRA_DB_STORAGE_LIMIT_GB", default=None)
INFRA_REDIS_MEMORY_LIMIT_MB = env.float("INFRA_REDIS_MEMORY_LIMIT_MB", default=None)
# The Redis whose memory is measured: the app's Redis, else a redis:// broker.
INFRA_REDIS_URL = env.str(
    "INFRA_REDIS_URL",
    default=REDIS_URL or (CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""),
)
# Trailing window of snapshots the growth line is fitted to, and how much data a fit needs.
INFRA_PROJECTION_WINDOW_DAYS = env.int("INFRA_PROJECTION_WINDOW_DAYS", default=7)
INFRA_PROJECTION_MIN_POINTS = env.int("INFRA_PROJECTION_MIN_POINTS", default=3)
INFRA_PROJECTION_MIN_SPAN_HOURS = env.float("INFRA_PROJECTION_MIN_SPAN_HOURS", default=24.0)
# Days to limit below these raise a warning / a critical alert.
INFRA_WARNING_DAYS = env.float("INFRA_WARNING_DAYS", default=14.0)
INFRA_CRITICAL_DAYS = env.float("INFRA_CRITICAL_DAYS", default=3.0)
# Request paths the API request counter counts, and how often each web worker
# adds its in-memory count to PostgreSQL (0 = on every request).
INFRA_API_PATH_PREFIXES = tuple(env.list("INFRA_API_PATH_PREFIXES", default=["/api/v1/", "/ops/"]))
INFRA_REQUEST_COUNTER_FLUSH_SECONDS = env.float("INFRA_REQUEST_COUNTER_FLUSH_SECONDS", default=10.0)
for _name in ("INFRA_DB_STORAGE_LIMIT_GB", "INFRA_REDIS_MEMORY_LIMIT_MB"):
    if globals()[_name] is not None and globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name} must be a positive number (or unset for no limit).")
if INFRA_PROJECTION_WINDOW_DAYS < 1 or INFRA_PROJECTION_MIN_POINTS < 2:
    raise ImproperlyConfigured("INFRA_PROJECTION_WINDOW_DAYS must be >= 1 and INFRA_PROJECTION_MIN_POINTS >= 2.")
if not 0 <= INFRA_CRITICAL_DAYS <= INFRA_WARNING_DAYS:
    raise ImproperlyConfigured("INFRA_CRITICAL_DAYS must be between 0 and INFRA_WARNING_DAYS.")
if INFRA_REQUEST_COUNTER_FLUSH_SECONDS < 0:
    raise ImproperlyConfigured("INFRA_REQUEST_COUNTER_FLUSH_SECONDS must be >= 0.")
