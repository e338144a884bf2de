"""How events may arrive: the ingest endpoints' limits, the per-key rate limit, parking of unregistered types."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from opsconsole.settings.environment import REDIS_URL, env

# Ingestion limits: part of the public contract (documented in the API).
INGEST_MAX_EVENTS = 1000
INGEST_MAX_BYTES = 1024 * 1024
INGEST_MAX_FUTURE_SECONDS = 300
# Ingest requests per key per minute (a batch of up to 1,000 events is one request); 0 turns it off.
INGEST_RATE_LIMIT_PER_MINUTE = env.int("INGEST_RATE_LIMIT_PER_MINUTE", default=1200)
# Where the per-key counts are kept (events/ingestion/ratelimit.py): a Redis URL, by default REDIS_URL; empty
# counts in PostgreSQL. While that Redis does not answer, ingestion counts in PostgreSQL instead.
INGEST_RATE_LIMIT_REDIS_URL = env.str("INGEST_RATE_LIMIT_REDIS_URL", default=REDIS_URL)
if INGEST_RATE_LIMIT_REDIS_URL and not INGEST_RATE_LIMIT_REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(
        "INGEST_RATE_LIMIT_REDIS_URL must be a redis://, rediss:// or unix:// URL, or empty to count in PostgreSQL."
    )
# /api/v1/events parks an event of an unregistered type (stored, never counted, listed on Vocabulary),
# as the PostHog and Segment endpoints do: a new product's own names arrive before it describes them.
# INGEST_REJECT_UNREGISTERED=1 is the strict mode (each such event refused, naming its type), except for
# keys whose park_unregistered flag is on. INGEST_PARK_UNREGISTERED=1 parks for every key, as it always did.
INGEST_PARK_UNREGISTERED = env.bool("INGEST_PARK_UNREGISTERED", default=False)
INGEST_REJECT_UNREGISTERED = env.bool("INGEST_REJECT_UNREGISTERED", default=False)
if INGEST_PARK_UNREGISTERED and INGEST_REJECT_UNREGISTERED:
    raise ImproperlyConfigured(
        "INGEST_PARK_UNREGISTERED and INGEST_REJECT_UNREGISTERED are both on: unset one (parking is the default)."
    )
# The PostHog group type ($groups key, $groupidentify's $group_type) that names the customer account.
INGEST_ACCOUNT_GROUP_TYPE = env.str("INGEST_ACCOUNT_GROUP_TYPE", default="company").strip()
if not INGEST_ACCOUNT_GROUP_TYPE:
    raise ImproperlyConfigured("INGEST_ACCOUNT_GROUP_TYPE must name a PostHog group type, e.g. company.")
