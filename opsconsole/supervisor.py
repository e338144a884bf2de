"""One supervisor for the console's processes (web, Celery worker, Celery beat).

Used by ``manage.py run_console`` for ``make run`` and for a single-box production
setup. A child that exits is restarted with exponential backoff and the restart is
logged and recorded in a small state file, so Today's freshness line can say so; one
child exiting never stops the others. SIGTERM and SIGINT stop every child cleanly:
SIGTERM to each child's own main process, which stops its workers itself (signalling the
whole group makes Celery log each pool process's death as an ERROR), then SIGKILL to each
child's process group after a short grace period, so the whole stop takes under 5 s.

The state file is JSON under ``var/``: ``{"children": {name: {"pid", "restarts",
"last_exit_code", "last_exit_at"}}, "started_at"}``. It is the supervisor's own record,
not configuration; deleting it loses only the restart history.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

# A child restarted after 1, 2, 4 ... seconds, at most this long apart.
RESTART_BACKOFF_MAX_SECONDS = 60.0
# A child that stayed up this long is healthy again: its next crash restarts after 1 s.
RESTART_BACKOFF_RESET_SECONDS = 60.0
# How long SIGTERM has to work before the supervisor sends SIGKILL: every periodic task is
# idempotent and each recompute one transaction, so a task cut short is simply run again.
STOP_GRACE_SECONDS = 4.0


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures_in_a_row: int = 0
    restart_due_at: float | None = None
    last_exit_code: int | None = None
    last_exit_at: datetime | None = None

    def backoff_seconds(self) -> float:
        return min(RESTART_BACKOFF_MAX_SECONDS, 2.0 ** max(0, self.failures_in_a_row - 1))


@dataclass
class Supervisor:
    """Starts ``commands`` (name -> argv) and keeps them running until told to stop."""

    commands: dict[str, list[str]]
    cwd: Path
    state_path: Path
    env: dict[str, str] | None = None
    say: Callable[[str], None] = print
    # Called once, as soon as ``ready`` (polled with the children) first answers True: what
    # run_console uses to print the URL only once the web server answers on its port.
    ready: Callable[[], bool] | None = None
    on_ready: Callable[[], None] | None = None
    children: dict[str, Child] = field(default_factory=dict)
    _stopping: bool = False

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT; returns the exit status (0 after a clean stop)."""
        previous = {sig: signal.signal(sig, self._on_stop_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        stopped = False
        try:
            for name, argv in self.commands.items():
                self.children[name] = Child(name=name, argv=argv)
                self._start(self.children[name])
            self._write_state()
            announced = self.on_ready is None
            while not self._stopping:
                self._poll_once()
                if not announced and (self.ready is None or self.ready()):
                    announced = True
                    assert self.on_ready is not None
                    self.on_ready()
                time.sleep(0.2)
            stopped = True
            return self._stop_all()
        finally:
            if not stopped:  # a child that could not start, or a bug: never leave the others orphaned
                self._stopping = True
                self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self) -> None:
        self._stopping = True

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only sets a flag: the loop does the stopping, outside the signal handler.
        if not self._stopping:
            self.say(f"{signal.Signals(signum).name} received: stopping {', '.join(self.children)}…")
        self._stopping = True

    def _start(self, child: Child) -> None:
        # Its own session: Ctrl-C in a terminal reaches only the supervisor, which then
        # stops each child once, in order, instead of every process at once twice.
        child.process = subprocess.Popen(child.argv, cwd=self.cwd, env=self.env, start_new_session=True)
        child.started_at = time.monotonic()
        child.restart_due_at = None
        logger.info("started %s (pid %s)", child.name, child.process.pid)

    def _poll_once(self) -> None:
        now = time.monotonic()
        for child in self.children.values():
            if child.process is not None and child.process.poll() is not None:
                self._on_exit(child, now)
            elif child.process is None and child.restart_due_at is not None and now >= child.restart_due_at:
                child.restarts += 1
                self._start(child)
                self._write_state()

    def _on_exit(self, child: Child, now: float) -> None:
        assert child.process is not None
        code = child.process.returncode
        child.process = None
        child.last_exit_code = code
        child.last_exit_at = datetime.now(UTC)
        if now - child.started_at >= RESTART_BACKOFF_RESET_SECONDS:
            child.failures_in_a_row = 0
        child.failures_in_a_row += 1
        delay = child.backoff_seconds()
        child.restart_due_at = now + delay
        message = f"{child.name} {exit_described(code)}; restarting it in {delay:.0f} s (restart {child.restarts + 1})"
        logger.warning(message)
        self.say(message)
        self._write_state()

    def _stop_all(self) -> int:
        running = [c for c in self.children.values() if c.process is not None and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            try:
                child.process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass  # already gone
        started = time.monotonic()
        _wait_all(running, until=started + STOP_GRACE_SECONDS / 2)
        for child in running:
            # Still finishing its work (a Celery worker's warm shutdown waits for its tasks and its
            # broker): SIGQUIT asks for the quick shutdown gunicorn and Celery both know.
            assert child.process is not None
            if child.process.poll() is None:
                try:
                    child.process.send_signal(signal.SIGQUIT)
                except ProcessLookupError:
                    pass
        deadline = started + STOP_GRACE_SECONDS
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %.0f s; killing it", child.name, STOP_GRACE_SECONDS)
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait()
        for child in running:
            # A child's own children (gunicorn or Celery pool processes) that outlived it.
            assert child.process is not None
            _signal_group(child.process, signal.SIGKILL)
        self._write_state()
        self.say("Stopped.")
        return 0

    def _write_state(self) -> None:
        state: dict[str, Any] = {
            "children": {
                c.name: {
                    "pid": c.process.pid if c.process is not None and c.process.poll() is None else None,
                    "restarts": c.restarts,
                    "last_exit_code": c.last_exit_code,
                    "last_exit_at": c.last_exit_at.isoformat() if c.last_exit_at else None,
                }
                for c in self.children.values()
            },
            "stopped": self._stopping,
        }
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(self.state_path)  # readers never see half a file


def _wait_all(children: list[Child], *, until: float) -> None:
    """Wait until every child has exited or ``until`` (monotonic) has passed."""
    while time.monotonic() < until and any(c.process is not None and c.process.poll() is None for c in children):
        time.sleep(0.05)


def exit_described(code: int | None) -> str:
    """'exited with code 3' or 'was killed by SIGKILL', as an operator reads it."""
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            pass
    return f"exited with code {code}"


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


@dataclass(frozen=True)
class ChildRestart:
    name: str
    restarts: int
    last_exit_code: int | None
    last_exit_at: datetime

    @property
    def how(self) -> str:
        return exit_described(self.last_exit_code)


def child_restarts_recent(state_path: Path, *, within: timedelta, now: datetime | None = None) -> list[ChildRestart]:
    """Children the supervisor restarted whose last exit is within ``within`` of now.

    Empty when there is no supervisor (systemd restarts and logs its own units) or
    the state file is unreadable: a restart note is information, never an error."""
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        return []
    now = now or datetime.now(UTC)
    recent = []
    for name, child in (state.get("children") or {}).items():
        try:
            exited_at = datetime.fromisoformat(child["last_exit_at"]) if child.get("last_exit_at") else None
        except (TypeError, ValueError):
            continue
        if exited_at is not None and now - exited_at <= within:
            recent.append(ChildRestart(name, int(child.get("restarts") or 0), child.get("last_exit_code"), exited_at))
    return sorted(recent, key=lambda r: r.last_exit_at, reverse=True)


def supervisor_state_path() -> Path:
    return Path(settings.SUPERVISOR_STATE_FILE)


# Today says a child restarted for this long after it happened.
RESTART_NOTE_WINDOW = timedelta(hours=1)


def process_restarts_context(request: Any) -> dict[str, Any]:
    """Context processor: ``process_restarts``, the children run_console restarted in the last hour
    (Today's freshness line names them). Reads one small file; nothing on admin and API pages."""
    path = getattr(request, "path", "")
    if path.startswith(("/admin/", "/api/")):
        return {}
    return {"process_restarts": child_restarts_recent(supervisor_state_path(), within=RESTART_NOTE_WINDOW)}
