"""Django's PostgreSQL backend (``DATABASES["default"]["ENGINE"] = "core.postgresql"``), with one change:
the per-request health check (``CONN_HEALTH_CHECKS``) asks the server only when it has spoken.

Django checks a persistent connection before a request's first query by sending ``SELECT 1``: one
round trip per request, which on a busy web worker costs more CPU than many a request's own work
(an ingest batch's statements are five or six round trips in all). A server that ended the
session (a restart, ``pg_terminate_backend``, an idle timeout, a pooler closing the client) sends
its last message and closes the socket, so the socket of an idle connection becomes readable; one
that has not spoken has nothing to say. So the socket is polled first, without waiting: nothing to
read, and the connection is as usable as ``SELECT 1`` would find it; anything to read (a closed
socket, a notice, a changed parameter) and Django's own check runs, replacing the connection if it
fails. A server that vanished without a word (a host gone, a cable cut) is found by neither before
the request's first statement times out, and that statement's error is a 503 either way
(opsconsole/middleware.py).
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    # Django's own attributes (BaseDatabaseWrapper.connect sets them), which django-stubs does not declare.
    health_check_enabled: bool
    health_check_done: bool

    def close_if_health_check_failed(self) -> None:
        if self.connection is not None and self.health_check_enabled and not self.health_check_done:
            if not self.server_spoke():
                self.health_check_done = True
                return
        super().close_if_health_check_failed()

    def server_spoke(self) -> bool:
        """Whether the idle connection has anything to read (or is known broken): then it must be checked."""
        connection = self.connection
        if connection is None or connection.closed or connection.broken or not hasattr(select, "poll"):
            return True
        try:
            poller = select.poll()
            poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
            return bool(poller.poll(0))
        except (OSError, ValueError):  # no socket to poll: let SELECT 1 decide
            return True
