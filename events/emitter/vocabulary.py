"""The default vocabulary's events as methods of the emitter (the source documents' event names).

A product with its own names calls ``emit("ITS_NAME", ...)``; these are shortcuts for the names
the console ships with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class DefaultVocabulary:
    """One method per event type of the default vocabulary, each a call of ``emit``."""

    emit: Callable[..., str]

    def signup(self, *, user_id: str, email: str | None = None, **kw: Any) -> str:
        return self.emit("SIGNUP", user_id=user_id, **({"email": email} if email else {}), **kw)

    def login(self, *, user_id: str, **kw: Any) -> str:
        return self.emit("LOGIN", user_id=user_id, **kw)

    def core_action(self, *, user_id: str, action: str, **kw: Any) -> str:
        """The product's core action (a coach call or an agent run in the source documents)."""
        return self.emit("CORE_ACTION", user_id=user_id, action=action, **kw)

    def decision(self, *, user_id: str, **kw: Any) -> str:
        return self.emit("DECISION", user_id=user_id, **kw)

    def feedback(self, *, user_id: str, **kw: Any) -> str:
        return self.emit("FEEDBACK", user_id=user_id, **kw)

    def incident_viewed(self, **kw: Any) -> str:
        return self.emit("INCIDENT_VIEWED", **kw)

    def incident_viewed_no_action(self, **kw: Any) -> str:
        return self.emit("INCIDENT_VIEWED_NO_ACTION", **kw)

    def replay_started(self, **kw: Any) -> str:
        return self.emit("REPLAY_STARTED", **kw)

    def replay_completed(self, **kw: Any) -> str:
        return self.emit("REPLAY_COMPLETED", **kw)

    def replay_aborted(self, **kw: Any) -> str:
        return self.emit("REPLAY_ABORTED", **kw)

    def replay_failed(self, **kw: Any) -> str:
        return self.emit("REPLAY_FAILED", **kw)

    def export_started(self, **kw: Any) -> str:
        return self.emit("EXPORT_STARTED", **kw)

    def export_completed(self, **kw: Any) -> str:
        return self.emit("EXPORT_COMPLETED", **kw)

    def export_aborted(self, **kw: Any) -> str:
        return self.emit("EXPORT_ABORTED", **kw)

    def export_failed(self, **kw: Any) -> str:
        return self.emit("EXPORT_FAILED", **kw)

    def policy_block_repeat(self, **kw: Any) -> str:
        return self.emit("POLICY_BLOCK_REPEAT", **kw)

    def session_started(self, **kw: Any) -> str:
        return self.emit("SESSION_STARTED", **kw)

    def session_ended(self, **kw: Any) -> str:
        return self.emit("SESSION_ENDED", **kw)

    def session_idle_timeout(self, **kw: Any) -> str:
        return self.emit("SESSION_IDLE_TIMEOUT", **kw)

    def cert_generated(self, **kw: Any) -> str:
        return self.emit("CERT_GENERATED", **kw)

    def cert_downloaded(self, **kw: Any) -> str:
        return self.emit("CERT_DOWNLOADED", **kw)

    def api_call(self, **kw: Any) -> str:
        return self.emit("API_CALL", **kw)

    def policy_changed(self, **kw: Any) -> str:
        return self.emit("POLICY_CHANGED", **kw)

    def model_switched(self, **kw: Any) -> str:
        return self.emit("MODEL_SWITCHED", **kw)

    def rate_limit_changed(self, **kw: Any) -> str:
        return self.emit("RATE_LIMIT_CHANGED", **kw)

    def plan_changed(self, **kw: Any) -> str:
        return self.emit("PLAN_CHANGED", **kw)
