"""Write the local ``.env`` on the first ``make run``: a generated SECRET_KEY and DEBUG=1.

With it the README's ``python manage.py ...`` commands work outside ``make run``
(settings read ``.env``, and refuse to start without a SECRET_KEY when DEBUG is
off). Standard library only: it runs before settings can load. An existing file is
the founder's and is never touched.

    python -m opsconsole.dotenv [PATH]
"""

from __future__ import annotations

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


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else BASE_DIR / ".env"
    if dotenv_write_first_run(path):
        print(f"Wrote {path} (a generated SECRET_KEY, DEBUG=1 for the local console).")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
