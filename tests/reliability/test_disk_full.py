"""A full disk and a stopped server, each with its own 503, and /readyz failing on both. *process*

A private cluster (tests/cluster.py) keeps ops_events in a tablespace on a 4 MB tmpfs;
ingestion through gunicorn fills it. The answer must name the disk, not "the database
is unavailable", and stay a 503 + Retry-After; accepted events stay stored.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.cluster import postgres_bin_dir, private_cluster
from tests.conftest import skip_or_fail
from tests.processes import gunicorn, manage

pytestmark = pytest.mark.slow


def _post(url: str, key: str, events: list[dict]) -> tuple[int, dict, str | None]:
    request = urllib.request.Request(
        url + "/api/v1/events",
        data=json.dumps({"events": events}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}"), exc.headers.get("Retry-After")


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _small_volume() -> Path:
    mount_point = Path(tempfile.mkdtemp(prefix="opsconsole-small-disk-"))
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], capture_output=True)
    if result.returncode != 0:
        mount_point.rmdir()
        skip_or_fail(f"cannot mount a small tmpfs to fill (needs root): {result.stderr.decode().strip()}")
    if os.geteuid() == 0:
        shutil.chown(mount_point, "postgres", "postgres")
    return mount_point


def test_a_full_disk_and_a_stopped_server_each_get_their_own_503():
    if postgres_bin_dir() is None or shutil.which("mount") is None:
        skip_or_fail("PostgreSQL server binaries or mount are not available")
    volume = _small_volume()
    try:
        with private_cluster() as cluster:
            cluster.psql("CREATE DATABASE ops")
            cluster.psql(f"CREATE TABLESPACE small LOCATION '{volume}'")
            manage(["migrate", "--noinput", "-v", "0"], DATABASE_URL=cluster.url("ops"))
            cluster.psql("ALTER TABLE ops_events SET TABLESPACE small", database="ops")
            key = manage(["create_api_key", "disk", "--scope", "ingest"], DATABASE_URL=cluster.url("ops"))
            key = key.strip().splitlines()[-1]
            accepted: list[str] = []
            with gunicorn(
                DATABASE_URL=cluster.url("ops"),
                INGEST_RATE_LIMIT_PER_MINUTE="0",
                DATABASE_WRITE_FAILURE_FILE=str(volume.parent / f"{volume.name}-write-failure.json"),
            ) as url:
                status, body, retry_after = 200, {}, None
                for _ in range(200):  # 4 MB fills after a few dozen batches
                    events = [
                        {"event_id": str(uuid.uuid4()), "tenant_id": "acme", "event_type": "LOGIN"}
                        | {"metadata": {"pad": secrets.token_urlsafe(6000)}}  # random: TOAST cannot compress it
                        for _ in range(50)
                    ]
                    status, body, retry_after = _post(url, key, events)
                    if status != 200:
                        break
                    accepted += [event["event_id"] for event in events]
                assert status == 503, (status, body)
                assert body == {
                    "detail": "The database server's disk is full; nothing was stored. Retry once space has been freed.",
                    "reason": "disk_full",
                }
                assert retry_after == "60"
                assert accepted, "the disk was full before anything was stored"
                stored = cluster.psql("SELECT count(*) FROM ops_events", database="ops")
                assert int(stored) == len(accepted)
                # The database answers, but nothing can be stored: /readyz takes the node out, naming the disk.
                ready_status, ready = _get(url + "/readyz")
                assert ready_status == 503 and ready["checks"]["database"] == {"ok": True}, ready
                assert ready["checks"]["database_writable"]["reason"] == "disk_full", ready

                cluster.stop()
                status, body, retry_after = _post(url, key, [{"event_id": str(uuid.uuid4()), "event_type": "LOGIN"}])
                assert (status, body["reason"], retry_after) == (503, "connection_lost", "5")
                ready_status, ready = _get(url + "/readyz")
                assert ready_status == 503 and ready["checks"]["database"]["reason"] == "connection_lost"
    finally:
        subprocess.run(["umount", str(volume)], check=False)
        volume.rmdir()
