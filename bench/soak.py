"""Soak: ingestion at half the measured maximum for ten minutes with the recompute running.

1. A scratch database of its own (dropped at the end), gunicorn with production settings: by
   default the shipped stack, deploy/gunicorn.conf.py behind nginx with deploy/nginx/opsconsole-proxy.conf,
   slow clients trickling request bodies to the proxy while /metrics is scraped through it
   (``--direct``: gunicorn alone, gthread workers, no slow clients, as the project first deployed).
2. Measure the maximum: unpaced senders for ``--measure-seconds``; the soak rate
   is half of it (or ``--rate`` events/s).
3. Soak for ``--duration`` seconds (default 600) at that rate while a loop runs
   ``manage.py recompute_metrics`` back to back (the beat task's service).
   Failed requests are resent with the same event ids, as the emitter does.
4. Check: rows stored = distinct event ids sent (nothing lost, no duplicates);
   the rollups after a last recompute count every real event and equal a full
   rebuild; the web workers' RSS at the start and end of the soak (growth).

Run: ``python bench/soak.py [--duration 600] [--rate N]``; exits non-zero when a
check fails. ``bench/run.py`` can call ``soak.run(SoakPlan(duration=...))``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BASE_DIR,
    base_database_url,
    database_drop,
    free_port,
    port_wait,
    production_env,
    scratch_database,
)
from bench.soak_sender import Sender, SendTotals
from core.rows import row_as_dict, value_of
from tests.proxy import nginx_proxy, scrapes_while_slow_clients_trickle

# Per process, so two soaks (or a soak beside the bench) never drop each other's database.
SOAK_DB_PREFIX = "opsconsole_soak"


@dataclass(frozen=True)
class SoakPlan:
    """What a soak runs; the command line's defaults are these."""

    duration: float = 600.0  # seconds of soak
    rate: float | None = None  # events/s; None: half the measured maximum
    measure_seconds: float = 20.0  # of unpaced sending, to measure that maximum
    senders: int = 4
    workers: int = 2  # gunicorn workers
    batch: int = 200  # events per request
    recompute_pause: float = 5.0  # seconds between recomputes
    through_proxy: bool = True  # the shipped stack (nginx in front, slow clients beside); False: gunicorn alone


@dataclass
class SoakResult:
    duration_seconds: float
    measured_max_rate: float | None
    target_rate: float
    achieved_rate: float
    totals: SendTotals
    rows: int
    distinct_event_ids: int
    real_tenant_events: int
    rollup_events: int
    cache_equals_full_rebuild: bool
    recomputes: int
    recompute_skips: int
    recompute_max_seconds: float
    rss_start_mb: float
    rss_end_mb: float
    rss_peak_mb: float
    worker_pids_changed: bool
    through_proxy: bool = False
    slow_client_scrapes: int = 0
    slow_client_scrape_failures: list[str] = field(default_factory=list)

    @property
    def rss_growth_pct(self) -> float:
        return 100.0 * (self.rss_end_mb - self.rss_start_mb) / self.rss_start_mb if self.rss_start_mb else 0.0

    def problems(self, *, max_rss_growth_pct: float = 25.0) -> list[str]:
        found = []
        if self.totals.gave_up:
            found.append(f"{self.totals.gave_up} batches were never accepted")
        if not (self.rows == self.distinct_event_ids == self.totals.sent):
            found.append(f"rows {self.rows}, distinct {self.distinct_event_ids}, sent {self.totals.sent}")
        if self.totals.accepted + self.totals.duplicates + self.totals.rejected != self.totals.sent:
            found.append("receipts do not add up to the events sent")
        if self.totals.rejected:
            found.append(f"{self.totals.rejected} valid events were rejected")
        if self.rollup_events != self.real_tenant_events:
            found.append(f"rollups count {self.rollup_events} events, the table holds {self.real_tenant_events}")
        if not self.cache_equals_full_rebuild:
            found.append("the incremental rollups differ from a full rebuild")
        if self.recomputes == 0:
            found.append("no recompute ran during the soak")
        if self.through_proxy and (self.slow_client_scrape_failures or not self.slow_client_scrapes):
            found.append(
                f"/metrics through the proxy beside slow clients: {self.slow_client_scrapes} answered, "
                f"failed: {self.slow_client_scrape_failures[:3]}"
            )
        if self.rss_growth_pct > max_rss_growth_pct:
            found.append(f"web worker RSS grew {self.rss_growth_pct:.0f}% (limit {max_rss_growth_pct:.0f}%)")
        return found


# --- Processes ---------------------------------------------------------------------------------
def _manage(args: list[str], database_url: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "1", "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, check=True, capture_output=True, text=True
    ).stdout


class RecomputeLoop(threading.Thread):
    """``manage.py recompute_metrics`` back to back, ``pause`` seconds apart: the beat task's work."""

    def __init__(self, database_url: str, pause: float) -> None:
        super().__init__(daemon=True)
        self.database_url, self.pause = database_url, pause
        self.stop = threading.Event()
        self.runs = self.skips = 0
        self.max_seconds = 0.0
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                out = _manage(["recompute_metrics"], self.database_url)
            except subprocess.CalledProcessError as exc:
                self.failures.append(exc.stderr[-500:])
            else:
                self.runs += 1
                self.skips += out.startswith("skipped")
                match = re.search(r"in ([0-9.]+)s", out)
                if match:
                    self.max_seconds = max(self.max_seconds, float(match.group(1)))
            self.stop.wait(self.pause)


def _workers_rss(server: subprocess.Popen[bytes]) -> dict[int, float]:
    import psutil

    result = {}
    for child in psutil.Process(server.pid).children():
        try:
            result[child.pid] = child.memory_info().rss / 1024 / 1024
        except psutil.Error:
            pass
    return result


def _rollup_snapshot(conn: object) -> list[tuple[object, ...]]:
    return conn.execute(  # type: ignore[attr-defined]
        "SELECT tenant_id, event_type, day, value FROM ops_rollup_tenant_day ORDER BY 1, 2, 3"
    ).fetchall()


def run(plan: SoakPlan = SoakPlan(), *, log: object = print) -> SoakResult:
    name = f"{SOAK_DB_PREFIX}_{os.getpid()}"
    try:
        return _soak_in(plan, scratch_database(base_database_url(), name), log=log)
    finally:
        database_drop(base_database_url(), name)


def _soak_in(plan: SoakPlan, database_url: str, *, log: object) -> SoakResult:
    key = _manage(["create_api_key", "soak", "--scope", "ingest"], database_url).strip().splitlines()[-1]
    port = free_port()
    production = {**production_env(database_url), "SECURE_SSL_REDIRECT": "0", "INGEST_RATE_LIMIT_PER_MINUTE": "0"}
    if plan.through_proxy:
        # The shipped configuration; its sync workers sit behind nginx, which absorbs slow clients.
        production |= {
            "GUNICORN_WORKERS": str(plan.workers),
            "GUNICORN_ACCESS_LOG": "/dev/null",
            "GUNICORN_LOG_LEVEL": "warning",
        }
        argv = [sys.executable, "-m", "gunicorn", "-c", str(BASE_DIR / "deploy" / "gunicorn.conf.py"),
                "-b", f"127.0.0.1:{port}"]  # fmt: skip
    else:
        argv = [sys.executable, "-m", "gunicorn", "opsconsole.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(plan.workers),
                "--worker-class", "gthread", "--threads", "4", "--log-level", "warning"]  # fmt: skip
    server = subprocess.Popen(argv, cwd=BASE_DIR, env=production)
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(nginx_proxy(port)) if plan.through_proxy else f"http://127.0.0.1:{port}"
        log(
            f"soak target: {url} ({'nginx -> gunicorn, slow clients beside' if plan.through_proxy else 'gunicorn alone'})"
        )
        return _soak(plan, server=server, port=port, url=url, key=key, database_url=database_url, log=log)


# The measuring probe's event ids: a probe request a loaded server still held when the probe ended
# (its client had timed out and resent it) can land after the table is emptied; the soak's own
# counts leave such rows out.
PROBE_ID_PREFIX = "00000000-0000-"


def _maximum_measured(
    url: str, key: str, *, senders: int, batch: int, seconds: float, database_url: str, log: Callable[[str], None]
) -> float:
    """The accepted events/s of senders sending as fast as they can; the table is emptied after."""
    import psycopg

    probe = Sender(url, key, senders=senders, batch=batch, seed=2, id_prefix=PROBE_ID_PREFIX)
    elapsed = probe.run(seconds=seconds, rate=None)
    measured = probe.totals.accepted / elapsed
    log(f"measured maximum {measured:,.0f} events/s over {elapsed:.0f} s; soaking at {measured / 2:,.0f} events/s")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE ops_events")  # the soak's counts start from zero
    return measured


def _stored_after(database_url: str) -> tuple[int, int, int, int, bool]:
    """After the soak: rows stored, distinct event ids, real tenant events, events in the rollups, and
    whether the incremental rollups equal a full rebuild's."""
    import psycopg

    _manage(["recompute_metrics"], database_url)  # fold what the last loop run had not seen
    with psycopg.connect(database_url, autocommit=True) as conn:
        counted = row_as_dict(
            conn.execute(
                "SELECT count(*) AS n, count(DISTINCT event_id) AS distinct_ids FROM ops_events"
                " WHERE event_id::text NOT LIKE %s",
                [PROBE_ID_PREFIX + "%"],
            )
        )
        rows, distinct = counted["n"], counted["distinct_ids"]
        real = value_of(conn.execute("SELECT count(*) AS n FROM ops_events WHERE is_real AND tenant_id <> ''"), "n")
        rollup = value_of(conn.execute("SELECT coalesce(sum(value), 0) AS n FROM ops_rollup_tenant_day"), "n")
        incremental = _rollup_snapshot(conn)
        _manage(["recompute_metrics", "--full"], database_url)
        equal = incremental == _rollup_snapshot(conn)
    return rows, distinct, real, int(rollup), equal


def _rss_peak_sampled(server: subprocess.Popen[bytes], done: threading.Event, *, start_mb: float) -> list[float]:
    """The workers' summed RSS, sampled every second until ``done``: its peak so far is the list's one item."""
    peak = [start_mb]

    def sample() -> None:
        while not done.wait(1.0):
            peak[0] = max(peak[0], sum(_workers_rss(server).values()))

    threading.Thread(target=sample, daemon=True).start()
    return peak


def _slow_clients_started(url: str, done: threading.Event, scrapes: list[str]) -> threading.Thread:
    """Rounds of slow bodies to the proxy until ``done``, /metrics scraped through it all along (each
    scrape's outcome appended to ``scrapes``)."""
    proxy_port = int(url.rsplit(":", 1)[1])

    def slow_clients() -> None:
        while not done.is_set():
            scrapes.extend(scrapes_while_slow_clients_trickle(url + "/metrics", proxy_port))

    trickler = threading.Thread(target=slow_clients, daemon=True)
    trickler.start()
    return trickler


def _soak(
    plan: SoakPlan, *, server: subprocess.Popen[bytes], port: int, url: str, key: str, database_url: str, log: object
) -> SoakResult:
    senders, batch, rate = plan.senders, plan.batch, plan.rate
    loop = RecomputeLoop(database_url, plan.recompute_pause)
    scrapes: list[str] = []
    try:
        port_wait(port, seconds=20)
        measured = None
        if rate is None:
            measured = _maximum_measured(
                url, key, senders=senders, batch=batch, seconds=plan.measure_seconds, database_url=database_url, log=log
            )
            rate = measured / 2
        rss_start = _workers_rss(server)
        loop.start()
        sender = Sender(url, key, senders=senders, batch=batch, seed=3)
        done = threading.Event()
        peak = _rss_peak_sampled(server, done, start_mb=sum(rss_start.values()))
        trickler = _slow_clients_started(url, done, scrapes) if plan.through_proxy else None
        elapsed = sender.run(seconds=plan.duration, rate=rate)
        done.set()
        if trickler is not None:
            trickler.join(timeout=60)
        rss_end = _workers_rss(server)
        loop.stop.set()
        loop.join(timeout=600)
        if loop.failures:
            raise SystemExit(f"a recompute failed during the soak: {loop.failures[0]}")
    finally:
        loop.stop.set()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    rows, distinct, real, rollup, equal = _stored_after(database_url)
    return SoakResult(
        duration_seconds=elapsed,
        measured_max_rate=measured,
        target_rate=rate,
        achieved_rate=sender.totals.sent / elapsed,
        totals=sender.totals,
        rows=rows,
        distinct_event_ids=distinct,
        real_tenant_events=real,
        rollup_events=rollup,
        cache_equals_full_rebuild=equal,
        recomputes=loop.runs,
        recompute_skips=loop.skips,
        recompute_max_seconds=loop.max_seconds,
        rss_start_mb=sum(rss_start.values()),
        rss_end_mb=sum(rss_end.values()),
        rss_peak_mb=peak[0],
        worker_pids_changed=set(rss_start) != set(rss_end),
        through_proxy=plan.through_proxy,
        slow_client_scrapes=scrapes.count("200"),
        slow_client_scrape_failures=[outcome for outcome in scrapes if outcome != "200"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = SoakPlan()
    parser.add_argument("--duration", type=float, default=default.duration, help="soak seconds (default 600)")
    parser.add_argument(
        "--rate", type=float, default=default.rate, help="events/s (default: half the measured maximum)"
    )
    parser.add_argument("--measure-seconds", type=float, default=default.measure_seconds)
    parser.add_argument("--senders", type=int, default=default.senders)
    parser.add_argument("--workers", type=int, default=default.workers, help="gunicorn workers")
    parser.add_argument("--batch", type=int, default=default.batch, help="events per request")
    parser.add_argument(
        "--recompute-pause", type=float, default=default.recompute_pause, help="seconds between recomputes"
    )
    parser.add_argument("--max-rss-growth-pct", type=float, default=25.0)
    parser.add_argument(
        "--direct", action="store_true", help="gunicorn alone (gthread), no proxy and no slow clients (the old soak)"
    )
    args = parser.parse_args()
    # Every option named like a field of the plan is that field; --direct is the one said the other way round.
    given = {f.name: getattr(args, f.name) for f in fields(SoakPlan) if f.name != "through_proxy"}
    result = run(SoakPlan(**given, through_proxy=not args.direct))
    summary = asdict(result) | {"rss_growth_pct": round(result.rss_growth_pct, 1)}
    print(json.dumps(summary, indent=2, default=str))
    problems = result.problems(max_rss_growth_pct=args.max_rss_growth_pct)
    if problems:
        raise SystemExit("soak failed: " + "; ".join(problems))
    print(
        f"soak ok: {result.totals.sent:,} events in {result.duration_seconds:.0f} s "
        f"({result.achieved_rate:,.0f}/s), all stored once; {result.recomputes} recomputes; "
        f"web RSS {result.rss_start_mb:.0f} -> {result.rss_end_mb:.0f} MB"
        + (
            f"; /metrics answered {result.slow_client_scrapes} scrapes beside slow clients"
            if result.through_proxy
            else ""
        )
    )


if __name__ == "__main__":
    main()
