"""mypy against a checked-in baseline that may only shrink.

``python -m tools.typecheck`` runs mypy (settings in pyproject.toml) over the project's apps and
compares its errors with ``mypy-baseline.txt``. An error the baseline does not hold fails (exit 1);
so does a baseline entry that no longer occurs, so that every fix is written down and the baseline
only shrinks (``--update`` rewrites it from the run). Line numbers are left out of the comparison,
so moving code never changes the baseline; one entry per occurrence.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "mypy-baseline.txt"
PACKAGES = ("core", "events", "infra", "customers", "playbooks", "validation", "opsconsole")
# "path/to/file.py:123: error: message  [code]" (notes and the summary line are not errors).
ERROR_LINE = re.compile(r"^(?P<path>[^:]+\.py):\d+(?::\d+)?: error: (?P<message>.*)$")


def mypy_errors() -> Counter[str]:
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-color-output", "--no-error-summary", *PACKAGES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode not in (0, 1):  # 2: mypy itself failed (a crash, a bad configuration)
        sys.stderr.write(run.stdout + run.stderr)
        raise SystemExit(f"mypy did not run (exit {run.returncode})")
    found: Counter[str] = Counter()
    for line in run.stdout.splitlines():
        match = ERROR_LINE.match(line)
        if match:
            found[f"{match['path']}: {match['message']}"] += 1
    return found


def baseline_read() -> Counter[str]:
    if not BASELINE.exists():
        return Counter()
    return Counter(line for line in BASELINE.read_text().splitlines() if line and not line.startswith("#"))


def baseline_write(errors: Counter[str]) -> None:
    header = "# mypy errors accepted for now (python -m tools.typecheck --update); this file may only shrink.\n"
    BASELINE.write_text(header + "".join(f"{entry}\n" for entry in sorted(errors.elements())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite the baseline from this run")
    args = parser.parse_args(argv)
    found, accepted = mypy_errors(), baseline_read()
    if args.update:
        grown = found - accepted
        baseline_write(found)
        print(f"mypy baseline: {sum(found.values())} errors written ({sum(grown.values())} not in the old one).")
        return 0
    new, fixed = found - accepted, accepted - found
    for entry in sorted(new.elements()):
        print(f"new mypy error: {entry}")
    for entry in sorted(fixed.elements()):
        print(f"fixed, take it out of the baseline: {entry}")
    total = sum(found.values())
    if new or fixed:
        print(
            f"mypy: {sum(new.values())} new, {sum(fixed.values())} fixed against the baseline ({total} now). "
            "Fix the new ones; record fixes with `python -m tools.typecheck --update`."
        )
        return 1
    print(f"mypy: {total} errors, all in the baseline.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
