"""Snapshots read the real PostgreSQL and Redis, and never fail when Redis is missing."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO

import psycopg
import pytest
import redis
import time_machine
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from core.flavour import CITUS, flavour
from events.models import Event
from infra.models import ApiRequestCount, InfraSnapshot
from infra.services import SNAPSHOT_LOCK_KEY, infra_snapshot_take
from infra.tasks import snapshot_infra

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
UNREACHABLE_REDIS = "redis://:secret-password@127.0.0.1:1/0"


def _events(received_at: list[datetime], blob_chars: int = 0) -> None:
    Event.objects.bulk_create(
        Event(
            event_id=uuid.uuid4(),
            tenant_id="acme",
            event_type="LOGIN",
            occurred_at=at,
            received_at=at,
            # Random text, so TOAST compression cannot shrink it.
            metadata={"blob": secrets.token_urlsafe(blob_chars)} if blob_chars else {},
        )
        for at in received_at
    )


def _database_size_now() -> int:
    # What PostgreSQL itself says, summed over the nodes on Citus (the coordinator alone holds only shells).
    sql = (
        "SELECT sum(result::bigint) FROM run_command_on_all_nodes($$SELECT pg_database_size(current_database())$$)"
        if flavour() is CITUS
        else "SELECT pg_database_size(current_database())"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return int(cursor.fetchone()[0])


# Committed rows: sizes are storage, and Citus refuses its size functions inside a transaction that
# has written to several shards (as a test's own transaction would).
@pytest.mark.django_db(transaction=True)
def test_it_reads_the_real_database_and_events_table_sizes():
    with override_settings(INFRA_REDIS_URL=""):
        before = infra_snapshot_take()
        # 3,000 events with ~2 KB of incompressible metadata each: at least 6 MB more in ops_events.
        _events([datetime.now(UTC)] * 3000, blob_chars=1500)
        after = infra_snapshot_take()
    db_size_now = _database_size_now()
    assert before.db_size_bytes > 1024 * 1024
    assert after.events_table_bytes - before.events_table_bytes >= 6_000_000
    # The database grew by at least the events table's growth, and the snapshot is what PostgreSQL says.
    assert after.db_size_bytes - before.db_size_bytes >= 6_000_000
    assert after.db_size_bytes <= db_size_now
    assert after.events_row_estimate == 3000
    assert after.events_received_24h == 3000


def test_it_reads_the_real_redis_memory(redis_url):
    client = redis.Redis.from_url(redis_url)
    key = f"infra-test-{uuid.uuid4()}"
    try:
        with override_settings(INFRA_REDIS_URL=redis_url):
            before = infra_snapshot_take()
            client.set(key, b"x" * (4 * 1024 * 1024))
            after = infra_snapshot_take()
    finally:
        client.delete(key)
    maxmemory = int(client.config_get("maxmemory")["maxmemory"])
    assert before.redis_reason == "" and after.redis_reason == ""
    assert before.redis_used_memory_bytes > 0
    # A 4 MiB value is at least 4 MiB more used memory (other clients may add a little).
    assert after.redis_used_memory_bytes - before.redis_used_memory_bytes >= 4 * 1024 * 1024
    assert after.redis_maxmemory_bytes == (maxmemory or None)


def test_it_records_a_snapshot_with_a_reason_when_redis_is_unreachable():
    with override_settings(INFRA_REDIS_URL=UNREACHABLE_REDIS):
        snapshot = infra_snapshot_take()
    assert snapshot is not None
    assert snapshot.redis_used_memory_bytes is None and snapshot.redis_maxmemory_bytes is None
    assert "127.0.0.1:1/0 did not answer" in snapshot.redis_reason
    assert "secret-password" not in snapshot.redis_reason
    assert snapshot.db_size_bytes > 0


def test_it_records_why_redis_is_empty_when_not_configured():
    with override_settings(INFRA_REDIS_URL=""):
        snapshot = infra_snapshot_take()
    assert snapshot.redis_used_memory_bytes is None
    assert "not configured" in snapshot.redis_reason


def test_the_task_succeeds_without_redis_and_skips_a_duplicate_run():
    with override_settings(INFRA_REDIS_URL=UNREACHABLE_REDIS):
        first = snapshot_infra.apply()
        second = snapshot_infra.apply()
    assert first.successful() and second.successful()
    assert InfraSnapshot.objects.filter(pk=first.result).exists()
    # The second run found a snapshot younger than 10 minutes and took none.
    assert second.result is None
    assert InfraSnapshot.objects.count() == 1


def test_the_command_takes_a_snapshot_now():
    out = StringIO()
    with override_settings(INFRA_REDIS_URL=""):
        call_command("snapshot_infra", stdout=out)
    assert InfraSnapshot.objects.count() == 1
    assert "database size" in out.getvalue()
    assert "not configured" in out.getvalue()


@time_machine.travel(NOW, tick=False)
@pytest.mark.django_db(transaction=True)
def test_it_counts_events_and_api_requests_of_the_last_24_hours():
    _events(
        [
            NOW - timedelta(hours=23, minutes=59),  # in
            NOW - timedelta(hours=1),  # in
            NOW - timedelta(seconds=1),  # in
            NOW - timedelta(hours=24, seconds=1),  # out: older than 24 h
            NOW - timedelta(days=3),  # out
        ]
    )
    this_hour = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    ApiRequestCount.objects.bulk_create(
        [
            ApiRequestCount(hour=this_hour - timedelta(hours=24), count=10),  # in: first whole hour of the 24
            ApiRequestCount(hour=this_hour - timedelta(hours=1), count=5),  # in
            ApiRequestCount(hour=this_hour, count=1000),  # out: still being counted
            ApiRequestCount(hour=this_hour - timedelta(hours=25), count=7),  # out
            ApiRequestCount(hour=this_hour - timedelta(days=91), count=3),  # out, and past retention
        ]
    )
    with override_settings(INFRA_REDIS_URL=""):
        snapshot = infra_snapshot_take()
    assert snapshot.events_received_24h == 3
    assert snapshot.api_requests_24h == 15
    assert snapshot.taken_at == NOW
    # Counter rows older than 90 days are pruned.
    assert not ApiRequestCount.objects.filter(hour__lt=NOW - timedelta(days=90)).exists()
    assert ApiRequestCount.objects.count() == 4


def test_it_takes_no_snapshot_while_another_is_being_taken():
    # Another process holds the snapshot lock (a second beat run, or the command).
    settings_dict = connection.settings_dict
    other = psycopg.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"],
        password=settings_dict["PASSWORD"],
        host=settings_dict["HOST"],
        port=settings_dict["PORT"] or None,
        autocommit=True,
    )
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [SNAPSHOT_LOCK_KEY])
        with override_settings(INFRA_REDIS_URL=""):
            assert infra_snapshot_take() is None
        assert InfraSnapshot.objects.count() == 0
        other.execute("SELECT pg_advisory_unlock(%s)", [SNAPSHOT_LOCK_KEY])
        with override_settings(INFRA_REDIS_URL=""):
            assert infra_snapshot_take() is not None
    finally:
        other.close()


@pytest.mark.not_on_citus(
    "reads one server's EXPLAIN of the BRIN index; on Citus the index lives on the shards, summarised by autosummarize there"
)
def test_the_24_hour_event_count_can_use_the_received_at_brin_index():
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT count(*) FROM ops_events WHERE received_at >= %s AND received_at < %s",
            [NOW - timedelta(hours=24), NOW],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "ops_events_received_brin" in plan


def _heap_blocks_read_for_last_day(now: datetime) -> int:
    with transaction.atomic(), connection.cursor() as cursor:  # SET LOCAL needs a transaction
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM ops_events WHERE received_at >= %s AND received_at < %s",
            [now - timedelta(hours=24), now],
        )
        plan = cursor.fetchone()[0][0]["Plan"]
        cursor.execute("SET LOCAL enable_seqscan = on")

    def heap_blocks(node: dict) -> int:
        own = node.get("Lossy Heap Blocks", 0) + node.get("Exact Heap Blocks", 0)
        return own + sum(heap_blocks(child) for child in node.get("Plans", []))

    return heap_blocks(plan)


@pytest.mark.not_on_citus(
    "summarises the coordinator's BRIN index and reads its EXPLAIN; the shards' indexes are the workers'"
)
@pytest.mark.django_db(transaction=True)
@time_machine.travel(NOW, tick=False)
def test_the_snapshot_summarises_the_brin_index_so_the_count_reads_only_the_last_day():
    # Rolled-back inserts of earlier tests leave dead tuples and free space that new rows
    # would fill out of order; a fresh heap makes the physical order the arrival order.
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE ops_events")
        # A VACUUM summarises new ranges too, and autovacuum starts one after 1,000 inserted rows whenever it
        # wakes: off for this table while the test reads the index before and after the snapshot's summary.
        cursor.execute("ALTER TABLE ops_events SET (autovacuum_enabled = off)")
    try:
        # 7 days of events in arrival order, ~1 KB each: about 7 MB, 900 pages, 7 BRIN ranges;
        # events 6000..6999 are in the last 24 hours.
        start = NOW - timedelta(days=7)
        _events([start + timedelta(days=7) * i / 7000 for i in range(7000)], blob_chars=900)
        # New ranges are not summarised yet: the index cannot skip anything, all ~7 ranges are read.
        unsummarised = _heap_blocks_read_for_last_day(NOW)
        assert unsummarised >= 6 * 128
        with override_settings(INFRA_REDIS_URL=""):
            snapshot = infra_snapshot_take()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE ops_events RESET (autovacuum_enabled)")
    assert snapshot.events_received_24h == 1000
    # Summarised: the last day's ~130 pages, rounded out to whole 128-page ranges (at most 2, plus
    # the unsummarised tail range), instead of the whole table.
    summarised = _heap_blocks_read_for_last_day(NOW)
    assert summarised <= 3 * 128
    assert summarised < unsummarised / 2
