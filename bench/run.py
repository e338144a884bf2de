"""`make bench` / `make bench-quick`: run the harness and write BENCHMARKS.md.

Each section measures the project against the physical limit on the same
machine in the same run and reports the ratio; absolute times are context
only (the machine is shared and noisy). `--quick` runs small sizes and asserts
correctness only (rows = accepted, no duplicates): it never asserts a timing.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ingest
from bench.common import BASE_DIR, machine_description


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, correctness only (CI)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()

    events = 20_000 if args.quick else 200_000
    result = ingest.run(events=events)
    assert result.rows_after_http == result.accepted == events, result
    assert result.duplicate_rows == 0, result

    rows = [
        ("Ingest: raw COPY (`psql \\copy`, same table and indexes)", f"{result.copy_rate:,.0f} events/s", ""),
        (
            f"Ingest: HTTP `POST /api/v1/events` (gunicorn 2 workers, batches of 500, {result.senders} connections)",
            f"{result.http_rate:,.0f} events/s",
            f"{result.ratio:.2f} of COPY (target ≥ 0.50)",
        ),
        (
            "Ingest: rows stored = events accepted, duplicates",
            f"{result.rows_after_http:,} = {result.accepted:,}, {result.duplicate_rows}",
            "",
        ),
        ("Memory: web worker peak RSS during ingest", f"{result.web_peak_rss_mb:.0f} MB", ""),
    ]
    table = ["| measurement | value | ratio |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    header = f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine_description()}; {events:,} events."
    print(header)
    print("\n".join(table))
    if not args.no_write and not args.quick:
        path = BASE_DIR / "BENCHMARKS.md"
        text = path.read_text()
        marker_start, marker_end = "<!-- bench:start -->", "<!-- bench:end -->"
        before, _, rest = text.partition(marker_start)
        _, _, after = rest.partition(marker_end)
        path.write_text(f"{before}{marker_start}\n{header}\n\n" + "\n".join(table) + f"\n{marker_end}{after}")


if __name__ == "__main__":
    main()
