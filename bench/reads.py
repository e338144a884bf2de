"""Reads: p50/p99 and requests/s of the console's read endpoints against the framework floor.

gunicorn with production settings serves a database whose ops_tenant_metrics
is already computed; a load generator in a separate process (wrk when
installed, else the Python one below) keeps 16 connections busy for each
endpoint in turn:

- ``GET /healthz`` (no database, no session): the trivial Django view, the floor;
- ``GET /ops/customers/at-risk?limit=10`` and ``GET /ops/customers?page=2`` with a read key;
- the Today page ``/`` with a staff session cookie, only when it answers 200
  (until the Today page exists, ``/`` redirects and is reported as skipped);
- the Customer page of the customer with the most events (``t00000``, the head of the
  generator's skew, present at every size), with the same cookie.

The pages are asked for as a founder's browser asks on its second view: with the session and
the CSRF cookie the first view set (without it, every view would make a new CSRF secret and
set it, which only a browser's first visit does).

The 10,000-tenant and the 100-tenant databases are served by two gunicorns at
once and measured in the same slices (``run_side_by_side``), so the p99 ratio
between them compares figures taken seconds apart. Every response must be 2xx
(checked); the web workers' peak RSS is sampled.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BASE_DIR, BENCH_SECRET_KEY, PeakRss, production_server

ENDPOINTS = [
    ("floor", "/healthz", "none"),
    ("at_risk", "/ops/customers/at-risk?limit=10", "key"),
    ("customers", "/ops/customers?page=2", "key"),
    ("today", "/", "session"),
    ("customer", "/customers/t00000/", "session"),
]


@dataclass
class EndpointFigures:
    path: str
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    requests: int = 0
    errors: int = 0
    skipped: str = ""
    # The floor's req/s in the slices interleaved with this endpoint's (see _sliced).
    floor_rps: float = 0.0
    p99_slices: list[float] = field(default_factory=list)

    @property
    def floor_ratio(self) -> float:
        return self.rps / self.floor_rps if self.floor_rps else 0.0


@dataclass
class ReadsResult:
    tenants: int
    duration: int
    connections: int
    tool: str
    endpoints: dict[str, EndpointFigures] = field(default_factory=dict)
    web_peak_rss_mb: float = 0.0


def _credentials(database_url: str) -> tuple[str, str]:
    """A read key and a staff session cookie, made in a child process with the bench's database."""
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'opsconsole.settings'); django.setup()\n"
        "from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        "from core.services import api_key_create\n"
        "User = get_user_model()\n"
        "user, _ = User.objects.get_or_create(username='bench-staff', defaults={'is_staff': True})\n"
        "s = SessionStore(); s[SESSION_KEY] = str(user.pk)\n"
        "s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
        "s[HASH_SESSION_KEY] = user.get_session_auth_hash(); s.create()\n"
        "_, raw = api_key_create(name='bench-read', scope='read')\n"
        "print(raw, s.session_key)\n"
    )
    # The same SECRET_KEY as the server: the session stores a hash keyed by it, and a
    # session made under another key is silently logged out (the page answers 302).
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "1", "SECRET_KEY": BENCH_SECRET_KEY}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, check=True, capture_output=True, text=True
    )
    key, session = out.stdout.strip().splitlines()[-1].split()
    return key, session


CSRF_COOKIE = "csrftoken"  # Django's CSRF_COOKIE_NAME, which the settings leave as it is


def _headers(kind: str, key: str, session: str) -> dict[str, str]:
    if kind == "key":
        return {"Authorization": f"Bearer {key}"}
    if kind == "session":
        return {"Cookie": f"sessionid={session}"}
    return {}


def _status(port: int, path: str, headers: dict[str, str]) -> int:
    return _get(port, path, headers).status


# The first request to a fresh worker loads the project (URLs, DRF, templates) and a page's first
# view builds what it keeps: tens of seconds on a machine other work keeps busy.
FIRST_REQUEST_TIMEOUT_SECONDS = 180


def _get(port: int, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=FIRST_REQUEST_TIMEOUT_SECONDS)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def _with_csrf_cookie(port: int, path: str, headers: dict[str, str]) -> dict[str, str]:
    """``headers`` with the CSRF cookie a first view of ``path`` sets added to its Cookie, as a browser keeps it."""
    response = _get(port, path, headers)
    for value in response.headers.get_all("Set-Cookie") or []:
        if value.startswith(f"{CSRF_COOKIE}="):
            cookie = value.split(";", 1)[0]
            return {**headers, "Cookie": f"{headers['Cookie']}; {cookie}"}
    return headers


def _wrk(url: str, headers: dict[str, str], *, duration: int, connections: int) -> EndpointFigures:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            raise RuntimeError(f"wrk output without a {label}% latency:\n{out}")
        value, unit = float(match[1]), match[2]
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    requests = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    errors_match = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(errors_match[1]) if errors_match else 0
    if socket_errors:
        errors += sum(int(x) for x in socket_errors.groups())
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    return EndpointFigures(path="", rps=rps, p50_ms=ms("50"), p99_ms=ms("99"), requests=requests, errors=errors)


def python_load(url: str, headers: dict[str, str], *, duration: float, connections: int) -> dict[str, object]:
    """The fallback load generator (runs in its own process): keep-alive connections in threads."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + duration

    def worker() -> None:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        mine: list[float] = []
        bad = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                conn.request("GET", target, headers=headers)
                response = conn.getresponse()
                response.read()
                if not 200 <= response.status < 300:
                    bad += 1
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
                continue
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0

    return {"rps": len(latencies) / elapsed, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "requests": len(latencies), "errors": errors[0]}  # fmt: skip


def _python_tool(url: str, headers: dict[str, str], *, duration: int, connections: int) -> EndpointFigures:
    out = subprocess.run(
        [sys.executable, __file__, "--load", url, json.dumps(headers), str(duration), str(connections)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return EndpointFigures(path="", **json.loads(out.stdout))


SLICES = 5


def _sliced(measure: Any, floor_url: str, targets: list[tuple[str, dict[str, str]]], *, duration: int,
            connections: int) -> list[EndpointFigures]:  # fmt: skip
    """One endpoint on every server and the floor, in alternating slices of the same length.

    The machine is shared: its speed changes by 2-3x from one half-minute to the
    next (measured: the floor alone at 670 and at 2,440 req/s minutes apart), so
    figures taken minutes apart can look twice as good or bad as they are. Each
    slice measures the floor, then the endpoint on each server (10,000 tenants, 100
    tenants) one after the other, so all see the same conditions; req/s is over all
    slices, p50/p99 the median of the slices' (robust to one slowed slice), and the
    slices' own p99s are kept for side-by-side ratios (``p99_ratio``).
    """
    slice_seconds = max(1, round(duration / SLICES))
    own: list[list[EndpointFigures]] = [[] for _ in targets]
    floor: list[EndpointFigures] = []
    for _ in range(max(1, duration // slice_seconds)):
        floor.append(measure(floor_url, {}, duration=slice_seconds, connections=connections))
        for slices, (url, headers) in zip(own, targets, strict=True):
            slices.append(measure(url, headers, duration=slice_seconds, connections=connections))
    return [
        EndpointFigures(
            path="",
            rps=sum(f.rps for f in slices) / len(slices),
            p50_ms=statistics.median(f.p50_ms for f in slices),
            p99_ms=statistics.median(f.p99_ms for f in slices),
            requests=sum(f.requests for f in slices),
            errors=sum(f.errors for f in slices) + sum(f.errors for f in floor),
            floor_rps=sum(f.rps for f in floor) / len(floor),
            p99_slices=[f.p99_ms for f in slices],
        )
        for slices in own
    ]


def p99_ratio(many: EndpointFigures, few: EndpointFigures) -> float:
    """p99 of ``many`` over ``few``: the median of the ratios of slices taken side by side."""
    pairs = zip(many.p99_slices, few.p99_slices, strict=True)
    return statistics.median(a / b for a, b in pairs if b) if many.p99_slices else many.p99_ms / few.p99_ms


def run(database_url: str, *, tenants: int, duration: int = 30, connections: int = 16) -> ReadsResult:
    return run_side_by_side([(database_url, tenants)], duration=duration, connections=connections)[0]


def run_side_by_side(
    databases: list[tuple[str, int]], *, duration: int = 30, connections: int = 16
) -> list[ReadsResult]:
    """Serve each (database, tenants) from its own gunicorn at once and measure them slice by slice.

    The floor (``/healthz``) is measured on the first server; every other endpoint on
    all servers within the same slices (see ``_sliced``). One ReadsResult per database.
    """
    from contextlib import ExitStack

    tool = "wrk" if shutil.which("wrk") else "python"
    measure = _wrk if tool == "wrk" else _python_tool
    results = [ReadsResult(tenants=t, duration=duration, connections=connections, tool=tool) for _, t in databases]
    with ExitStack() as stack:
        servers = []
        for database_url, _ in databases:
            key, session = _credentials(database_url)
            base_url, server = stack.enter_context(production_server(database_url))
            servers.append((base_url, key, session, stack.enter_context(PeakRss(server.pid))))
        floor_url = f"{servers[0][0]}/healthz"
        for name, path, kind in ENDPOINTS:
            targets = []
            for result, (base_url, key, session, _) in zip(results, servers, strict=True):
                headers = _headers(kind, key, session)
                port = int(base_url.rsplit(":", 1)[1])
                status = _status(port, path, headers)
                if status == 200 and kind == "session":
                    headers = _with_csrf_cookie(port, path, headers)
                if status != 200:
                    if kind == "session":
                        break
                    raise SystemExit(f"GET {path} answered {status} at {result.tenants} tenants before the load run")
                targets.append((f"{base_url}{path}", headers))
            if len(targets) < len(servers):
                for result in results:
                    result.endpoints[name] = EndpointFigures(path=path, skipped="answers no 200 yet")
                continue
            for url, headers in targets:  # warm-up
                measure(url, headers, duration=1 if duration < 10 else 3, connections=connections)
            if name == "floor":
                figures = [measure(targets[0][0], {}, duration=duration, connections=connections)]
            else:
                figures = _sliced(measure, floor_url, targets, duration=duration, connections=connections)
            for result, endpoint in zip(results, figures, strict=False):
                endpoint.path = path
                result.endpoints[name] = endpoint
        for result, (*_, rss) in zip(results, servers, strict=True):
            result.web_peak_rss_mb = rss.peak_mb
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        url, headers, duration, connections = sys.argv[2], json.loads(sys.argv[3]), sys.argv[4], sys.argv[5]
        print(json.dumps(python_load(url, headers, duration=float(duration), connections=int(connections))))
        return
    url = os.environ["DATABASE_URL"]
    result = run(url, tenants=-1, duration=int(sys.argv[1]) if len(sys.argv) > 1 else 5)
    for name, figures in result.endpoints.items():
        print(name, figures, f"ratio {figures.floor_ratio:.2f}")
    print(f"web peak RSS {result.web_peak_rss_mb:.0f} MB ({result.tool})")


if __name__ == "__main__":
    main()
