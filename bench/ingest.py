"""Ingest: events/s through the real HTTP endpoint against raw COPY, in one run.

1. Generate N events (seeded, skewed) and write them as CSV and as JSON
   batches of 500.
2. COPY: ``psql \\copy`` of the CSV into ``ops_events`` (same table, same
   indexes) in a scratch database; time it.
3. HTTP: empty the table, and send the batches to gunicorn (production
   settings) from a second process over loopback (several keep-alive
   connections); time it and sample the web workers' peak RSS.
4. Check: rows = events accepted, no duplicates.

Steps 2-4 alternate in rounds over parts of the events (see ``run``).

Run: ``python bench/ingest.py [--events 200000]`` (``bench/run.py`` calls it).
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BASE_DIR,
    OUT_DIR,
    PeakRss,
    base_database_url,
    generate_events,
    now_utc,
    production_server,
    scratch_database,
)

BATCH = 500
COLUMNS = "event_id, tenant_id, user_id, session_id, event_type, occurred_at, received_at, metadata, friction_signal, is_real, exclusion_reason"


@dataclass
class IngestResult:
    events: int
    copy_seconds: float
    http_seconds: float
    accepted: int
    rows_after_http: int
    duplicate_rows: int
    web_peak_rss_mb: float
    senders: int

    @property
    def copy_rate(self) -> float:
        return self.events / self.copy_seconds

    @property
    def http_rate(self) -> float:
        return self.events / self.http_seconds

    @property
    def ratio(self) -> float:
        return self.http_rate / self.copy_rate


def write_inputs(count: int, seed: int, directory: Path, *, rounds: int = 1) -> list[tuple[Path, Path]]:
    """The events as ``rounds`` pairs of (CSV for COPY, JSON lines of batches for HTTP), whole batches each."""
    directory.mkdir(parents=True, exist_ok=True)
    now = now_utc()
    signals = {"REPLAY_ABORTED": "friction", "EXPORT_ABORTED": "friction", "POLICY_BLOCK_REPEAT": "friction",
               "SESSION_IDLE_TIMEOUT": "friction", "INCIDENT_VIEWED_NO_ACTION": "hesitation",
               "REPLAY_STARTED": "intent", "EXPORT_STARTED": "intent", "SESSION_STARTED": "engagement",
               "SESSION_ENDED": "engagement"}  # fmt: skip
    metadata = {"user_agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    metadata_json = json.dumps(metadata)
    batches_per_round = max(1, -(-count // BATCH) // rounds)
    paths = [(directory / f"events-{i}.csv", directory / f"batches-{i}.jsonl") for i in range(rounds)]
    files = [(open(c, "w", newline=""), open(b, "w")) for c, b in paths]
    try:
        batch: list[dict[str, object]] = []
        written = 0
        for event in generate_events(count=count, tenants=max(100, count // 1000), days=30, seed=seed, now=now):
            csv_file, batches_file = files[min(rounds - 1, written // batches_per_round)]
            occurred = event.occurred_at.isoformat()
            csv.writer(csv_file).writerow([event.event_id, event.tenant_id, event.user_id, event.session_id,
                                           event.event_type, occurred, now.isoformat(), metadata_json,
                                           signals.get(event.event_type, ""), "t", ""])  # fmt: skip
            batch.append({"event_id": event.event_id, "tenant_id": event.tenant_id, "user_id": event.user_id,
                          "session_id": event.session_id, "event_type": event.event_type, "occurred_at": occurred,
                          "metadata": metadata})  # fmt: skip
            if len(batch) == BATCH:
                batches_file.write(json.dumps({"events": batch}) + "\n")
                batch = []
                written += 1
        if batch:
            files[-1][1].write(json.dumps({"events": batch}) + "\n")
    finally:
        for csv_file, batches_file in files:
            csv_file.close()
            batches_file.close()
    return paths


def copy_seconds(database_url: str, csv_path: Path) -> float:
    """Time ``psql \\copy`` of the CSV (psycopg's COPY when psql is not installed)."""
    import psycopg

    psql = shutil.which("psql")
    started = time.perf_counter()
    if psql:
        subprocess.run([psql, database_url, "-q", "-c", f"\\copy ops_events ({COLUMNS}) FROM '{csv_path}' WITH (FORMAT csv, FORCE_NOT_NULL (tenant_id, user_id, session_id, friction_signal, exclusion_reason))"], check=True)  # fmt: skip
    else:
        with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
            with (
                cursor.copy(
                    f"COPY ops_events ({COLUMNS}) FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL (tenant_id, user_id, session_id, friction_signal, exclusion_reason))"
                ) as copy,
                open(csv_path, "rb") as f,
            ):
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
    return time.perf_counter() - started


def send_batches(url: str, key: str, batches_path: Path, senders: int) -> dict[str, float]:
    """Runs in the second process: post every batch, ``senders`` connections at a time."""
    lines = batches_path.read_bytes().splitlines()
    parsed = urlparse(url)
    totals: dict[str, int] = {"accepted": 0, "duplicates": 0, "rejected": 0, "errors": 0}
    lock = threading.Lock()
    cursor = iter(range(len(lines)))

    def worker() -> None:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            for _attempt in range(5):
                try:
                    conn.request("POST", "/api/v1/events", body=lines[index], headers=headers)
                    response = conn.getresponse()
                    body = json.loads(response.read())
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
                    continue
                if response.status == 200:
                    with lock:
                        totals["accepted"] += body["accepted"]
                        totals["duplicates"] += body["duplicates"]
                        totals["rejected"] += len(body["rejected"])
                    break
                time.sleep(0.2)
            else:
                with lock:
                    totals["errors"] += 1

    threads = [threading.Thread(target=worker) for _ in range(senders)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Timed here, from the first request to the last answer: the sender's own start-up
    # (interpreter, reading the file) is not the endpoint's time.
    totals["seconds"] = time.perf_counter() - started  # type: ignore[assignment]
    return totals


def _table_empty(database_url: str) -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE ops_events, ops_real_users")
        conn.execute("CHECKPOINT")


def run(*, events: int, seed: int = 1, workers: int = 2, senders: int = 4, rounds: int = 4) -> IngestResult:
    """COPY and HTTP in alternating rounds, each round into the emptied table.

    The machine is shared and its speed moves by 1.5x from minute to minute
    (measured: COPY of the same 200,000 events at 24,800 and at 41,000 events/s);
    alternating exposes both to the same conditions. Rows = accepted and no
    duplicates are checked after every HTTP round.
    """
    import psycopg

    database_url = scratch_database(base_database_url())
    inputs = write_inputs(events, seed, OUT_DIR / "ingest", rounds=rounds)
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "1"}
    key = subprocess.run([sys.executable, "manage.py", "create_api_key", "bench", "--scope", "ingest"], cwd=BASE_DIR,
                         env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]  # fmt: skip
    copy_time = http_time = 0.0
    totals: dict[str, int] = {"accepted": 0, "duplicates": 0, "rejected": 0, "errors": 0}
    rows = dupes = 0
    with (
        production_server(database_url, workers=workers, INGEST_RATE_LIMIT_PER_MINUTE="1000000") as (url, server),
        PeakRss(server.pid) as rss,
    ):
        for csv_path, batches_path in inputs:
            _table_empty(database_url)
            copy_time += copy_seconds(database_url, csv_path)
            _table_empty(database_url)
            out = subprocess.run(
                [sys.executable, __file__, "--send", url, key, str(batches_path), str(senders)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            sent = json.loads(out.stdout)
            http_time += sent.pop("seconds")
            for name in totals:
                totals[name] += sent[name]
            with psycopg.connect(database_url) as conn:
                rows += conn.execute("SELECT count(*) FROM ops_events").fetchone()[0]
                dupes += conn.execute("SELECT count(*) - count(DISTINCT event_id) FROM ops_events").fetchone()[0]
    if totals["errors"] or totals["rejected"]:
        raise SystemExit(f"ingest run lost batches: {totals}")
    return IngestResult(events, copy_time, http_time, totals["accepted"], rows, dupes, rss.peak_mb, senders)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--send":
        url, key, path, senders = sys.argv[2], sys.argv[3], Path(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(send_batches(url, key, path, senders)))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--senders", type=int, default=4)
    args = parser.parse_args()
    result = run(events=args.events, workers=args.workers, senders=args.senders)
    print(f"COPY: {result.copy_rate:,.0f} events/s; HTTP: {result.http_rate:,.0f} events/s; ratio {result.ratio:.2f}")
    print(
        f"rows {result.rows_after_http} = accepted {result.accepted}; duplicate rows {result.duplicate_rows}; web peak RSS {result.web_peak_rss_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
