"""API keys: created here (the raw key is shown once, never stored). Ingestion itself is
events/ingestion/ (``events.ingestion.services.events_ingest``)."""

from __future__ import annotations

from events.models import ApiKey, ApiKeyScope


def api_key_create(*, name: str, scope: str, is_automation: bool = False) -> tuple[ApiKey, str]:
    """Create a key and return it with its raw value, which is never stored."""
    if scope not in ApiKeyScope.values:
        raise ValueError(f"Unknown scope {scope!r}; use one of: {', '.join(ApiKeyScope.values)}.")
    if not name.strip():
        raise ValueError("A key needs a name that says who uses it.")
    raw_key = ApiKey.generate_raw_key()
    api_key = ApiKey.objects.create(
        name=name.strip(),
        scope=scope,
        prefix=raw_key[: ApiKey.PREFIX_LENGTH],
        key_hash=ApiKey.hash_raw_key(raw_key),
        is_automation=is_automation,
    )
    return api_key, raw_key
