"""The Citus section: the same history on plain PostgreSQL and on a three-node Citus cluster
(deploy/citus/cluster.sh: a coordinator and two workers on this machine), side by side.

Measured on each: COPY into ``ops_events`` (distributed on Citus), HTTP ingest of the same events
(``POST /api/v1/events``, gunicorn), a full recompute and an incremental recompute of new events;
checked: rows = accepted with no duplicates, incremental == full rebuild on Citus, and Citus's
rollups and metrics equal plain PostgreSQL's. Three nodes sharing two cores measure correctness and
the distribution's overhead, not a speed-up. The ingest and the incremental recompute run in
``ROUNDS`` side-by-side rounds, each against the COPY of its own events just before it (the
machine's speed moves from minute to minute); their ratios are the median of the rounds'.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psutil

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
    scratch_database,
    tenants_ensure,
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
    """One database's figures; the lists hold one entry per side-by-side round."""

    copy_seconds: list[float] = field(default_factory=list)
    http_seconds: list[float] = field(default_factory=list)
    http_events: list[int] = field(default_factory=list)
    http_accepted: int = 0
    web_workers: int = 0
    rows: int = 0
    duplicate_rows: int = 0
    full_seconds: float = 0.0
    incremental_seconds: list[float] = field(default_factory=list)
    new_copy_seconds: list[float] = field(default_factory=list)
    incremental_equals_full: bool = False

    @property
    def http_ratios(self) -> list[float]:
        """Each round's HTTP rate over the COPY of the same events in the same round."""
        return [c / h for c, h in zip(self.copy_seconds, self.http_seconds, strict=True)]

    @property
    def incremental_ratios(self) -> list[float]:
        """Each round's incremental recompute over the COPY of the events it folds."""
        return [i / c for i, c in zip(self.incremental_seconds, self.new_copy_seconds, strict=True)]


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


def _drop_citus(name: str) -> None:
    import psycopg

    for port in (CITUS_PORT, CITUS_PORT + 1, CITUS_PORT + 2):
        with psycopg.connect(f"postgres://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _send(server_url: str, key: str, batches: Path, connections: int = 4) -> dict[str, float]:
    out = subprocess.run([sys.executable, ingest.__file__, "--send", server_url, key, str(batches), str(connections), "native"],
                         check=True, capture_output=True, text=True)  # fmt: skip
    sent = json.loads(out.stdout)
    if sent["errors"] or sent["rejected"]:
        raise SystemExit(f"citus bench: HTTP ingest lost batches: {sent}")
    return sent


def _ingest_rounds(url: str, rounds: list[dict[str, Path]], figures: ServerFigures) -> None:
    """COPY, then HTTP, of each round's events into the emptied table, side by side: the machine's
    speed moves from minute to minute, so each HTTP round is compared with its own COPY."""
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "1"}
    key = subprocess.run([sys.executable, "manage.py", "create_api_key", "bench-citus", "--scope", "ingest"],
                         cwd=BASE_DIR, env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]  # fmt: skip
    # gunicorn as docs/DEPLOY.md runs it, as the plain ingest rows measure it (bench/ingest.py).
    with production_server(url, workers=None, deployed=True, INGEST_RATE_LIMIT_PER_MINUTE="1000000") as (
        server_url,
        server,
    ):
        # Each web worker imports the whole project on its first request: not the endpoint's throughput.
        warm = OUT_DIR / "citus-ingest" / "warm.jsonl"
        warm.write_bytes(b"\n".join(rounds[0]["native"].read_bytes().splitlines()[:16]) + b"\n")
        _send(server_url, key, warm, connections=10)
        figures.web_workers = len(psutil.Process(server.pid).children())
        for files in rounds:
            events = sum(1 for _ in open(files["csv"], "rb"))
            events_tables_empty(url)
            figures.copy_seconds.append(events_copy(url, files["csv"]))
            events_tables_empty(url)
            sent = _send(server_url, key, files["native"])
            figures.http_seconds.append(sent["seconds"])
            figures.http_events.append(events)
            figures.http_accepted += int(sent["accepted"])
            rows, dupes = events_stored(url)
            figures.rows += rows
            figures.duplicate_rows += dupes


def _measure(url: str, *, ingest_inputs: list[dict[str, Path]], history: Path, new: list[Path]) -> ServerFigures:
    figures = ServerFigures()
    _ingest_rounds(url, ingest_inputs, figures)
    events_tables_empty(url)
    events_copy(url, history)
    tenants_ensure(url)
    figures.full_seconds = recompute_child(url, mode="full", now=ANCHOR).seconds
    # Rounds of new events, each COPYed and then folded by an incremental run, side by side.
    for batch in new:
        figures.new_copy_seconds.append(events_copy(url, batch))
        tenants_ensure(url)
        figures.incremental_seconds.append(recompute_child(url, mode="incremental", now=ANCHOR).seconds)
    after_incremental = digests(url)
    recompute_child(url, mode="full", now=ANCHOR)
    figures.incremental_equals_full = digests(url) == after_incremental
    return figures


ROUNDS = 3


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
    new = [events_csv(count=new_events, tenants=tenants, seed=12 + r, days=2, now=ANCHOR) for r in range(ROUNDS)]
    ingest_inputs = ingest.write_inputs(
        ingest_events, 13, OUT_DIR / "citus-ingest", rounds=ROUNDS, kinds=("csv", "native")
    )
    plain_name, citus_name = f"{BENCH_DB}_plain", f"{BENCH_DB}_citus"
    plain_url = scratch_database(base_database_url(), plain_name)
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
    median = statistics.median
    rounds = lambda values: ", ".join(f"{v:.2f}" for v in values)  # noqa: E731
    copy_rate = lambda f: sum(f.http_events) / sum(f.copy_seconds)  # noqa: E731
    return [
        (f"Citus (3 nodes on this box): COPY of {ingest_events:,} events into distributed `ops_events` / plain",
         f"{copy_rate(c):,.0f} / {copy_rate(p):,.0f} events/s", f"{sum(p.copy_seconds) / sum(c.copy_seconds):.2f} of plain"),
        (f"Citus: HTTP `POST /api/v1/events` (gunicorn as deployed: {c.web_workers} sync workers; batches of 500, "
         f"4 connections; {len(c.http_ratios)} rounds of a third)",
         f"{sum(c.http_events) / sum(c.http_seconds):,.0f} events/s",
         f"{median(c.http_ratios):.2f} of COPY into the cluster (target ≥ 0.5; median of side-by-side rounds: {rounds(c.http_ratios)}; "
         f"plain: {median(p.http_ratios):.2f})"),
        ("Citus: rows stored = events accepted, duplicates", f"{c.rows:,} = {c.http_accepted:,}, {c.duplicate_rows}", ""),
        (f"Citus: `recompute_metrics --full` ({result.events:,} events, {result.tenants:,} tenants) / plain",
         f"{c.full_seconds:.2f} s / {p.full_seconds:.2f} s", f"{c.full_seconds / p.full_seconds:.2f}x plain"),
        (f"Citus: incremental recompute of {result.new_events:,} new events / their COPY into the cluster",
         f"{median(c.incremental_seconds):.2f} s / {median(c.new_copy_seconds):.2f} s",
         f"{median(c.incremental_ratios):.2f}x the COPY (target ≤ 2; median of {len(c.incremental_ratios)} rounds: "
         f"{rounds(c.incremental_ratios)}; plain: {median(p.incremental_ratios):.2f}x)"),
        ("Citus: incremental == full rebuild; rollups and metrics == plain PostgreSQL's",
         f"{'yes' if c.incremental_equals_full else 'NO'}; {'yes' if result.equal_to_plain else 'NO'}", ""),
    ]  # fmt: skip


def failures(result: CitusResult) -> list[str]:
    out = []
    c = result.citus
    if not (c.rows == c.http_accepted == sum(c.http_events) and c.duplicate_rows == 0):
        out.append(f"citus: rows {c.rows} != accepted {c.http_accepted} or duplicates {c.duplicate_rows}")
    if not c.incremental_equals_full:
        out.append("citus: incremental != full rebuild")
    if not result.equal_to_plain:
        out.append("citus: rollups or metrics differ from plain PostgreSQL's")
    return out
