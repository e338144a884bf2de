"""An upgrade under load (issue 19): migrations run against a database holding events while
ingestion keeps going. Nothing accepted is lost, clients see nothing worse than 503 +
Retry-After. The two migrations (a new column on ops_events, an index built concurrently)
live in tests/upgrade_app, installed only by tests/upgrade_settings.py. *process*"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import psycopg
import pytest

from events.emitter import OpsEmitter
from tests.cluster import postgres_bin_dir, private_cluster
from tests.conftest import skip_or_fail
from tests.processes import BASE_DIR, gunicorn, manage, project_env

pytestmark = pytest.mark.slow

EVENTS = 8000
AFTER_MIGRATION = 500
MAX_EVENTS = 200_000  # a migration that never ends fails the test instead of hanging it
INDEX_VALID_SQL = """
SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'ops_events_upgrade_note'
"""


def test_migrating_a_database_under_ingestion_loses_nothing_and_answers_at_worst_503():
    if postgres_bin_dir() is None:
        skip_or_fail("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with private_cluster() as cluster:
        cluster.psql("CREATE DATABASE ops")
        url = cluster.url("ops")
        manage(["migrate", "--noinput", "-v", "0"], DATABASE_URL=url)
        key = manage(["create_api_key", "upgrade", "--scope", "ingest"], DATABASE_URL=url).strip().splitlines()[-1]
        with gunicorn(DATABASE_URL=url, INGEST_RATE_LIMIT_PER_MINUTE="0") as web:
            emitter = OpsEmitter(web, key, batch_size=100, backoff_base=0.2, backoff_max=2.0, max_retries=30)
            sent: list[str] = []
            migrated = threading.Event()
            done = threading.Event()

            def stream() -> None:
                # Events keep arriving until the migration has finished and AFTER_MIGRATION more went
                # out, however long the migration takes on this machine.
                index = 0
                while not (migrated.is_set() and index >= EVENTS) and index < MAX_EVENTS:
                    sent.append(emitter.login(tenant_id=f"t{index % 25}", user_id=f"u{index % 400}"))
                    index += 1
                    if index % 100 == 0:
                        time.sleep(0.03)
                for extra in range(AFTER_MIGRATION):
                    sent.append(emitter.login(tenant_id=f"t{extra % 25}", user_id=f"u{extra % 400}"))
                emitter.flush()
                done.set()

            sender = threading.Thread(target=stream)
            sender.start()
            while emitter.sent < 1000:
                time.sleep(0.05)
            before = emitter.sent
            # The upgrade, exactly as docs/DEPLOY.md says: migrate with the new code in place.
            migrate = subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "upgrade_app"],
                cwd=BASE_DIR,
                env=project_env(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="tests.upgrade_settings"),
                capture_output=True,
                text=True,
                timeout=600,
            )
            during = emitter.sent
            migrated.set()
            sender.join(timeout=300)
            assert migrate.returncode == 0, migrate.stderr
            assert done.is_set(), f"the stream did not finish: {emitter.attempts}"
            assert before < during < emitter.sent, "the migration did not run while events were arriving"

        # Nothing worse than a 503 (which the emitter retried with the same ids).
        assert set(emitter.attempts) <= {"200", "503"}, emitter.attempts
        assert emitter.lost == [] and emitter.pending == 0
        with psycopg.connect(cluster.conninfo("ops")) as conn:
            rows, distinct = conn.execute("SELECT count(*), count(DISTINCT event_id) FROM ops_events").fetchone()
            assert rows == distinct == len(set(sent)) == len(sent) >= EVENTS
            assert conn.execute(INDEX_VALID_SQL).fetchone() == (True,)
            columns = {
                row[0]
                for row in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'ops_events'"
                )
            }
            assert "upgrade_note" in columns
            # The project's own graph never saw the test migrations.
            assert conn.execute("SELECT count(*) FROM django_migrations WHERE app = 'upgrade_app'").fetchone()[0] == 2
        plan = manage(["showmigrations", "--plan"], DATABASE_URL=url)
        assert "upgrade_app" not in plan
