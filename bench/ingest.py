"""Ingest: events/s through the real HTTP endpoints against raw COPY, in one run.

1. Generate N events (seeded, skewed) and write them as CSV, as native JSON
   batches of 500, as PostHog ``/batch/`` bodies and Segment ``/v1/batch`` bodies of
   500 events each (the same events in each SDK's shape), and as native JSONL for
   ``import_events``.
2. COPY: ``psql \\copy`` of the CSV into ``ops_events`` (same table, same
   indexes) in a scratch database; time it.
3. HTTP: empty the table, and send the batches to gunicorn (production
   settings) from a second process over loopback (several keep-alive
   connections); time it and sample the web workers' peak RSS. Once per endpoint:
   native, PostHog, Segment.
4. Import: empty the table and time ``events_import`` of the JSONL (one process,
   the command's own code path without its start-up).
5. Check after each: rows = events accepted, no duplicates.

Steps 2-5 alternate in rounds over parts of the events (see ``run``).

Run: ``python bench/ingest.py [--events 200000]`` (``bench/run.py`` calls it).
"""

from __future__ import annotations

import argparse
import base64
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
from typing import TextIO
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


# The endpoints measured beside COPY: name -> (path, how the key travels).
ENDPOINTS = {"native": "/api/v1/events", "posthog": "/batch/", "segment": "/v1/batch"}


@dataclass
class PathResult:
    """One ingestion path over all rounds: seconds, events accepted, rows stored, duplicate rows."""

    seconds: float = 0.0
    accepted: int = 0
    rows: int = 0
    duplicate_rows: int = 0


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
    # posthog, segment (HTTP) and import (events_import of JSONL), each against the same COPY.
    paths: dict[str, PathResult]

    def rate(self, path: str) -> float:
        return self.events / self.paths[path].seconds

    def path_ratio(self, path: str) -> float:
        return self.rate(path) / self.copy_rate

    @property
    def copy_rate(self) -> float:
        return self.events / self.copy_seconds

    @property
    def http_rate(self) -> float:
        return self.events / self.http_seconds

    @property
    def ratio(self) -> float:
        return self.http_rate / self.copy_rate


def _posthog_event(event: dict[str, object], metadata: dict[str, str]) -> dict[str, object]:
    return {"event": event["event_type"], "distinct_id": event["user_id"], "uuid": event["event_id"],
            "timestamp": event["occurred_at"], "properties": {"$groups": {"company": event["tenant_id"]},
                                                              "$session_id": event["session_id"], **metadata}}  # fmt: skip


def _segment_message(event: dict[str, object], metadata: dict[str, str]) -> dict[str, object]:
    return {"type": "track", "event": event["event_type"], "userId": event["user_id"], "messageId": event["event_id"],
            "timestamp": event["occurred_at"], "properties": {},
            "context": {"groupId": event["tenant_id"], "sessionId": event["session_id"],
                        "userAgent": metadata["user_agent"]}}  # fmt: skip


def write_inputs(count: int, seed: int, directory: Path, *, rounds: int = 1) -> list[dict[str, Path]]:
    """The events as ``rounds`` sets of inputs (CSV for COPY; native, PostHog and Segment
    batch bodies, one per line; native JSONL for the import), whole batches each."""
    directory.mkdir(parents=True, exist_ok=True)
    now = now_utc()
    signals = {"REPLAY_ABORTED": "friction", "EXPORT_ABORTED": "friction", "POLICY_BLOCK_REPEAT": "friction",
               "SESSION_IDLE_TIMEOUT": "friction", "INCIDENT_VIEWED_NO_ACTION": "hesitation",
               "REPLAY_STARTED": "intent", "EXPORT_STARTED": "intent", "SESSION_STARTED": "engagement",
               "SESSION_ENDED": "engagement"}  # fmt: skip
    metadata = {"user_agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    metadata_json = json.dumps(metadata)
    batches_per_round = max(1, -(-count // BATCH) // rounds)
    kinds = ("csv", "native", "posthog", "segment", "import")
    paths = [{kind: directory / f"{kind}-{i}.{'csv' if kind == 'csv' else 'jsonl'}" for kind in kinds}
             for i in range(rounds)]  # fmt: skip
    files = [{kind: open(path, "w", newline="") for kind, path in round_paths.items()} for round_paths in paths]

    def flush(round_files: dict[str, TextIO], batch: list[dict[str, object]]) -> None:
        round_files["native"].write(json.dumps({"events": batch}) + "\n")
        round_files["posthog"].write(json.dumps({"batch": [_posthog_event(e, metadata) for e in batch]}) + "\n")
        round_files["segment"].write(json.dumps({"batch": [_segment_message(e, metadata) for e in batch]}) + "\n")
        round_files["import"].write("".join(json.dumps(e) + "\n" for e in batch))

    try:
        batch: list[dict[str, object]] = []
        written = 0
        for event in generate_events(count=count, tenants=max(100, count // 1000), days=30, seed=seed, now=now):
            round_files = files[min(rounds - 1, written // batches_per_round)]
            csv_file = round_files["csv"]
            occurred = event.occurred_at.isoformat()
            csv.writer(csv_file).writerow([event.event_id, event.tenant_id, event.user_id, event.session_id,
                                           event.event_type, occurred, now.isoformat(), metadata_json,
                                           signals.get(event.event_type, ""), "t", ""])  # fmt: skip
            batch.append({"event_id": event.event_id, "tenant_id": event.tenant_id, "user_id": event.user_id,
                          "session_id": event.session_id, "event_type": event.event_type, "occurred_at": occurred,
                          "metadata": metadata})  # fmt: skip
            if len(batch) == BATCH:
                flush(round_files, batch)
                batch = []
                written += 1
        if batch:
            flush(files[-1], batch)
    finally:
        for round_files in files:
            for handle in round_files.values():
                handle.close()
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


def send_batches(url: str, key: str, batches_path: Path, senders: int, endpoint: str = "native") -> dict[str, float]:
    """Runs in the second process: post every batch, ``senders`` connections at a time, to
    ``endpoint`` (native: Bearer key; PostHog: api_key in the body; Segment: Basic auth)."""
    lines = batches_path.read_bytes().splitlines()
    parsed = urlparse(url)
    totals: dict[str, int] = {"accepted": 0, "duplicates": 0, "rejected": 0, "errors": 0}
    lock = threading.Lock()
    cursor = iter(range(len(lines)))

    def worker() -> None:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        if endpoint == "segment":
            headers["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        elif endpoint == "posthog":
            del headers["Authorization"]
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            for _attempt in range(5):
                try:
                    body_bytes = lines[index]
                    if endpoint == "posthog":  # the key travels in the body, as posthog-python sends it
                        body_bytes = b'{"api_key": "' + key.encode() + b'", ' + body_bytes[1:]
                    conn.request("POST", ENDPOINTS[endpoint], body=body_bytes, headers=headers)
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
        conn.execute("TRUNCATE ops_events, ops_real_users, ops_user_accounts, events_importrun")
        conn.execute("CHECKPOINT")


def import_seconds(path: Path) -> dict[str, float]:
    """Runs in a second process (Django set up there): time ``events_import`` of the JSONL."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
    import django

    django.setup()
    from events.importer import events_import

    started = time.perf_counter()
    outcome = events_import(path=str(path), file_format="native")
    return {"seconds": time.perf_counter() - started, "accepted": outcome.accepted, "rejected": outcome.rejected}


def _rows_and_duplicates(database_url: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT count(*) FROM ops_events").fetchone()[0]
        dupes = conn.execute("SELECT count(*) - count(DISTINCT event_id) FROM ops_events").fetchone()[0]
    return int(rows), int(dupes)


def run(*, events: int, seed: int = 1, workers: int = 2, senders: int = 4, rounds: int = 4) -> IngestResult:
    """COPY and HTTP in alternating rounds, each round into the emptied table.

    The machine is shared and its speed moves by 1.5x from minute to minute
    (measured: COPY of the same 200,000 events at 24,800 and at 41,000 events/s);
    alternating exposes both to the same conditions. Rows = accepted and no
    duplicates are checked after every HTTP round.
    """
    database_url = scratch_database(base_database_url())
    inputs = write_inputs(events, seed, OUT_DIR / "ingest", rounds=rounds)
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "1"}
    key = subprocess.run([sys.executable, "manage.py", "create_api_key", "bench", "--scope", "ingest"], cwd=BASE_DIR,
                         env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]  # fmt: skip
    copy_time = 0.0
    totals: dict[str, dict[str, int]] = {}
    paths = {name: PathResult() for name in (*ENDPOINTS, "import")}
    with (
        production_server(database_url, workers=workers, INGEST_RATE_LIMIT_PER_MINUTE="1000000") as (url, server),
        PeakRss(server.pid) as rss,
    ):
        for round_inputs in inputs:
            _table_empty(database_url)
            copy_time += copy_seconds(database_url, round_inputs["csv"])
            for endpoint in ENDPOINTS:
                _table_empty(database_url)
                out = subprocess.run(
                    [sys.executable, __file__, "--send", url, key, str(round_inputs[endpoint]), str(senders), endpoint],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                sent = json.loads(out.stdout)
                paths[endpoint].seconds += sent.pop("seconds")
                paths[endpoint].accepted += sent["accepted"]
                endpoint_totals = totals.setdefault(endpoint, {"duplicates": 0, "rejected": 0, "errors": 0})
                for name in endpoint_totals:
                    endpoint_totals[name] += sent[name]
                rows, dupes = _rows_and_duplicates(database_url)
                paths[endpoint].rows += rows
                paths[endpoint].duplicate_rows += dupes
            _table_empty(database_url)
            out = subprocess.run(
                [sys.executable, __file__, "--import", str(round_inputs["import"])],
                check=True, capture_output=True, text=True, cwd=BASE_DIR, env=env,
            )  # fmt: skip
            imported = json.loads(out.stdout.strip().splitlines()[-1])
            paths["import"].seconds += imported["seconds"]
            paths["import"].accepted += imported["accepted"]
            totals.setdefault("import", {"rejected": 0})["rejected"] += imported["rejected"]
            rows, dupes = _rows_and_duplicates(database_url)
            paths["import"].rows += rows
            paths["import"].duplicate_rows += dupes
    if any(t.get("errors") or t.get("rejected") for t in totals.values()):
        raise SystemExit(f"ingest run lost batches: {totals}")
    native = paths.pop("native")
    return IngestResult(
        events, copy_time, native.seconds, native.accepted, native.rows, native.duplicate_rows, rss.peak_mb, senders,
        paths,
    )  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--send":
        url, key, path, senders = sys.argv[2], sys.argv[3], Path(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(send_batches(url, key, path, senders, sys.argv[6] if len(sys.argv) > 6 else "native")))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--import":
        print(json.dumps(import_seconds(Path(sys.argv[2]))))
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
    for name, path in result.paths.items():
        print(
            f"{name}: {result.rate(name):,.0f} events/s, ratio {result.path_ratio(name):.2f} of COPY; "
            f"rows {path.rows} = accepted {path.accepted}; duplicate rows {path.duplicate_rows}"
        )


if __name__ == "__main__":
    main()
