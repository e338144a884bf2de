"""The Citus section: the same history on plain PostgreSQL and on a three-node Citus cluster
(deploy/citus/cluster.sh: a coordinator and two workers on this machine), side by side.

Measured on each: COPY into ``ops_events`` (distributed on Citus), HTTP ingest of the same events
(``POST /api/v1/events``, gunicorn), a full recompute and an incremental recompute of new events;
checked: rows = accepted with no duplicates, incremental == full rebuild on Citus, and Citus's
rollups and metrics equal plain PostgreSQL's. Three nodes sharing two cores measure correctness and
the distribution's overhead, not a speed-up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import ingest
from bench.common import (
    ANCHOR,
    BASE_DIR,
    BENCH_DB,
    OUT_DIR,
    base_database_url,
    database_drop,
    events_copy,
    events_csv,
    events_stored,
    events_tables_empty,
    manage,
    production_server,
    tenants_ensure,
    with_database,
)
from bench.recompute import digests, recompute_child

CLUSTER = BASE_DIR / "deploy" / "citus" / "cluster.sh"
# The bench starts its own cluster (its own port and scratch directory) and stops it afterwards,
# so it never measures, or disturbs, a developer's cluster on the default port.
CITUS_PORT = int(os.environ.get("BENCH_CITUS_PORT", "5460"))


def _cluster(*args: str) -> None:
    env = {**os.environ, "CITUS_PORT": str(CITUS_PORT), "CITUS_DIR": _CLUSTER_DIR}
    subprocess.run([str(CLUSTER), *args], check=True, capture_output=True, env=env)


_CLUSTER_DIR = ""


@dataclass
class ServerFigures:
    copy_seconds: float = 0.0
    http_seconds: float = 0.0
    http_accepted: int = 0
    rows: int = 0
    duplicate_rows: int = 0
    full_seconds: float = 0.0
    incremental_seconds: float = 0.0
    new_copy_seconds: float = 0.0
    incremental_equals_full: bool = False


@dataclass
class CitusResult:
    events: int
    new_events: int
    tenants: int
    plain: ServerFigures
    citus: ServerFigures
    equal_to_plain: bool


def _citus_database(name: str) -> str:
    """A fresh database on every node of the local cluster, migrated (and so distributed)."""
    import psycopg

    _cluster("start")
    for port in (CITUS_PORT, CITUS_PORT + 1, CITUS_PORT + 2):
        with psycopg.connect(f"postgres://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _cluster("start", name)
    url = f"postgres://postgres@127.0.0.1:{CITUS_PORT}/{name}"
    manage(["migrate", "--noinput", "-v", "0"], url)
    return url


def _plain_database(name: str) -> str:
    import psycopg

    base = base_database_url()
    with psycopg.connect(with_database(base, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    url = with_database(base, name)
    manage(["migrate", "--noinput", "-v", "0"], url)
    return url


def _drop_citus(name: str) -> None:
    import psycopg

    for port in (CITUS_PORT, CITUS_PORT + 1, CITUS_PORT + 2):
        with psycopg.connect(f"postgres://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _http(url: str, batches: Path, figures: ServerFigures) -> None:
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "1"}
    key = subprocess.run([sys.executable, "manage.py", "create_api_key", "bench-citus", "--scope", "ingest"],
                         cwd=BASE_DIR, env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]  # fmt: skip
    with production_server(url, workers=2, INGEST_RATE_LIMIT_PER_MINUTE="1000000") as (server_url, _):
        out = subprocess.run([sys.executable, ingest.__file__, "--send", server_url, key, str(batches), "4", "native"],
                             check=True, capture_output=True, text=True)  # fmt: skip
    sent = json.loads(out.stdout)
    if sent["errors"] or sent["rejected"]:
        raise SystemExit(f"citus bench: HTTP ingest lost batches: {sent}")
    figures.http_seconds = sent["seconds"]
    figures.http_accepted = sent["accepted"]


def _measure(url: str, *, ingest_inputs: dict[str, Path], history: Path, new: Path) -> ServerFigures:
    figures = ServerFigures()
    events_tables_empty(url)
    figures.copy_seconds = events_copy(url, ingest_inputs["csv"])
    events_tables_empty(url)
    _http(url, ingest_inputs["native"], figures)
    figures.rows, figures.duplicate_rows = events_stored(url)
    events_tables_empty(url)
    events_copy(url, history)
    tenants_ensure(url)
    figures.full_seconds = recompute_child(url, mode="full", now=ANCHOR).seconds
    figures.new_copy_seconds = events_copy(url, new)
    tenants_ensure(url)
    figures.incremental_seconds = recompute_child(url, mode="incremental", now=ANCHOR).seconds
    after_incremental = digests(url)
    recompute_child(url, mode="full", now=ANCHOR)
    figures.incremental_equals_full = digests(url) == after_incremental
    return figures


def run(*, events: int, new_events: int, tenants: int, ingest_events: int) -> CitusResult:
    global _CLUSTER_DIR
    _CLUSTER_DIR = tempfile.mkdtemp(prefix="opsconsole-bench-citus-")
    try:
        return _run(events=events, new_events=new_events, tenants=tenants, ingest_events=ingest_events)
    finally:
        _cluster("stop")
        shutil.rmtree(_CLUSTER_DIR, ignore_errors=True)


def _run(*, events: int, new_events: int, tenants: int, ingest_events: int) -> CitusResult:
    history = events_csv(count=events, tenants=tenants, seed=11, days=60, now=ANCHOR)
    new = events_csv(count=new_events, tenants=tenants, seed=12, days=2, now=ANCHOR)
    ingest_inputs = ingest.write_inputs(ingest_events, 13, OUT_DIR / "citus-ingest")[0]
    plain_name, citus_name = f"{BENCH_DB}_plain", f"{BENCH_DB}_citus"
    plain_url = _plain_database(plain_name)
    citus_url = _citus_database(citus_name)
    try:
        plain = _measure(plain_url, ingest_inputs=ingest_inputs, history=history, new=new)
        citus = _measure(citus_url, ingest_inputs=ingest_inputs, history=history, new=new)
        equal = digests(plain_url) == digests(citus_url)
    finally:
        database_drop(base_database_url(), plain_name)
        _drop_citus(citus_name)
    return CitusResult(events, new_events, tenants, plain, citus, equal)


def rows(result: CitusResult, ingest_events: int) -> list[tuple[str, str, str]]:
    p, c = result.plain, result.citus
    rate = lambda n, s: n / s if s else 0.0  # noqa: E731
    return [
        (f"Citus (3 nodes on this box): COPY of {ingest_events:,} events into distributed `ops_events` / plain",
         f"{rate(ingest_events, c.copy_seconds):,.0f} / {rate(ingest_events, p.copy_seconds):,.0f} events/s",
         f"{p.copy_seconds / c.copy_seconds:.2f} of plain"),
        ("Citus: HTTP `POST /api/v1/events` (gunicorn 2 workers, batches of 500, 4 connections)",
         f"{rate(c.http_accepted, c.http_seconds):,.0f} events/s",
         f"{c.copy_seconds / c.http_seconds:.2f} of COPY into the cluster (plain: {p.copy_seconds / p.http_seconds:.2f})"),
        ("Citus: rows stored = events accepted, duplicates", f"{c.rows:,} = {c.http_accepted:,}, {c.duplicate_rows}", ""),
        (f"Citus: `recompute_metrics --full` ({result.events:,} events, {result.tenants:,} tenants) / plain",
         f"{c.full_seconds:.2f} s / {p.full_seconds:.2f} s", f"{c.full_seconds / p.full_seconds:.2f}x plain"),
        (f"Citus: incremental recompute of {result.new_events:,} new events / their COPY into the cluster",
         f"{c.incremental_seconds:.2f} s / {c.new_copy_seconds:.2f} s",
         f"{c.incremental_seconds / c.new_copy_seconds:.2f}x the COPY (plain: {p.incremental_seconds / p.new_copy_seconds:.2f}x)"),
        ("Citus: incremental == full rebuild; rollups and metrics == plain PostgreSQL's",
         f"{'yes' if c.incremental_equals_full else 'NO'}; {'yes' if result.equal_to_plain else 'NO'}", ""),
    ]  # fmt: skip


def failures(result: CitusResult) -> list[str]:
    out = []
    c = result.citus
    if not (c.rows == c.http_accepted and c.duplicate_rows == 0):
        out.append(f"citus: rows {c.rows} != accepted {c.http_accepted} or duplicates {c.duplicate_rows}")
    if not c.incremental_equals_full:
        out.append("citus: incremental != full rebuild")
    if not result.equal_to_plain:
        out.append("citus: rollups or metrics differ from plain PostgreSQL's")
    return out
