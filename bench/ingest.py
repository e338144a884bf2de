"""Ingest: events/s through the real HTTP endpoints against raw COPY, in one run.

1. Generate N events (seeded, skewed) and write them as CSV, as native JSON
   batches of 500, as PostHog ``/batch/`` bodies and Segment ``/v1/batch`` bodies of
   500 events each (the same events in each SDK's shape), and as native JSONL for
   ``import_events``.
2. COPY: ``psql \\copy`` of the CSV into ``ops_events`` (same table, same
   indexes) in a scratch database; time it.
3. HTTP: empty the table, and send the batches to gunicorn as docs/DEPLOY.md runs
   it (deploy/gunicorn.conf.py: sync workers, its own worker count) from a second
   process over loopback (several connections at once); time it and sample the web
   workers' peak RSS. Once per endpoint: native, PostHog, Segment.
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
import gzip
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from urllib.parse import urlparse

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BASE_DIR,
    COPY_COLUMNS,
    OUT_DIR,
    PeakRss,
    base_database_url,
    events_copy,
    events_stored,
    events_tables_empty,
    generate_events,
    now_utc,
    production_server,
    scratch_database,
)

BATCH = 500


# The endpoints measured beside COPY: name -> path (how the key travels: ``send_batches``).
# posthog-js posts its batch to /e/ as a JSON array, gzip as text/plain with ?compression=gzip-js.
ENDPOINTS = {"native": "/api/v1/events", "posthog": "/batch/", "segment": "/v1/batch",
             "posthog_js": "/e/?ip=0&ver=1.449.2", "posthog_js_gzip": "/e/?compression=gzip-js&ip=0&ver=1.449.2"}  # fmt: skip
# Each path's target as a fraction of COPY of the same events in the same rounds (BENCHMARKS.md, ingest).
TARGETS = {"native": 0.75, "posthog": 0.65, "segment": 0.65, "posthog_js": 0.5, "posthog_js_gzip": 0.5, "import": 0.5}
# Both posthog-js rows send the same file, gzipped or not just before the timed requests.
BODIES = {"posthog_js_gzip": "posthog_js"}
# The paths also measured against COPY of the very rows they stored (dumped after the first, COPYed
# back in the same round): the same events, with the properties a page sends kept as sent.
STORED_COPY = ("posthog_js", "posthog_js_gzip")
# posthog-js puts the project key in every event; the sender writes the bench key in its place.
POSTHOG_JS_TOKEN = "@@token@@"


@dataclass
class PathResult:
    """One ingestion path over all rounds: events accepted, rows stored, duplicate rows, and
    per round its rate and its ratio to the COPY of the same rows in the same round."""

    seconds: float = 0.0
    accepted: int = 0
    rows: int = 0
    duplicate_rows: int = 0
    round_rates: list[float] = field(default_factory=list)
    round_ratios: list[float] = field(default_factory=list)
    # Per round, the ratio to COPY of the rows this path stored (set for the browser paths, whose
    # rows carry the page's properties: several times the bytes of the CSV's rows).
    stored_copy_ratios: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(self.round_rates)

    @property
    def ratio(self) -> float:
        """The median of the rounds' ratios (each taken side by side with its own COPY)."""
        return statistics.median(self.round_ratios)

    def ratios_text(self, ratios: list[float] | None = None) -> str:
        return ", ".join(f"{r:.2f}" for r in (self.round_ratios if ratios is None else ratios))

    @property
    def stored_copy_ratio(self) -> float | None:
        return statistics.median(self.stored_copy_ratios) if self.stored_copy_ratios else None


@dataclass
class IngestResult:
    events: int
    copy_rates: list[float]
    web_peak_rss_mb: float
    senders: int
    web_workers: int
    # native, posthog, segment (HTTP) and import (events_import of JSONL), each against the same COPY.
    paths: dict[str, PathResult]
    # import_events of a larger file (1,000,000 events in make bench) against COPY of the same rows.
    large_import: LargeImportResult | None = None

    def rate(self, path: str) -> float:
        return self.paths[path].rate

    def path_ratio(self, path: str) -> float:
        return self.paths[path].ratio

    @property
    def copy_rate(self) -> float:
        return statistics.median(self.copy_rates)

    @property
    def rounds(self) -> int:
        return len(self.copy_rates)


@dataclass
class LargeImportResult:
    events: int
    copy_rates: list[float]
    path: PathResult


def _posthog_event(event: dict[str, object], metadata: dict[str, str]) -> dict[str, object]:
    return {"event": event["event_type"], "distinct_id": event["user_id"], "uuid": event["event_id"],
            "timestamp": event["occurred_at"], "properties": {"$groups": {"company": event["tenant_id"]},
                                                              "$session_id": event["session_id"], **metadata}}  # fmt: skip


def _posthog_js_event(event: dict[str, object], user_agent: str) -> dict[str, object]:
    """One event as posthog-js 1.449 batches it from a page: its per-event browser properties
    (what tests/browser/test_browser_sdks.py sees it send), the project key as ``token``."""
    occurred = str(event["occurred_at"]).replace("+00:00", "Z")
    return {"uuid": event["event_id"], "event": event["event_type"], "timestamp": occurred,
            "properties": {"$os": "Linux", "$os_version": "", "$browser": "Chrome", "$device_type": "Desktop",
                           "$timezone": "Europe/Berlin", "$timezone_offset": -60, "$current_url":
                           "https://www.example.com/app/replays", "$host": "www.example.com", "$pathname": "/app/replays",
                           "$raw_user_agent": user_agent, "$browser_version": 131, "$browser_language": "en-US",
                           "$browser_language_prefix": "en", "$screen_height": 1080, "$screen_width": 1920,
                           "$viewport_height": 900, "$viewport_width": 1280, "$lib": "web", "$lib_version": "1.449.2",
                           "$insert_id": str(event["event_id"])[:16], "$time": 1764892800.123,
                           "distinct_id": event["user_id"], "$device_id": f"d-{event['user_id']}",
                           "$session_id": event["session_id"], "$window_id": f"w-{event['session_id']}",
                           "$pageview_id": f"p-{event['session_id']}", "$is_identified": True,
                           "$groups": {"company": event["tenant_id"]}, "$referrer": "$direct",
                           "$referring_domain": "$direct", "$lib_rate_limit_remaining_tokens": 99,
                           "token": POSTHOG_JS_TOKEN}}  # fmt: skip


def _segment_message(event: dict[str, object], metadata: dict[str, str]) -> dict[str, object]:
    return {"type": "track", "event": event["event_type"], "userId": event["user_id"], "messageId": event["event_id"],
            "timestamp": event["occurred_at"], "properties": {},
            "context": {"groupId": event["tenant_id"], "sessionId": event["session_id"],
                        "userAgent": metadata["user_agent"]}}  # fmt: skip


KINDS = ("csv", "native", "posthog", "segment", "posthog_js", "import")


def write_inputs(
    count: int, seed: int, directory: Path, *, rounds: int = 1, kinds: tuple[str, ...] = KINDS
) -> list[dict[str, Path]]:
    """The events as ``rounds`` sets of inputs (CSV for COPY; native, PostHog and Segment
    batch bodies, one per line; native JSONL for the import), whole batches each.
    ``kinds`` limits which are written (the large import needs only the CSV and the JSONL)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = now_utc()
    signals = {"REPLAY_ABORTED": "friction", "EXPORT_ABORTED": "friction", "POLICY_BLOCK_REPEAT": "friction",
               "SESSION_IDLE_TIMEOUT": "friction", "INCIDENT_VIEWED_NO_ACTION": "hesitation",
               "REPLAY_STARTED": "intent", "EXPORT_STARTED": "intent", "SESSION_STARTED": "engagement",
               "SESSION_ENDED": "engagement"}  # fmt: skip
    metadata = {"user_agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    metadata_json = json.dumps(metadata)
    batches_per_round = max(1, -(-count // BATCH) // rounds)
    paths = [{kind: directory / f"{kind}-{i}.{'csv' if kind == 'csv' else 'jsonl'}" for kind in kinds}
             for i in range(rounds)]  # fmt: skip
    files = [{kind: open(path, "w", newline="") for kind, path in round_paths.items()} for round_paths in paths]

    def flush(round_files: dict[str, TextIO], batch: list[dict[str, object]]) -> None:
        if "native" in round_files:
            round_files["native"].write(json.dumps({"events": batch}) + "\n")
        if "posthog" in round_files:
            round_files["posthog"].write(json.dumps({"batch": [_posthog_event(e, metadata) for e in batch]}) + "\n")
        if "segment" in round_files:
            round_files["segment"].write(json.dumps({"batch": [_segment_message(e, metadata) for e in batch]}) + "\n")
        if "posthog_js" in round_files:
            user_agent = metadata["user_agent"]
            # Compact, as the browser's JSON.stringify writes it.
            body = json.dumps([_posthog_js_event(e, user_agent) for e in batch], separators=(",", ":"))
            round_files["posthog_js"].write(body + "\n")
        if "import" in round_files:
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


def send_batches(url: str, key: str, batches_path: Path, senders: int, endpoint: str = "native") -> dict[str, float]:
    """Runs in the second process: post every batch, ``senders`` connections at a time, to
    ``endpoint`` (native: Bearer key; PostHog: api_key in the body; Segment: Basic auth)."""
    lines = batches_path.read_bytes().splitlines()
    if endpoint.startswith("posthog_js"):  # prepared before the clock starts, as a page has its batch ready
        lines = [line.replace(POSTHOG_JS_TOKEN.encode(), key.encode()) for line in lines]
        if endpoint == "posthog_js_gzip":
            lines = [gzip.compress(line, compresslevel=6) for line in lines]
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
        elif endpoint.startswith("posthog_js"):  # the key is each event's token; a page sends its Origin
            headers = {"Content-Type": "text/plain" if endpoint.endswith("gzip") else "application/json",
                       "Origin": "https://www.example.com"}  # fmt: skip
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


def import_seconds(path: Path) -> dict[str, float]:
    """Runs in a second process (Django set up there): time ``events_import`` of the JSONL."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
    import django

    django.setup()
    from events.ingestion.importer import events_import

    started = time.perf_counter()
    outcome = events_import(path=str(path), file_format="native")
    return {"seconds": time.perf_counter() - started, "accepted": outcome.accepted, "rejected": outcome.rejected}


def _warm_up(url: str, key: str, inputs: dict[str, Path], senders: int) -> None:
    """A few batches to every endpoint before anything is timed: each web worker imports the
    URL configuration (the whole project, scikit-learn included: seconds of CPU) on its first
    request, a start-up cost that is not the endpoint's throughput. The rows are emptied after."""
    directory = OUT_DIR / "ingest" / "warm"
    directory.mkdir(parents=True, exist_ok=True)
    for endpoint in ENDPOINTS:
        lines = inputs[BODIES.get(endpoint, endpoint)].read_bytes().splitlines()[: 4 * senders]
        sample = directory / f"{endpoint}.jsonl"
        sample.write_bytes(b"\n".join(lines) + b"\n")
        subprocess.run(
            [sys.executable, __file__, "--send", url, key, str(sample), str(senders * 2), endpoint],
            check=True, capture_output=True, text=True,
        )  # fmt: skip


def _import_round(env: dict[str, str], jsonl: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--import", str(jsonl)],
        check=True, capture_output=True, text=True, cwd=BASE_DIR, env=env,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _path_round(path: PathResult, *, events: int, seconds: float, accepted: int, copy_rate: float, url: str) -> None:
    rows, dupes = events_stored(url)
    path.seconds += seconds
    path.accepted += accepted
    path.rows += rows
    path.duplicate_rows += dupes
    path.round_rates.append(events / seconds)
    path.round_ratios.append(events / seconds / copy_rate)


def run(
    *, events: int, seed: int = 1, workers: int | None = None, senders: int = 4, rounds: int = 4, import_events: int = 0,
    import_rounds: int = 2,
) -> IngestResult:  # fmt: skip
    """COPY and every path in alternating rounds, each round into the emptied table.

    The machine is shared and its speed moves from minute to minute (BENCHMARKS.md
    gives COPY of the same events at rates far apart);
    alternating exposes both to the same conditions, and each path's ratio is the
    median of its rounds' ratios to the COPY of the same rows in the same round.
    Rows = accepted and no duplicates are checked after every round.

    ``import_events`` > 0 adds the large import: that many events as one JSONL file,
    ``import_rounds`` times COPY then ``events_import`` of the same rows.
    """
    database_url = scratch_database(base_database_url())
    inputs = write_inputs(events, seed, OUT_DIR / "ingest", rounds=rounds)
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "1"}
    key = subprocess.run([sys.executable, "manage.py", "create_api_key", "bench", "--scope", "ingest"], cwd=BASE_DIR,
                         env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]  # fmt: skip
    copy_rates: list[float] = []
    totals: dict[str, dict[str, int]] = {}
    paths = {name: PathResult() for name in (*ENDPOINTS, "import")}
    stored_csv = OUT_DIR / "ingest" / "stored-rows.csv"
    with (
        production_server(database_url, workers=workers, deployed=True, INGEST_RATE_LIMIT_PER_MINUTE="1000000") as (
            url,
            server,
        ),
        PeakRss(server.pid) as rss,
    ):
        _warm_up(url, key, inputs[0], senders)
        web_workers = len(psutil.Process(server.pid).children())
        for round_inputs in inputs:
            round_events = _csv_rows(round_inputs["csv"])
            events_tables_empty(database_url)
            copy_rate = round_events / events_copy(database_url, round_inputs["csv"])
            copy_rates.append(copy_rate)
            for endpoint in ENDPOINTS:
                events_tables_empty(database_url)
                out = subprocess.run(
                    [sys.executable, __file__, "--send", url, key, str(round_inputs[BODIES.get(endpoint, endpoint)]), str(senders),
                     endpoint],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                sent = json.loads(out.stdout)
                endpoint_totals = totals.setdefault(endpoint, {"duplicates": 0, "rejected": 0, "errors": 0})
                for name in endpoint_totals:
                    endpoint_totals[name] += sent[name]
                _path_round(paths[endpoint], events=round_events, seconds=sent["seconds"], accepted=sent["accepted"],
                            copy_rate=copy_rate, url=database_url)  # fmt: skip
                if endpoint == STORED_COPY[0]:
                    stored_rows_dump(database_url, stored_csv)
            events_tables_empty(database_url)
            imported = _import_round(env, round_inputs["import"])
            totals.setdefault("import", {"rejected": 0})["rejected"] += imported["rejected"]
            _path_round(paths["import"], events=round_events, seconds=imported["seconds"],
                        accepted=int(imported["accepted"]), copy_rate=copy_rate, url=database_url)  # fmt: skip
            events_tables_empty(database_url)
            stored_copy_rate = round_events / events_copy(database_url, stored_csv)
            for endpoint in STORED_COPY:
                paths[endpoint].stored_copy_ratios.append(paths[endpoint].round_rates[-1] / stored_copy_rate)
    large = None
    if import_events:
        large = _large_import(database_url, env, events=import_events, seed=seed + 1, rounds=import_rounds)
        totals["large import"] = {"rejected": large.rejected}
    if any(t.get("errors") or t.get("rejected") for t in totals.values()):
        raise SystemExit(f"ingest run lost batches: {totals}")
    return IngestResult(events, copy_rates, rss.peak_mb, senders, web_workers, paths, large.result if large else None)


@dataclass
class _LargeImport:
    result: LargeImportResult
    rejected: int


def _large_import(database_url: str, env: dict[str, str], *, events: int, seed: int, rounds: int) -> _LargeImport:
    """``rounds`` times: COPY the events into the emptied table, then ``events_import`` of the
    same events as one JSONL file into the emptied table (each round a fresh import: the
    checkpoint table is emptied too, so nothing is skipped as already imported)."""
    (files,) = write_inputs(events, seed, OUT_DIR / "ingest-large", kinds=("csv", "import"))
    copy_rates: list[float] = []
    path = PathResult()
    rejected = 0
    for _ in range(rounds):
        events_tables_empty(database_url)
        copy_rate = events / events_copy(database_url, files["csv"])
        copy_rates.append(copy_rate)
        events_tables_empty(database_url)
        imported = _import_round(env, files["import"])
        rejected += int(imported["rejected"])
        _path_round(path, events=events, seconds=imported["seconds"], accepted=int(imported["accepted"]),
                    copy_rate=copy_rate, url=database_url)  # fmt: skip
    return _LargeImport(LargeImportResult(events, copy_rates, path), rejected)


def stored_rows_dump(database_url: str, csv_path: Path) -> None:
    """The rows ops_events holds, as the CSV ``events_copy`` reads (its columns, CSV as COPY writes it)."""
    import psycopg

    with psycopg.connect(database_url) as conn, conn.cursor() as cursor, open(csv_path, "wb") as out:
        with cursor.copy(f"COPY (SELECT {COPY_COLUMNS} FROM ops_events) TO STDOUT WITH (FORMAT csv)") as copy:
            for chunk in copy:
                out.write(chunk)


def _csv_rows(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


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
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: the deploy config's)")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--import-events", type=int, default=0, help="also time import_events of this many (JSONL)")
    args = parser.parse_args()
    result = run(
        events=args.events, workers=args.workers, senders=args.senders, rounds=args.rounds,
        import_events=args.import_events,
    )  # fmt: skip
    print(
        f"COPY: {result.copy_rate:,.0f} events/s (median of {result.rounds} rounds); web peak RSS {result.web_peak_rss_mb:.0f} MB"
    )
    for name, path in result.paths.items():
        print(
            f"{name}: {path.rate:,.0f} events/s, {path.ratio:.2f} of COPY (rounds: {path.ratios_text()}); "
            f"rows {path.rows} = accepted {path.accepted}; duplicate rows {path.duplicate_rows}"
            + (f"; {path.stored_copy_ratio:.2f} of COPY of the rows it stored" if path.stored_copy_ratio else "")
        )
    if result.large_import:
        large = result.large_import
        print(
            f"import of {large.events:,}: {large.path.rate:,.0f} events/s, {large.path.ratio:.2f} of COPY "
            f"({statistics.median(large.copy_rates):,.0f} events/s; rounds: {large.path.ratios_text()}); "
            f"rows {large.path.rows} = accepted {large.path.accepted}; duplicate rows {large.path.duplicate_rows}"
        )


if __name__ == "__main__":
    main()
