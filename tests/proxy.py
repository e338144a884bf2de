"""The shipped production stack for tests: gunicorn with deploy/gunicorn.conf.py behind nginx
with deploy/nginx/opsconsole-proxy.conf, on free high ports as an ordinary process each."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.processes import BASE_DIR, database_url, free_port, listening, project_env

DEPLOY = BASE_DIR / "deploy"

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "proxy-test-only-" + "q9z" * 20,
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    # TLS ends at the proxy in production; here the proxy speaks plain HTTP.
    "SECURE_SSL_REDIRECT": "0",
    # /metrics closed, as the shipped setup has it: the scrapes send this token.
    "METRICS_BEARER_TOKEN": "proxy-test-metrics-only-" + "m4t" * 8,
}


@pytest.fixture(name="server_database_url")
def _server_database_url(transactional_db: object) -> str:
    """The migrated test database as a URL, for servers started as separate processes."""
    return database_url()


def nginx_conf(*, run_dir: Path, listen: int, upstream: int) -> str:
    template = (DEPLOY / "nginx" / "nginx-unprivileged.conf.in").read_text()
    return (
        template.replace("@RUN_DIR@", str(run_dir))
        .replace("@LISTEN@", f"127.0.0.1:{listen}")
        .replace("@UPSTREAM@", f"127.0.0.1:{upstream}")
        .replace("@PROXY_CONF@", str(DEPLOY / "nginx" / "opsconsole-proxy.conf"))
    )


@contextmanager
def shipped_gunicorn(*, workers: int = 2, log_path: Path | None = None, **env: str) -> Iterator[int]:
    """gunicorn -c deploy/gunicorn.conf.py on a free port; yields the port."""
    port = free_port()
    environment = project_env(**PRODUCTION_ENV, GUNICORN_WORKERS=str(workers), GUNICORN_ACCESS_LOG="-", **env)
    argv = [sys.executable, "-m", "gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py"), "-b", f"127.0.0.1:{port}"]
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(argv, cwd=BASE_DIR, env=environment, stdout=log, stderr=log)
    try:
        with listening(process, port):
            yield port
    finally:
        if log_path:
            log.close()  # type: ignore[union-attr]


@contextmanager
def nginx_proxy(upstream_port: int) -> Iterator[str]:
    """nginx with the shipped proxy directives in front of upstream_port; yields its base URL."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        raise FileNotFoundError("nginx")
    run_dir = Path(tempfile.mkdtemp(prefix="opsconsole-nginx-"))
    os.chmod(run_dir, 0o755)  # as root, nginx workers run as nobody and write temp files here
    port = free_port()
    conf = run_dir / "nginx.conf"
    conf.write_text(nginx_conf(run_dir=run_dir, listen=port, upstream=upstream_port))
    check = subprocess.run([binary, "-t", "-c", str(conf), "-e", str(run_dir / "error.log")], capture_output=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx refused the shipped configuration: {check.stderr.decode()}")
    process = subprocess.Popen([binary, "-c", str(conf), "-e", str(run_dir / "error.log")], stderr=subprocess.DEVNULL)
    try:
        with listening(process, port) as url:
            yield url
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


SLOW_CLIENTS = 3  # more than the two gunicorn workers
BYTE_INTERVAL_SECONDS = 0.25
# Long enough that the slow bodies are still arriving when the last scrape ends, even on a loaded
# machine; the clients are stopped as soon as the scrapes are done.
TRICKLE_MAX_SECONDS = 120.0
SCRAPES = 5
# A scrape that waits longer than this is a scrape Prometheus would have counted as down
# (its default scrape timeout). A failure detector, not a measured timing.
SCRAPE_TIMEOUT_SECONDS = 10.0


def _trickle(port: int, stop: threading.Event, started: threading.Barrier) -> None:
    """POST a body one byte every BYTE_INTERVAL_SECONDS until told to stop (a phone on a bad network)."""
    # PostHog's /batch/ carries its key in the body, so the server must read the whole body before it
    # can answer: a bearer key in a header would be refused at once and free the worker (issue 16's gate).
    body = b'{"api_key": "oc_slow", "batch": []}'.ljust(int(TRICKLE_MAX_SECONDS / BYTE_INTERVAL_SECONDS), b" ")
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        conn.sendall(
            b"POST /batch/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        conn.sendall(body[:1])
        started.wait(timeout=60)
        for byte in body[1:]:
            if stop.wait(BYTE_INTERVAL_SECONDS):
                return
            conn.sendall(bytes([byte]))
        conn.recv(1024)


def scrapes_while_slow_clients_trickle(
    scrape_url: str, slow_port: int, scrapes: int = SCRAPES, *, bearer_token: str = ""
) -> list[str]:
    """Scrape scrape_url `scrapes` times while SLOW_CLIENTS are in the middle of their bodies to
    slow_port; each scrape's outcome ("200", or "failed: ..." and the scraping stops). The count of
    scrapes is fixed, not the time they take, so a slow machine makes the test slower, not different;
    "failed: clients finished" means the bodies ran out first, so the run proved nothing."""
    headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
    # One scrape before the slow clients come: a worker's first answer (imports, connections) on a
    # loaded machine is no part of what the slow clients do to the ones after it.
    try:
        urllib.request.urlopen(urllib.request.Request(scrape_url, headers=headers), timeout=60).close()
    except (urllib.error.URLError, TimeoutError, OSError):
        pass
    stop = threading.Event()
    started = threading.Barrier(SLOW_CLIENTS + 1)
    threads = [
        threading.Thread(target=_trickle, args=(slow_port, stop, started), daemon=True) for _ in range(SLOW_CLIENTS)
    ]
    for thread in threads:
        thread.start()
    started.wait(timeout=60)  # every slow client has connected and started its body
    time.sleep(1.0)  # and the server side has picked each of them up
    outcomes = []
    for _ in range(scrapes):
        try:
            scrape = urllib.request.Request(scrape_url, headers=headers)
            with urllib.request.urlopen(scrape, timeout=SCRAPE_TIMEOUT_SECONDS) as response:
                outcomes.append(str(response.status))
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            outcomes.append(f"failed: {type(exc).__name__}")
            break
        time.sleep(0.2)
    if not all(thread.is_alive() for thread in threads):
        outcomes.append("failed: clients finished")
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes
