"""Slow clients are absorbed by the proxy (issue 19). *process*

Clients that send their body one byte every 0.25 s: straight to gunicorn's sync
workers they hold every worker and /metrics stops answering (the failure seen in
production: Prometheus marked the target down); through nginx with the shipped
configuration /metrics keeps answering while they trickle.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import skip_or_fail
from tests.proxy import _server_database_url, nginx_proxy, shipped_gunicorn  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

SLOW_CLIENTS = 3  # more than the two gunicorn workers
TRICKLE_SECONDS = 8.0
# A scrape that waits longer than this is a scrape Prometheus would have counted as down
# (its default scrape timeout is 10 s). A failure detector, not a measured timing.
SCRAPE_TIMEOUT_SECONDS = 5.0


def _trickle(port: int, stop: threading.Event) -> None:
    """POST a body one byte every 0.25 s for TRICKLE_SECONDS (a phone on a bad network)."""
    body = b'{"events": []}'.ljust(int(TRICKLE_SECONDS / 0.25), b" ")
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        conn.sendall(
            b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer oc_slow\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        for byte in body:
            if stop.is_set():
                return
            conn.sendall(bytes([byte]))
            time.sleep(0.25)
        conn.recv(1024)


def _scrapes_while_slow_clients_trickle(scrape_url: str, slow_port: int) -> list[str]:
    stop = threading.Event()
    threads = [threading.Thread(target=_trickle, args=(slow_port, stop), daemon=True) for _ in range(SLOW_CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # every slow client has connected and started its body
    outcomes = []
    deadline = time.monotonic() + TRICKLE_SECONDS - 2
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(scrape_url, timeout=SCRAPE_TIMEOUT_SECONDS) as response:
                outcomes.append(str(response.status))
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            outcomes.append(f"failed: {type(exc).__name__}")
            break
        time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.mark.parametrize("through", ["nginx", "gunicorn alone"])
def test_metrics_keeps_answering_while_slow_clients_trickle_their_bodies(through, server_database_url):
    if shutil.which("nginx") is None and through == "nginx":
        skip_or_fail("nginx is not installed")
    with shipped_gunicorn(DATABASE_URL=server_database_url, workers=2) as app_port:
        if through == "gunicorn alone":
            # The failure of issue 19: sync workers wait on the slow bodies, the scrape times out.
            outcomes = _scrapes_while_slow_clients_trickle(f"http://127.0.0.1:{app_port}/metrics", app_port)
            assert outcomes and outcomes[-1].startswith("failed"), outcomes
            return
        with nginx_proxy(app_port) as proxy:
            proxy_port = int(proxy.rsplit(":", 1)[1])
            outcomes = _scrapes_while_slow_clients_trickle(proxy + "/metrics", proxy_port)
            assert len(outcomes) >= 5 and set(outcomes) == {"200"}, outcomes
