"""Who is asking, remembered by each web process for a moment: a console page kept per recompute
(customers/read_cache.py) then costs no database round trip for its session and its user.

Measured under gunicorn on a busy machine: each round trip of a page view (the session, the
user, the connection's health check) costs more than everything else a kept page does, so a
process remembers the sessions and staff users it has read for SESSION_CACHE_SECONDS, as it
remembers API keys (core/auth.py::api_key_find). The price is the same kind: a session ended
in another process (a logout there, a password change, a user made inactive) still opens pages
in this one for up to that many seconds. What this process writes (a login, a logout, a message
kept in the session) replaces or drops its own copy at once. 0 reads them on every request.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

# session key -> (time.monotonic() when read, its data); and (user id, backend, session's auth
# hash) -> (when read, the user). Bounded: a flood of sessions must not grow the memory.
_sessions_seen: dict[str, tuple[float, dict[str, Any]]] = {}
_users_seen: dict[tuple[str, str, str], tuple[float, Any]] = {}
_SEEN_MAX = 10_000


def _fresh(seen: tuple[float, Any] | None) -> bool:
    return seen is not None and time.monotonic() - seen[0] < settings.SESSION_CACHE_SECONDS


def _remember(memo: dict[Any, tuple[float, Any]], key: Any, value: Any) -> None:
    if settings.SESSION_CACHE_SECONDS > 0:
        if len(memo) >= _SEEN_MAX:
            memo.clear()
        memo[key] = (time.monotonic(), value)


class SessionStore(DatabaseSessionStore):
    """Django's database sessions, each read remembered for SESSION_CACHE_SECONDS."""

    def load(self) -> dict[str, Any]:
        key = self.session_key
        seen = _sessions_seen.get(key) if key else None
        if _fresh(seen):
            return dict(seen[1])  # type: ignore[index]
        data = super().load()
        if key and self.session_key == key:  # found and unexpired (a missing one clears the key)
            _remember(_sessions_seen, key, dict(data))
        return data

    def save(self, must_create: bool = False) -> None:
        super().save(must_create=must_create)
        if self.session_key:
            _sessions_seen.pop(self.session_key, None)

    def delete(self, session_key: str | None = None) -> None:
        key = session_key or self.session_key
        super().delete(session_key)
        if key:
            _sessions_seen.pop(key, None)


def user_remembered(request: HttpRequest) -> Any:
    """The session's user as ``django.contrib.auth.get_user`` finds it (backend, active, the
    session's auth hash verified), read at most once per SESSION_CACHE_SECONDS per session."""
    session = request.session
    key = (
        str(session.get(auth.SESSION_KEY, "")),
        str(session.get(auth.BACKEND_SESSION_KEY, "")),
        str(session.get(auth.HASH_SESSION_KEY, "")),
    )
    seen = _users_seen.get(key) if all(key) else None
    if _fresh(seen):
        return copy.copy(seen[1])  # type: ignore[index]  # a request may change its user; the kept one stays
    user = auth.get_user(request)
    if user.is_authenticated and all(key):
        _remember(_users_seen, key, copy.copy(user))
    return user


class RememberedUserMiddleware(AuthenticationMiddleware):
    """``request.user`` through ``user_remembered``."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        # As Django's own middleware does: the user is read when a view first asks for it.
        request.user = SimpleLazyObject(lambda: user_remembered(request))  # type: ignore[assignment]
