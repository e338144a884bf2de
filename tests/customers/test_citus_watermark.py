"""The fold's watermark on Citus: a distributed transaction the coordinator has committed but a
worker has only prepared (the moment between Citus's local commit and its COMMIT PREPARED) must
not be skipped by a fold that runs in that moment.

The moment is held open for real: the coordinator commits a transaction (so its xid is finished
in every snapshot the coordinator takes) and a worker holds that transaction's event row as a
prepared transaction named the way Citus names its own, exactly the state Citus leaves between
the two phases. A thread commits the prepared row a little later, as Citus's second phase would.
"""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
from django.db import connection

from customers.metrics.recompute import metrics_recompute
from tests.customers.conftest import NOW, Ev

pytestmark = [pytest.mark.citus, pytest.mark.django_db(transaction=True)]

# Group 999 is no node of this cluster, so Citus's own recovery leaves the row to this test.
GID = "citus_999_4242_{n}_0"


def _coordinator_xid_committed() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text")
        (xid,) = cursor.fetchone()
    return int(xid)  # the test runs in autocommit: the transaction is committed here


def _worker_for(tenant_id: str) -> tuple[str, int, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.nodename, s.nodeport, s.shard_name FROM citus_shards s "
            "WHERE s.shardid = get_shard_id_for_distribution_column('ops_events', %s)",
            [tenant_id],
        )
        host, port, shard = cursor.fetchone()
    return host, port, shard


def _prepare_on_worker(tenant_id: str, xid: int, gid: str) -> psycopg.Connection:
    host, port, shard = _worker_for(tenant_id)
    worker = psycopg.connect(host=host, port=port, dbname=connection.settings_dict["NAME"], user="postgres")
    with worker.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {shard} (id, event_id, tenant_id, user_id, session_id, event_type, occurred_at, received_at,"
            " metadata, friction_signal, is_real, exclusion_reason, ingest_xid)"
            " VALUES (9000000001, %s, %s, 'u1', 's1', 'INCIDENT_VIEWED', %s, %s, '{}', '', true, '', %s::text::xid8)",
            [str(uuid.uuid4()), tenant_id, NOW, NOW, str(xid)],
        )
        cursor.execute(f"PREPARE TRANSACTION '{gid}'")
    return worker


def _commit_prepared_later(worker: psycopg.Connection, gid: str, delay: float) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        worker.autocommit = True
        worker.execute(f"COMMIT PREPARED '{gid}'")
        worker.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _events_in_rollups(tenant_id: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(value), 0) FROM ops_rollup_tenant_day WHERE tenant_id = %s", [tenant_id])
        return int(cursor.fetchone()[0])


def _one_prepared_row(metrics_db, tenant_id: str, n: int) -> tuple[threading.Thread, int]:
    """A folded event, then a second held prepared on its worker; the committing thread and the
    coordinator xid the held row carries."""
    metrics_db([Ev(tenant_id, "INCIDENT_VIEWED", NOW)])
    metrics_recompute()
    assert _events_in_rollups(tenant_id) == 1
    xid = _coordinator_xid_committed()
    worker = _prepare_on_worker(tenant_id, xid, GID.format(n=n))
    return _commit_prepared_later(worker, GID.format(n=n), delay=1.5), xid


def test_a_fold_in_the_window_waits_and_skips_nothing(metrics_db):
    committer, _ = _one_prepared_row(metrics_db, "acme", 1)
    started = time.monotonic()
    run = metrics_recompute()
    waited = time.monotonic() - started
    committer.join()
    assert run.mode == "incremental"
    assert _events_in_rollups("acme") == 2, "the row committed on the coordinator first was skipped"
    assert waited >= 1.0, "the fold did not wait for the worker's COMMIT PREPARED"
    assert metrics_recompute(full=True).mode == "full"
    assert _events_in_rollups("acme") == 2


def test_without_the_wait_the_row_would_be_lost_for_good(metrics_db, monkeypatch):
    # What the wait prevents, shown on the same cluster: the fold moves its watermark past a row
    # it could not see, and no later incremental run ever folds it; only a full rebuild does.
    from customers.models import MetricsState

    monkeypatch.setattr("core.flavour.CitusFlavour.prepared_transactions_settle", lambda self: 0)
    committer, row_xid = _one_prepared_row(metrics_db, "acme", 2)
    metrics_recompute()
    committer.join()
    if int(MetricsState.objects.get(id=1).watermark_xid) <= row_xid:
        # The snapshot's xmin is server-wide: a transaction of another session (a parallel test
        # worker's) held it below the row, so this run kept the row in its scope and nothing is lost.
        pytest.skip("another session held the server's snapshot horizon below the row; the loss cannot be shown")
    metrics_recompute()
    assert _events_in_rollups("acme") == 1
    metrics_recompute(full=True)
    assert _events_in_rollups("acme") == 2


def test_an_in_doubt_transaction_fails_the_run_and_moves_nothing(metrics_db, settings):
    settings.METRICS_CITUS_SETTLE_SECONDS = 0.3
    metrics_db([Ev("acme", "INCIDENT_VIEWED", NOW)])
    metrics_recompute()
    xid = _coordinator_xid_committed()
    worker = _prepare_on_worker("acme", xid, GID.format(n=3))
    try:
        from core.flavour import ClusterNotSettled
        from customers.models import MetricsState

        before = MetricsState.objects.get(id=1).watermark_xid
        with pytest.raises(ClusterNotSettled, match="still prepared"):
            metrics_recompute()
        assert MetricsState.objects.get(id=1).watermark_xid == before
    finally:
        worker.autocommit = True
        worker.execute(f"COMMIT PREPARED '{GID.format(n=3)}'")
        worker.close()
    metrics_recompute()
    assert _events_in_rollups("acme") == 2
