"""Shared pieces of the benchmark harness: a scratch database, the seeded
event generator, and the machine description for BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse, urlunparse

BASE_DIR = Path(__file__).resolve().parent.parent
OUT_DIR = BASE_DIR / "bench" / "out"
BENCH_DB = "opsconsole_bench"

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


def scratch_database(url: str) -> str:
    """Drop and recreate the bench database, migrate it, and return its URL."""
    import psycopg

    admin_url = with_database(url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    bench_url = with_database(url, BENCH_DB)
    manage(["migrate", "--noinput", "-v", "0"], bench_url)
    return bench_url


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
    weights = tenant_sizes(tenants, rng)
    names = [f"t{index:05d}" for index in range(tenants)]
    types = [name for name, _ in EVENT_MIX]
    type_weights = [weight for _, weight in EVENT_MIX]
    produced = 0
    span = days * 86400
    while produced < count:
        tenant = rng.choices(names, weights)[0]
        session_length = rng.randint(3, 25)
        start = now - timedelta(seconds=rng.uniform(60, span))
        user = f"{tenant}-u{rng.randint(0, 20)}"
        session = uuid.UUID(int=rng.getrandbits(128), version=4).hex[:16]
        burst = rng.random() < 0.05  # a friction burst: repeated aborts in one session
        for step in range(min(session_length, count - produced)):
            event_type = (
                rng.choice(["REPLAY_ABORTED", "EXPORT_ABORTED", "POLICY_BLOCK_REPEAT"])
                if burst
                else rng.choices(types, type_weights)[0]
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
            server = conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.Error:
        server = "unknown"
    import django

    return (
        f"{cores} cores, {mem_kb / 1024 / 1024:.0f} GiB RAM, {platform.platform()}, Python {platform.python_version()}, "
        f"Django {django.get_version()}, PostgreSQL {server}"
    )


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
