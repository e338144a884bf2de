"""Environment files with their secrets generated, before settings can load (standard library only).

The first ``make run`` writes the local ``.env``: a generated SECRET_KEY and DEBUG=1, so the
README's ``python manage.py ...`` commands work outside ``make run``. An existing file is the
founder's and is never touched.

    python -m opsconsole.dotenv [PATH]

Production (docs/DEPLOY.md, step 3; deploy/smoke.sh does the same): fill in the empty secret
lines of the copied ``deploy/systemd/opsconsole.env`` (a SECRET_KEY, and the ``/metrics`` bearer
token the settings insist on when DEBUG is off) and write that token where the shipped Prometheus
configuration reads it. A value already there is kept, so running it again changes nothing.

    python -m opsconsole.dotenv --production /etc/opsconsole/opsconsole.env \
        --metrics-token-file /etc/prometheus/opsconsole_metrics_token
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

FIRST_RUN_ENV = """\
# Written by the first `make run` for the local console; edit freely (never overwritten).
# Production takes its settings from deploy/systemd/opsconsole.env instead (docs/DEPLOY.md).
DEBUG=1
SECRET_KEY={secret_key}
"""


def dotenv_write_first_run(path: Path) -> bool:
    """Create ``path`` with a fresh SECRET_KEY and DEBUG=1; False (and no change) if it exists."""
    try:
        with open(path, "x", encoding="utf-8") as handle:  # "x": never overwrite, even racing
            handle.write(FIRST_RUN_ENV.format(secret_key=secrets.token_urlsafe(64)))
    except FileExistsError:
        return False
    path.chmod(0o600)  # it holds a secret
    return True


# The secrets of a production environment file, each generated when its line is empty.
GENERATED_SECRETS: dict[str, int] = {"SECRET_KEY": 64, "METRICS_BEARER_TOKEN": 32}  # name: random bytes


def env_file_secrets_fill(path: Path, *, metrics_token_file: Path | None = None) -> list[str]:
    """Give every empty ``NAME=`` line of GENERATED_SECRETS in ``path`` a generated value (a
    commented or missing one is added); returns the names filled. Values already set are kept.
    With ``metrics_token_file``, writes the file's METRICS_BEARER_TOKEN there (mode 0640, for the
    Prometheus scrape's ``credentials_file``)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    filled: list[str] = []
    values: dict[str, str] = {}
    for name, size in GENERATED_SECRETS.items():
        pattern = re.compile(rf"^\s*#?\s*{name}=(.*)$")
        matches = [i for i, line in enumerate(lines) if pattern.match(line)]
        uncommented = [i for i in matches if not lines[i].lstrip().startswith("#")]
        index = next(iter(uncommented or matches), None)
        current = pattern.match(lines[index]) if index is not None else None
        if index is not None and current is not None and not lines[index].lstrip().startswith("#"):
            value = current.group(1).strip()
            if value:
                values[name] = value
                continue
        values[name] = secrets.token_urlsafe(size)
        filled.append(name)
        if index is None:
            lines.append(f"{name}={values[name]}")
        else:
            lines[index] = f"{name}={values[name]}"
    if filled:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        path.chmod(path.stat().st_mode & 0o770)  # it holds secrets: nothing for other users
    if metrics_token_file is not None:
        descriptor = os.open(metrics_token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(values["METRICS_BEARER_TOKEN"] + "\n")
    return filled


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m opsconsole.dotenv", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", type=Path, default=BASE_DIR / ".env")
    parser.add_argument("--production", action="store_true", help="fill in a copied deploy/systemd/opsconsole.env")
    parser.add_argument("--metrics-token-file", type=Path, help="write the /metrics token here for Prometheus")
    options = parser.parse_args(argv)
    if options.production:
        filled = env_file_secrets_fill(options.path, metrics_token_file=options.metrics_token_file)
        print(f"{options.path}: generated {', '.join(filled) or 'nothing (every secret was already set)'}.")
        if options.metrics_token_file:
            print(f"The /metrics token is in {options.metrics_token_file} for Prometheus (credentials_file).")
        return 0
    if dotenv_write_first_run(options.path):
        print(f"Wrote {options.path} (a generated SECRET_KEY, DEBUG=1 for the local console).")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
