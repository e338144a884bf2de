"""`make bench` / `make bench-quick`: run the harness and write BENCHMARKS.md.

Each section measures the project against the physical limit on the same
machine in the same run and reports the ratio; absolute times are context
only (the machine is shared and noisy). `--quick` runs small sizes and asserts
correctness only (rows = accepted, no duplicates, incremental == full rebuild,
every read answered 2xx): it never asserts a timing.

Sections: ingest (HTTP vs COPY), full recompute (vs the single-scan aggregate),
incremental recompute of new events on two history sizes (vs COPYing them),
reads (vs a trivial Django view, at many vs few tenants), the walk-forward backtest (vs one
full rebuild), Citus (a three-node cluster beside plain PostgreSQL), memory.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import backtest, citus, ingest, reads, recompute, soak
from bench.common import BASE_DIR, BENCH_DB, base_database_url, database_drop, machine_description, scratch_database
from bench.common import history_database as history_db
from core.rows import value_of

SECTIONS = ("ingest", "recompute", "reads", "backtest", "citus", "soak")
# The labels each section's rows start with: a partial run (--only, --skip) replaces only these
# rows of BENCHMARKS.md's table and keeps the others, with the run they came from.
SECTION_LABELS = {
    "ingest": ("Ingest:", "Import:", "Memory: web worker peak RSS during ingest"),
    "recompute": ("Full recompute", "Incremental", "Memory: recompute"),
    "reads": ("Reads:", "Memory: web worker peak RSS during the reads"),
    "backtest": ("Backtest:", "Memory: backtest"),
    "citus": ("Citus",),
    "soak": ("Soak:",),
}


def table_merge(text: str, *, rows: list[tuple[str, str, str]], sections: set[str], header: str) -> str:
    """BENCHMARKS.md with the bench block rewritten: every row of a full run, or for a partial
    run the rows of ``sections`` replaced in place (new rows where the section's first row was)
    and the others kept; the header then names both runs."""
    marker_start, marker_end = "<!-- bench:start -->", "<!-- bench:end -->"
    before, _, rest = text.partition(marker_start)
    block, _, after = rest.partition(marker_end)
    lines = [f"| {a} | {b} | {c} |" for a, b, c in rows]
    if sections != set(SECTIONS):
        labels = tuple(label for name in sections for label in SECTION_LABELS[name])
        old = [
            line
            for line in block.strip().splitlines()
            if line.startswith("| ") and not line.startswith("| measurement")
        ]
        kept: list[str] = []
        placed = False
        for line in old:
            if line[2:].startswith(labels):
                if not placed:
                    kept += lines
                    placed = True
                continue
            kept.append(line)
        if not placed:
            kept = lines + kept
        lines = kept
        previous = next((line for line in block.strip().splitlines() if line.startswith("Run ")), "")
        previous = previous.rpartition("; the other rows: ")[2]  # the full run, after partial ones
        header = f"{header.rstrip('.')} ({', '.join(sorted(sections))} only); the other rows: {previous}"
    table = ["| measurement | value | ratio |", "|---|---|---|", *lines]
    return f"{before}{marker_start}\n{header}\n\n" + "\n".join(table) + f"\n{marker_end}{after}"


def _sizes(quick: bool) -> dict[str, int]:
    # "long_days": the third history, "large" events at "small"'s daily rate (ten times the days).
    # "import": the large import_events measurement (0: none).
    if quick:
        return {"ingest": 20_000, "import": 0, "small": 20_000, "large": 60_000, "long_days": 180, "tenants": 200, "new": 5_000,
                "few_tenants": 60, "few_events": 5_000, "duration": 2, "citus": 20_000, "citus_ingest": 5_000}  # fmt: skip
    return {"ingest": 200_000, "import": 1_000_000, "small": 1_000_000, "large": 10_000_000, "long_days": 600, "tenants": 10_000,
            "new": 100_000, "few_tenants": 100, "few_events": 100_000, "duration": 30, "citus": 1_000_000,
            "citus_ingest": 100_000}  # fmt: skip


# Each read's req/s as a fraction of the floor's: the API reads answer from a cached answer, the
# pages from what the last recompute or founder action produced plus a template render.
READ_TARGETS = {"at_risk": 0.7, "customers": 0.7, "today": 0.25, "customer": 0.2}


def _reads_database(history: int, tenants: int, *, keep_name: str | None = None) -> tuple[str, str]:
    """A recomputed database for the reads: ``keep_name`` (left by the recompute section) or a new one.

    Returns (url, name); the caller drops it.
    """
    import psycopg

    from bench.common import ANCHOR, tenants_ensure, with_database

    base = base_database_url()
    if keep_name is None:
        keep_name = f"{recompute.database_name(recompute.History(history))}_reads"
        url = scratch_database(base, keep_name, template=history_db(base, count=history, tenants=tenants))
        tenants_ensure(url, tenants)
        recompute.recompute_child(url, mode="full", now=ANCHOR)
    else:
        url = with_database(base, keep_name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # what autovacuum does between runs in production
    return url, keep_name


def _tenants_counted(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return value_of(conn.execute("SELECT count(*) AS n FROM ops_tenant_metrics"), "n")


@dataclass
class Run:
    """What the sections share: the sizes, the table's rows and the failed checks so far, and the
    recompute's results (the reads reuse its large database when it ran)."""

    size: dict[str, int]
    quick: bool
    soak_seconds: float
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    results: dict[recompute.History, recompute.RecomputeResult] = field(default_factory=dict)


def _histories(size: dict[str, int]) -> tuple[recompute.History, recompute.History, recompute.History]:
    """The recompute's three histories: small, large, and long (large's events at small's daily rate)."""
    small_h, large_h = recompute.History(size["small"]), recompute.History(size["large"])
    long_h = recompute.History(size["large"], days=size["long_days"])
    return small_h, large_h, long_h


def ingest_section(run: Run) -> None:
    size, rows, failures = run.size, run.rows, run.failures
    result = ingest.run(events=size["ingest"], import_events=size["import"])
    checked = dict(result.paths)
    if result.large_import:
        checked["large import"] = result.large_import.path
    for name, path in checked.items():
        # Summed over the rounds: the small paths' rounds split the events, the large import's each repeat them.
        large = result.large_import
        expected = large.events * len(large.copy_rates) if large and name == "large import" else size["ingest"]
        if not (path.rows == path.accepted == expected and path.duplicate_rows == 0):
            failures.append(f"ingest {name}: {path}")
    rounds = f"median of {result.rounds} side-by-side rounds"

    def ratio_text(path: ingest.PathResult) -> str:
        name = next(n for n, p in result.paths.items() if p is path)
        text = f"{path.ratio:.2f} of COPY (target ≥ {ingest.TARGETS[name]:.2f}; {rounds}: {path.ratios_text()})"
        if path.stored_copy_ratio is not None:
            text += (f"; {path.stored_copy_ratio:.2f} of COPY of the rows it stored, the page's properties"
                     f" included ({path.ratios_text(path.stored_copy_ratios)})")  # fmt: skip
        return text

    native, posthog, segment, imported = (result.paths[n] for n in ("native", "posthog", "segment", "import"))
    posthog_js, posthog_js_gzip = result.paths["posthog_js"], result.paths["posthog_js_gzip"]
    rows += [
        (f"Ingest: raw COPY (`psql \\copy`, same table and indexes; {rounds})", f"{result.copy_rate:,.0f} events/s", ""),
        (f"Ingest: HTTP `POST /api/v1/events` (gunicorn as deployed: {result.web_workers} sync workers; batches of 500, {result.senders} connections)",
         f"{native.rate:,.0f} events/s", ratio_text(native)),
        ("Ingest: HTTP PostHog `POST /batch/` (same events, 500 a batch, key in the body)",
         f"{posthog.rate:,.0f} events/s", ratio_text(posthog)),
        ("Ingest: HTTP Segment `POST /v1/batch` (same events, 500 a batch, Basic auth)",
         f"{segment.rate:,.0f} events/s", ratio_text(segment)),
        ("Ingest: HTTP posthog-js `POST /e/` (same events as posthog-js batches them from a page: its browser properties, the key as each event's token; 500 a batch, uncompressed JSON)",
         f"{posthog_js.rate:,.0f} events/s", ratio_text(posthog_js)),
        ("Ingest: HTTP posthog-js `POST /e/?compression=gzip-js` (the same bodies gzipped, as text/plain)",
         f"{posthog_js_gzip.rate:,.0f} events/s", ratio_text(posthog_js_gzip)),
        (f"Import: `import_events` of the same events as native JSONL (one process, {size['ingest'] // result.rounds:,} a round)",
         f"{imported.rate:,.0f} events/s", ratio_text(imported)),
    ]  # fmt: skip
    if result.large_import:
        large = result.large_import
        rows.append(
            (f"Import: `import_events` of {large.events:,} events as one native JSONL file, against COPY of the same rows"
             f" ({statistics.median(large.copy_rates):,.0f} events/s)",
             f"{large.path.rate:,.0f} events/s",
             f"{large.path.ratio:.2f} of COPY (target ≥ {ingest.TARGETS['import']:.2f}; median of {len(large.copy_rates)} rounds: "
             f"{large.path.ratios_text()})")
        )  # fmt: skip
    rows += [
        ("Ingest: rows stored = events accepted, duplicates (" + ", ".join(checked) + ")",
         "; ".join(f"{p.rows:,} = {p.accepted:,}, {p.duplicate_rows}" for p in checked.values()), ""),
        ("Memory: web worker peak RSS during ingest", f"{result.web_peak_rss_mb:.0f} MB", ""),
    ]  # fmt: skip
    database_drop(base_database_url(), BENCH_DB)


def recompute_section(run: Run) -> None:
    size, rows, failures = run.size, run.rows, run.failures
    small_h, large_h, long_h = _histories(size)
    results = recompute.run_sizes(
        histories=[small_h, large_h, long_h], tenants=size["tenants"], new_events=size["new"], keep=large_h,
    )  # fmt: skip
    for history, r in results.items():
        if not r.digests_equal:
            failures.append(f"recompute at {history.label}: incremental != full rebuild in {r.mismatched}")
    big, small, long = results[large_h], results[small_h], results[long_h]
    t = f"{size['tenants']:,} tenants"
    rows += [
        (f"Full recompute: lower bound, one scan `GROUP BY tenant_id` ({big.history:,} events, {t})",
         f"{big.scan_floor_seconds:.2f} s", ""),
        ("Full recompute: one scan at the rollup's grain (tenant, type, day; count, min, max), context",
         f"{big.rollup_grain_seconds:.2f} s", f"{big.rollup_grain_seconds / big.scan_floor_seconds:.1f}x the scan"),
        ("Full recompute: the three rollup grains as bare aggregates, no writes (what any rebuild of them costs), context",
         f"{big.grains_seconds:.2f} s", f"{big.grains_seconds / big.scan_floor_seconds:.1f}x the scan"),
        (f"Full recompute: `recompute_metrics --full` ({big.history:,} events, {t})", f"{big.full.seconds:.2f} s",
         f"{big.full_ratio:.1f}x the lower bound (target ≤ 2); "
         f"{big.full.seconds / big.grains_seconds:.1f}x the three bare grains"),
        (f"Full recompute at {small.history:,} events, for scale", f"{small.full.seconds:.2f} s",
         f"{small.full_ratio:.1f}x its lower bound ({small.scan_floor_seconds:.2f} s)"),
    ]  # fmt: skip
    for r in (small, big, long):
        rows += [
            (f"Incremental: COPY of {r.new_events:,} new events on {r.history:,} of history over {r.days} days"
             f" (median of {r.rounds})",
             f"{r.copy_new_seconds:.2f} s", ""),
            (f"Incremental: recompute folding them ({r.incremental.tenants_written:,} tenants recomputed)",
             f"{r.incremental.seconds:.2f} s", f"{r.incremental_ratio:.2f}x the COPY (target ≤ 1; median of the rounds' ratios)"),
        ]  # fmt: skip

    def rounds_text(r: recompute.RecomputeResult) -> str:
        pairs = zip(r.incremental_rounds, small.incremental_rounds, strict=True)
        return f"median of {r.rounds} side-by-side rounds: " + ", ".join(f"{b / s:.2f}" for b, s in pairs)

    rows += [
        (f"Incremental: history {long.history / small.history:.0f}x longer at the same daily rate ({long.history:,} events over {long.days} days"
         f" / {small.history:,} over {small.days}; {rounds_text(long)})", "",
         f"{recompute.history_growth(small, long):.2f}x (target ≤ 1.3)"),
        (f"Incremental: history {big.history / small.history:.0f}x denser, {big.history / small.history:.0f}x the daily rate ({big.history:,} events / {small.history:,}, both"
         f" over {big.days} days: the busy tenants' windows fill up; {rounds_text(big)})", "",
         f"{recompute.history_growth(small, big):.2f}x (target ≤ 1.3)"),
        ("Incremental: rollup rows (tenant/type/day, 60 days) of the tenants recomputed, "
         f"{small.history:,} / {big.history:,} events of history",
         f"{small.recomputed_rollup_rows:,} / {big.recomputed_rollup_rows:,}",
         f"{big.recomputed_rollup_rows / max(small.recomputed_rollup_rows, 1):.2f}x"),
        ("Incremental: a run with nothing new / the first run of a new day (every window rolls)",
         f"{big.idle.seconds:.2f} s / {big.next_day.seconds:.2f} s", f"at {big.history:,} events"),
        (f"Lifecycle and retention: their statements' share of the full rebuild / an incremental run / a new"
         f" day's run ({big.history:,} events, {t}; timed inside each run)",
         f"{big.full.lifecycle_seconds:.2f} s / {big.incremental.lifecycle_seconds:.3f} s / {big.next_day.lifecycle_seconds:.3f} s",
         f"{big.full.lifecycle_ratio:.3f}x / {big.incremental.lifecycle_ratio:.3f}x / {big.next_day.lifecycle_ratio:.3f}x"
         " the run without them (targets ≤ 1.25 full, ≤ 1.15 incremental)"),
        ("Incremental == full rebuild (rollups, lifecycle and ops_tenant_metrics digests)",
         "yes" if all(r.digests_equal for r in results.values()) else "NO", ""),
        (f"Memory: recompute process peak RSS, full / incremental ({big.history:,} events)",
         f"{big.full.peak_rss_mb:.0f} MB / {big.incremental.peak_rss_mb:.0f} MB", "target ≤ 300 MB"),
    ]  # fmt: skip


def reads_section(run: Run) -> None:
    size, rows, failures, results = run.size, run.rows, run.failures, run.results
    _, large_h, _ = _histories(size)
    # Both databases are served at once and measured slice by slice, so the p99 ratio
    # compares figures taken seconds apart, not minutes (reads.run_side_by_side).
    prepared = [
        _reads_database(size["large"], size["tenants"],
                        keep_name=recompute.database_name(large_h) if large_h in results else None),
        _reads_database(size["few_events"], size["few_tenants"]),
    ]  # fmt: skip
    try:
        many, few = reads.run_side_by_side(
            [(url, _tenants_counted(url)) for url, _ in prepared], duration=size["duration"]
        )
    finally:
        for _, name in prepared:
            database_drop(base_database_url(), name)
    for result in (many, few):
        for figures in result.endpoints.values():
            if figures.errors:
                failures.append(f"reads: {figures.path} had {figures.errors} errors at {result.tenants} tenants")
    floor = many.endpoints["floor"]
    label = f"{many.connections} connections, {many.duration} s, {many.tool}"
    rows.append((f"Reads: `GET /healthz` (trivial Django view, the floor; {label})",
                 f"{floor.rps:,.0f} req/s, p50 {floor.p50_ms:.1f} ms, p99 {floor.p99_ms:.1f} ms", ""))  # fmt: skip
    for name in ("at_risk", "customers", "today", "customer"):
        at_many, at_few = many.endpoints[name], few.endpoints[name]
        if at_many.skipped:
            rows.append((f"Reads: `GET {at_many.path}`", f"skipped: {at_many.skipped}", ""))
            continue
        rows.append(
            (
                f"Reads: `GET {at_many.path}` at {many.tenants:,} tenants",
                f"{at_many.rps:,.0f} req/s, p50 {at_many.p50_ms:.1f} ms, p99 {at_many.p99_ms:.1f} ms",
                f"{at_many.floor_ratio:.2f} of the floor's req/s ("
                + f"target ≥ {READ_TARGETS[name]:.2f}; "
                + f"floor {at_many.floor_rps:,.0f} req/s in the interleaved slices)",
            )
        )
        rows.append(
            (
                f"Reads: `GET {at_few.path}` at {few.tenants:,} tenants",
                f"{at_few.rps:,.0f} req/s, p50 {at_few.p50_ms:.1f} ms, p99 {at_few.p99_ms:.1f} ms",
                f"p99 at {many.tenants:,} / at {few.tenants:,} = {reads.p99_ratio(at_many, at_few):.2f}"
                " (target ≤ 1.3; median of the side-by-side slices' ratios)",
            )
        )
    rows.append(("Memory: web worker peak RSS during the reads", f"{many.web_peak_rss_mb:.0f} MB", ""))


def backtest_section(run: Run) -> None:
    size, rows, failures = run.size, run.rows, run.failures
    # The third history (the daily rate of "small", ten times the days): every as-of date of a
    # 180-day backtest has a full history behind it.
    bt = backtest.run(events=size["large"], tenants=size["tenants"], history_days=size["long_days"])
    if bt.mismatched:
        failures.append(f"backtest: {bt.mismatched} customers scored differently from the live engine on its day")
    rows += [
        (f"Backtest: `backtest_risk --days 180 --step 7` ({bt.dates} dates, {bt.scores:,} scores, {bt.churns} churns;"
         f" {bt.events:,} events over {bt.history_days} days, {bt.tenants:,} tenants)",
         f"{bt.seconds:.2f} s (scoring {bt.scoring_seconds:.2f} s)",
         f"{bt.ratio:.2f}x one full rebuild in the same run ({bt.full.seconds:.2f} s; target ≤ 5)"),
        ("Backtest: its last date's scores = the live engine's on that day", "yes" if not bt.mismatched else "NO", ""),
        ("Memory: backtest process peak RSS", f"{bt.peak_rss_mb:.0f} MB", "target ≤ 500 MB"),
    ]  # fmt: skip
    if bt.day_run_spec is not None and bt.day_run_model is not None:
        rows.append(
            (f"Backtest: a new day's incremental run ({bt.day_run_model.tenants_written:,} tenants), every "
             "customer scored by the adopted churn model",
             f"{bt.day_run_model.seconds:.2f} s (heuristic only: {bt.day_run_spec.seconds:.2f} s)",
             f"{bt.model_scoring_ratio:.2f}x the heuristic's run (target ≤ 1.2)")
        )  # fmt: skip


def citus_section(run: Run) -> None:
    """The same history on plain PostgreSQL and on a three-node cluster on this machine."""
    size, rows, failures = run.size, run.rows, run.failures
    result = citus.run(events=size["citus"], new_events=size["new"], tenants=size["tenants"],
                       ingest_events=size["citus_ingest"])  # fmt: skip
    failures.extend(citus.failures(result))
    rows += citus.rows(result, size["citus_ingest"])


def soak_section(run: Run) -> None:
    """Ingestion at half the measured maximum for ten minutes with the recompute running, then
    sent = stored and the web worker's RSS (make bench only, not bench-quick)."""
    if run.quick:
        return
    rows, failures = run.rows, run.failures
    result = soak.run(soak.SoakPlan(duration=run.soak_seconds))
    failures.extend(f"soak: {problem}" for problem in result.problems())
    rows.append(
        (
            f"Soak: {result.duration_seconds:.0f} s of ingestion at half the measured maximum, recompute running",
            f"{result.achieved_rate:,.0f} events/s (max measured {result.measured_max_rate or 0:,.0f}); "
            f"sent {result.totals.sent:,} = stored {result.rows:,}, duplicates {result.rows - result.distinct_event_ids}",
            f"{result.recomputes} recomputes; incremental = full rebuild: {result.cache_equals_full_rebuild}",
        )
    )
    rows.append(
        (
            "Soak: web worker RSS start → end (peak)",
            f"{result.rss_start_mb:.0f} → {result.rss_end_mb:.0f} MB ({result.rss_peak_mb:.0f})",
            f"growth {result.rss_growth_pct:.0f}% (limit 25%)",
        )
    )


# The sections in the order they run (the reads reuse the recompute's large database).
SECTION_RUNS: dict[str, Callable[[Run], None]] = {
    "ingest": ingest_section,
    "recompute": recompute_section,
    "reads": reads_section,
    "backtest": backtest_section,
    "citus": citus_section,
    "soak": soak_section,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, correctness only (CI)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument(
        "--skip", default="", help="comma-separated sections to skip: ingest,recompute,reads,backtest,citus,soak"
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated sections to run (the others are skipped); BENCHMARKS.md keeps their rows",
    )
    parser.add_argument("--soak-seconds", type=float, default=600.0, help="length of the soak (make bench only)")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if args.only:
        skip |= set(SECTIONS) - set(args.only.split(","))
    run = Run(size=_sizes(args.quick), quick=args.quick, soak_seconds=args.soak_seconds)
    for name in SECTIONS:
        if name not in skip:
            SECTION_RUNS[name](run)
    rows, failures = run.rows, run.failures

    table = ["| measurement | value | ratio |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    header = f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine_description()}."
    print(header)
    print("\n".join(table))
    if failures:
        raise SystemExit("bench correctness checks failed:\n" + "\n".join(failures))
    if not args.no_write and not args.quick:
        path = BASE_DIR / "BENCHMARKS.md"
        ran = set(SECTIONS) - skip
        path.write_text(table_merge(path.read_text(), rows=rows, sections=ran, header=header))


if __name__ == "__main__":
    main()
