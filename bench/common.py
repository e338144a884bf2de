"""Shared pieces of the benchmark harness: a scratch database, the seeded
event generator, and the machine description for BENCHMARKS.md."""

from __future__ import annotations

import ast
import hashlib
import itertools
import os
import platform
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from core.rows import row_as_dict, rows_as_dicts, value_of, values_of

BASE_DIR = Path(__file__).resolve().parent.parent
OUT_DIR = BASE_DIR / "bench" / "out"
# Scratch databases are named after this (override to run beside another checkout's bench).
BENCH_DB = os.environ.get("BENCH_DATABASE_NAME", "opsconsole_bench")
# Generated history ends here (not at the wall clock), so a cached CSV stays valid across days;
# the recompute runs are given ``now`` explicitly.
ANCHOR = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
COPY_COLUMNS = (
    "event_id, tenant_id, user_id, session_id, event_type, occurred_at, received_at, metadata, friction_signal, "
    "is_real, exclusion_reason"
)
FRICTION_SIGNALS = {
    "REPLAY_ABORTED": "friction", "EXPORT_ABORTED": "friction", "POLICY_BLOCK_REPEAT": "friction",
    "SESSION_IDLE_TIMEOUT": "friction", "INCIDENT_VIEWED_NO_ACTION": "hesitation", "REPLAY_STARTED": "intent",
    "EXPORT_STARTED": "intent", "SESSION_STARTED": "engagement", "SESSION_ENDED": "engagement",
}  # fmt: skip

# Weighted event mix: mostly value and engagement, some friction in bursts.
EVENT_MIX = [
    ("INCIDENT_VIEWED", 30), ("REPLAY_STARTED", 10), ("REPLAY_COMPLETED", 8), ("EXPORT_STARTED", 5),
    ("EXPORT_COMPLETED", 4), ("LOGIN", 6), ("SESSION_STARTED", 6), ("SESSION_ENDED", 5), ("API_CALL", 20),
    ("CORE_ACTION", 4), ("REPLAY_ABORTED", 1), ("EXPORT_ABORTED", 1), ("POLICY_BLOCK_REPEAT", 1),
    ("SESSION_IDLE_TIMEOUT", 1), ("INCIDENT_VIEWED_NO_ACTION", 1),
]  # fmt: skip


def base_database_url() -> str:
    """The server to benchmark against: DATABASE_URL, or the embedded one."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    sys.path.insert(0, str(BASE_DIR))
    from opsconsole.embedded_db import embedded_database_url

    return embedded_database_url(BASE_DIR / "var")


def with_database(url: str, name: str) -> str:
    parsed = urlparse(url)
    return urlunparse(parsed._replace(path="/" + name))


def scratch_database(url: str, name: str = BENCH_DB, *, template: str | None = None) -> str:
    """Drop and recreate a bench database (migrated, or copied from ``template``); return its URL."""
    import psycopg

    admin_url = with_database(url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    bench_url = with_database(url, name)
    manage(["migrate", "--noinput", "-v", "0"], bench_url)
    return bench_url


def database_drop(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _schema_key() -> str:
    """Changes whenever an events migration (the shape of ops_events) is added or its code changes.

    Read as syntax without comments and docstrings, so rewording a migration keeps the 10,000,000-event
    templates. Other apps' new migrations are applied to each copy instead (``scratch_database``).
    """
    digest = hashlib.sha256()
    for path in sorted(BASE_DIR.glob("events/migrations/0*.py")):
        digest.update(path.name.encode() + ast.dump(_without_docstrings(ast.parse(path.read_text()))).encode())
    return digest.hexdigest()[:16]


def _without_docstrings(tree: ast.Module) -> ast.Module:
    """The tree with every module, class and function docstring taken out."""
    for node in ast.walk(tree):
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and ast.get_docstring(node, clean=False) is not None
        ):
            node.body = node.body[1:] or [ast.Pass()]
    return tree


HISTORY_DAYS = 60  # the default history: every event inside the metrics' 60-day windows


def history_database(url: str, *, count: int, tenants: int, seed: int = 1, days: int = HISTORY_DAYS) -> str:
    """Name of a database holding ``count`` generated events over ``days`` (and their tenants), built once and cached.

    The bench copies it (CREATE DATABASE ... TEMPLATE) for each run, so the slow
    part (generating and loading 10M events) happens once per size and schema.
    """
    import psycopg

    span = "" if days == HISTORY_DAYS else f"_d{days}"
    name = f"{BENCH_DB}_h{count}_t{tenants}_s{seed}{span}"
    key = f"{_schema_key()}:{count}:{tenants}:{seed}{span}"
    admin_url = with_database(url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        notes = values_of(
            conn.execute(
                "SELECT shobj_description(oid, 'pg_database') AS note FROM pg_database WHERE datname = %s", [name]
            ),
            "note",
        )
    if notes and notes[0] == key:
        return name
    csv_path = events_csv(count=count, tenants=tenants, seed=seed, days=days, now=ANCHOR)
    db_url = scratch_database(url, name)
    events_bulk_load(db_url, csv_path)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"COMMENT ON DATABASE {name} IS '{key}'")
    return name


def events_csv(*, count: int, tenants: int, seed: int, days: int, now: datetime) -> Path:
    """The generated events as CSV in COPY's column order, cached under bench/out/ by its parameters."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"events-n{count}-t{tenants}-s{seed}-d{days}-{now:%Y%m%dT%H%M}.csv"
    if path.exists():
        return path
    partial = path.with_suffix(".partial")
    received = now.isoformat()
    metadata = '"{""user_agent"": ""Mozilla/5.0 (X11; Linux x86_64)""}"'
    with open(partial, "w") as out:
        lines: list[str] = []
        for e in generate_events(count=count, tenants=tenants, days=days, seed=seed, now=now):
            signal = FRICTION_SIGNALS.get(e.event_type, "")
            lines.append(
                f"{e.event_id},{e.tenant_id},{e.user_id},{e.session_id},{e.event_type},"
                f"{e.occurred_at.isoformat()},{received},{metadata},{signal},t,\n"
            )
            if len(lines) >= 50_000:
                out.write("".join(lines))
                lines = []
        out.write("".join(lines))
    partial.rename(path)
    return path


def events_copy(database_url: str, csv_path: Path) -> float:
    """``psql \\copy`` the CSV into ops_events (psycopg's COPY without psql); returns seconds."""
    import shutil
    import time

    options = "FORMAT csv, FORCE_NOT_NULL (tenant_id, user_id, session_id, friction_signal, exclusion_reason)"
    psql = shutil.which("psql")
    started = time.perf_counter()
    if psql:
        subprocess.run(
            [psql, database_url, "-q", "-c", f"\\copy ops_events ({COPY_COLUMNS}) FROM '{csv_path}' WITH ({options})"],
            check=True,
        )
    else:
        import psycopg

        with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
            with cursor.copy(f"COPY ops_events ({COPY_COLUMNS}) FROM STDIN WITH ({options})") as copy:
                with open(csv_path, "rb") as f:
                    while chunk := f.read(1 << 20):
                        copy.write(chunk)
    return time.perf_counter() - started


def events_tables_empty(database_url: str) -> None:
    """Empty what ingest writes, and checkpoint: every timed round starts from the same empty tables."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE ops_events, ops_real_users, ops_user_accounts, events_importrun")
        conn.execute("CHECKPOINT")


def events_stored(database_url: str) -> tuple[int, int]:
    """Rows in ops_events and how many repeat an event id (every generated event has its own id)."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = row_as_dict(
            conn.execute("SELECT count(*) AS n, count(*) - count(DISTINCT event_id) AS duplicates FROM ops_events")
        )
    return int(row["n"]), int(row["duplicates"])


def tenants_ensure(database_url: str, tenants: int = 0) -> None:
    """Create the tenants the loaded events name (ingestion does this on first sight), and all
    ``tenants`` generated names: the skew leaves some without events, as churned accounts are."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO customers_tenant (tenant_id, name, kind, first_seen_at, notes)"
            " SELECT 't' || lpad(i::text, 5, '0'), '', 'customer', %s, '' FROM generate_series(0, %s - 1) i"
            " ON CONFLICT DO NOTHING",
            [ANCHOR - timedelta(days=90), tenants],
        )
        conn.execute(
            "INSERT INTO customers_tenant (tenant_id, name, kind, first_seen_at, notes)"
            " SELECT tenant_id, '', 'customer', min(occurred_at), '' FROM ops_events WHERE tenant_id <> ''"
            " GROUP BY tenant_id ON CONFLICT DO NOTHING"
        )


def events_bulk_load(database_url: str, csv_path: Path) -> None:
    """Load history fast (not measured): drop ops_events' indexes, COPY, rebuild them, VACUUM ANALYZE."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        constraints = rows_as_dicts(
            conn.execute(
                "SELECT conname AS name, pg_get_constraintdef(oid) AS definition FROM pg_constraint"
                " WHERE conrelid = 'ops_events'::regclass AND contype IN ('u', 'p')"
            )
        )
        indexes = rows_as_dicts(
            conn.execute(
                "SELECT i.indexname AS name, i.indexdef AS definition FROM pg_indexes i WHERE i.tablename = 'ops_events'"
                " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
            )
        )
        for index in indexes:
            conn.execute(f'DROP INDEX "{index["name"]}"')
        for constraint in constraints:
            conn.execute(f'ALTER TABLE ops_events DROP CONSTRAINT "{constraint["name"]}"')
    events_copy(database_url, csv_path)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        for constraint in constraints:
            conn.execute(f'ALTER TABLE ops_events ADD CONSTRAINT "{constraint["name"]}" {constraint["definition"]}')
        for index in indexes:
            conn.execute(index["definition"])
        conn.execute("VACUUM ANALYZE ops_events")
    tenants_ensure(database_url)


def manage(args: list[str], database_url: str, **env: str) -> None:
    environment = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "1", **env}
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=environment, check=True)


@dataclass
class GeneratedEvent:
    event_id: str
    tenant_id: str
    user_id: str
    session_id: str
    event_type: str
    occurred_at: datetime


def tenant_sizes(tenants: int, rng: random.Random) -> list[float]:
    """Zipf-like skew: a few large tenants, many small ones."""
    return [1.0 / (rank + 1) ** 1.1 * rng.uniform(0.8, 1.2) for rank in range(tenants)]


def generate_events(*, count: int, tenants: int, days: int, seed: int, now: datetime) -> Iterator[GeneratedEvent]:
    """A seeded stream of events with sessions and friction bursts."""
    rng = random.Random(seed)
    # Cumulative weights once: rng.choices(population, weights) would rebuild them on every
    # call, O(tenants) per session (the same draws, 10x slower at 10,000 tenants).
    tenant_cum = list(itertools.accumulate(tenant_sizes(tenants, rng)))
    names = [f"t{index:05d}" for index in range(tenants)]
    types = [name for name, _ in EVENT_MIX]
    type_cum = list(itertools.accumulate(weight for _, weight in EVENT_MIX))
    produced = 0
    span = days * 86400
    while produced < count:
        tenant = rng.choices(names, cum_weights=tenant_cum)[0]
        session_length = rng.randint(3, 25)
        start = now - timedelta(seconds=rng.uniform(60, span))
        user = f"{tenant}-u{rng.randint(0, 20)}"
        session = uuid.UUID(int=rng.getrandbits(128), version=4).hex[:16]
        burst = rng.random() < 0.05  # a friction burst: repeated aborts in one session
        for step in range(min(session_length, count - produced)):
            event_type = (
                rng.choice(["REPLAY_ABORTED", "EXPORT_ABORTED", "POLICY_BLOCK_REPEAT"])
                if burst
                else rng.choices(types, cum_weights=type_cum)[0]
            )
            yield GeneratedEvent(
                event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                tenant_id=tenant,
                user_id=user,
                session_id=session,
                event_type=event_type,
                occurred_at=min(start + timedelta(seconds=step * rng.uniform(5, 90)), now - timedelta(seconds=1)),
            )
            produced += 1


def machine_description() -> str:
    import psycopg

    cores = os.cpu_count()
    with open("/proc/meminfo") as meminfo:
        mem_kb = int(meminfo.readline().split()[1])
    try:
        with psycopg.connect(base_database_url()) as conn:
            server = value_of(conn.execute("SHOW server_version"), "server_version")
    except psycopg.Error:
        server = "unknown"
    import django

    return (
        f"{cores} cores, {mem_kb / 1024 / 1024:.0f} GiB RAM, {platform.platform()}, Python {platform.python_version()}, "
        f"Django {django.get_version()}, PostgreSQL {server}"
    )


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


BENCH_SECRET_KEY = "bench-only-" + "x" * 60


def production_env(database_url: str) -> dict[str, str]:
    """The environment of a bench process run as production runs (DEBUG off). /metrics is declared public:
    the bench serves loopback only, and the soak scrapes it."""
    return {**os.environ, "DATABASE_URL": database_url, "DEBUG": "0", "SECRET_KEY": BENCH_SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING", "METRICS_PUBLIC": "1"}  # fmt: skip


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PeakRss:
    """Samples the resident memory of a process's children (the gunicorn workers)
    every 0.2 s while the block runs; ``peak_mb`` is the largest single worker seen."""

    def __init__(self, pid: int) -> None:
        import threading

        self.pid = pid
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import time

        import psutil

        parent = psutil.Process(self.pid)
        while not self._stop.is_set():
            for child in parent.children():
                try:
                    self.peak_mb = max(self.peak_mb, child.memory_info().rss / 1e6)
                except psutil.Error:
                    continue  # a worker exited between listing and reading: nothing to sample
            time.sleep(0.2)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


def port_wait(port: int, *, seconds: float) -> None:
    """Until a local server accepts connections, ``seconds`` at the most (a refused request then says why)."""
    import socket
    import time

    for _ in range(int(seconds * 10)):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)


@contextmanager
def production_server(
    database_url: str, *, workers: int | None = 2, deployed: bool = False, **env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """gunicorn with production settings on a free loopback port; yields its base URL and
    process, and stops it afterwards. ``deployed``: deploy/gunicorn.conf.py as docs/DEPLOY.md
    runs it (sync workers, ``workers`` None for its own count, access log written to /dev/null);
    otherwise gthread with 4 threads a worker (the reads, which hold connections open)."""
    import signal

    port = free_port()
    production = {**production_env(database_url), "SECURE_SSL_REDIRECT": "0", **env}
    if deployed:
        production.update(
            GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_ACCESS_LOG=os.devnull, GUNICORN_LOG_LEVEL="warning"
        )
        if workers is not None:
            production["GUNICORN_WORKERS"] = str(workers)
        command = [sys.executable, "-m", "gunicorn", "-c", str(BASE_DIR / "deploy" / "gunicorn.conf.py")]
    else:
        command = [sys.executable, "-m", "gunicorn", "opsconsole.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers),
                   "--worker-class", "gthread", "--threads", "4", "--log-level", "warning"]  # fmt: skip
    server = subprocess.Popen(command, cwd=BASE_DIR, env=production)
    try:
        port_wait(port, seconds=15)
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
