"""Bearer-key authentication and the scope permissions every API view uses.

Keys travel in the ``Authorization`` header (Bearer; the SDK endpoints also take
Basic auth or the SDK's body field, events/ingestion/gate.py), never in a query string, so
they stay out of access logs; only their SHA-256 is stored.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import HTTP_HEADER_ENCODING, exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from core.models import ApiKey, ApiKeyScope

# How often last_used_at is refreshed: writing it on every request would put a
# row lock on the key in the ingest hot path.
LAST_USED_RESOLUTION_SECONDS = 60


class KeyUser:
    """The request.user for a key-authenticated request: not a Django user, never staff."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.pk = None
        self.username = f"key:{api_key.prefix}"

    def __str__(self) -> str:
        return self.username


# Every authenticated request needs the key: a plain cursor, because compiling the
# equivalent ORM query costs several times what PostgreSQL spends answering it.
_API_KEY_FIELDS = ("id", "name", "scope", "prefix", "key_hash", "is_automation", "created_at", "revoked_at",
                   "last_used_at", "rate_limit_per_minute", "park_unregistered", "allowed_origins")  # fmt: skip
_API_KEY_SQL = f"SELECT {', '.join(_API_KEY_FIELDS)} FROM {ApiKey._meta.db_table} WHERE key_hash = %s"


# key_hash -> (time.monotonic() when read, the key): this process's recently used keys.
_keys_seen: dict[str, tuple[float, ApiKey]] = {}
_KEYS_SEEN_MAX = 10_000


def api_key_find(*, key_hash: str) -> ApiKey | None:
    """The key with this SHA-256, revoked or not, as the database had it at most
    API_KEY_CACHE_SECONDS ago (0: read on every call).

    Measured under gunicorn (BENCHMARKS.md, Reads): one database round trip costs a web worker
    more CPU than everything else a cached read answer does, so each process
    keeps the keys it has seen for a few seconds. The price: a revoked key (or a
    new scope or rate limit) takes effect in every process within that many
    seconds instead of at once. Unknown keys are never remembered (a scan of
    random keys must not grow the memory), and the memo is bounded.
    """
    ttl = settings.API_KEY_CACHE_SECONDS
    now = time.monotonic()
    seen = _keys_seen.get(key_hash)
    if seen is not None and now - seen[0] < ttl:
        return seen[1]
    with connection.cursor() as cursor:
        cursor.execute(_API_KEY_SQL, [key_hash])
        row = cursor.fetchone()
    if row is None:
        _keys_seen.pop(key_hash, None)
        return None
    api_key = ApiKey.from_db("default", _API_KEY_FIELDS, row)
    if ttl > 0:
        if len(_keys_seen) >= _KEYS_SEEN_MAX:
            _keys_seen.clear()
        _keys_seen[key_hash] = (now, api_key)
    return api_key


class ApiKeyRefused(Exception):
    """The raw key is unknown or revoked (the message says which)."""


def api_key_verify(raw_key: str) -> ApiKey:
    """The live key for a raw key, however it travelled (Bearer, Basic, a body field).

    Refreshes ``last_used_at`` at most once a minute. Raises ApiKeyRefused.
    """
    api_key = api_key_find(key_hash=ApiKey.hash_raw_key(raw_key))
    if api_key is None:
        raise ApiKeyRefused("Unknown API key.")
    if api_key.revoked_at is not None:
        raise ApiKeyRefused("This API key has been revoked.")
    now = timezone.now()
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def authorization_header(request: Request | HttpRequest) -> bytes:
    """The request's ``Authorization`` header as bytes, as DRF's ``get_authorization_header`` gives it,
    read from ``META``: ``request.headers`` builds a mapping of every header to read one, which cost
    a kept read answer more than its key check."""
    value = request.META.get("HTTP_AUTHORIZATION", b"")
    return value.encode(HTTP_HEADER_ENCODING) if isinstance(value, str) else value


class ApiKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request | HttpRequest) -> tuple[KeyUser, ApiKey] | None:
        header = authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Bearer <key>'.")
        try:
            raw_key = header[1].decode()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The API key contains invalid characters.") from exc
        try:
            api_key = api_key_verify(raw_key)
        except ApiKeyRefused as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from exc
        return KeyUser(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) when credentials are missing.
        return 'Bearer realm="ops-console"'


def request_api_key(request: Request) -> ApiKey | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiKey) else None


class _ScopePermission(BasePermission):
    scopes: frozenset[str] = frozenset()
    allow_staff_session = False
    message = "This key's scope does not allow this request."

    def has_permission(self, request: Request, view: Any) -> bool:
        api_key = request_api_key(request)
        if api_key is not None:
            if api_key.scope not in self.scopes:
                self.message = (
                    f"A key with scope '{api_key.scope}' cannot do this; it needs one of: "
                    f"{', '.join(sorted(self.scopes))}."
                )
                return False
            return True
        user = request.user
        if not user or not user.is_authenticated:
            # DRF turns this into 401 with WWW-Authenticate because an authenticator exists.
            raise exceptions.NotAuthenticated("Send 'Authorization: Bearer <key>' (or log in as staff).")
        if self.allow_staff_session and user.is_staff:
            return True
        self.message = "Only staff users or an API key with the right scope may do this."
        return False


class IngestScope(_ScopePermission):
    """Sending events: ingest keys only."""

    scopes = frozenset({ApiKeyScope.INGEST})


class IngestScopeInGate(IngestScope):
    """Sending events through the SDK endpoints: ingest keys only, checked by the gate
    (events/ingestion/gate.py) because the SDKs' keys may travel in the body, which DRF's
    authentication runs before. Declared so every API view names its scope."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return True


class ReadScopeOrStaff(_ScopePermission):
    """Reading metrics and customers: read or read-write keys, or a staff session."""

    scopes = frozenset({ApiKeyScope.READ, ApiKeyScope.WRITE})
    allow_staff_session = True


class WriteScopeOrStaff(_ScopePermission):
    """Recording founder actions: read-write keys or a staff session."""

    scopes = frozenset({ApiKeyScope.WRITE})
    allow_staff_session = True


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes bearer keys in the OpenAPI schema."""

    target_class = "core.auth.ApiKeyAuthentication"
    name = "BearerKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An Ops Console API key (`manage.py create_api_key NAME --scope ingest|read|write`).",
        }
