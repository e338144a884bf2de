"""``manage.py import_events``: PostHog and Segment JSONL and CSV, each imported twice
(idempotent), a crash in the middle (resumed), --dry-run changing nothing, and day
rollups that cover the imported history."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from customers.metrics.recompute import metrics_recompute
from events.models import Event, ImportRun, UserAccount
from tests.processes import BASE_DIR, database_url, project_env

pytestmark = [pytest.mark.default_install, pytest.mark.django_db]
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)


def _run(*args: str) -> str:
    out = StringIO()
    call_command("import_events", *args, "--no-progress", stdout=out)
    return out.getvalue()


def _posthog_lines() -> list[dict[str, Any]]:
    lines = []
    for i in range(30):
        lines.append(
            {
                "uuid": str(uuid.UUID(int=i + 1)),
                "event": "LOGIN" if i % 3 else "$pageview",
                "distinct_id": f"u{i % 5}",
                "timestamp": (START + timedelta(hours=i)).isoformat(),
                "properties": {"$groups": {"company": "acme"}} if i % 5 else {"$current_url": "https://x"},
            }
        )
    return lines


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_a_posthog_export_imports_once_and_a_second_run_stores_nothing(tmp_path):
    path = _write_jsonl(tmp_path / "posthog.jsonl", _posthog_lines())
    first = _run(path, "--format", "posthog")
    assert "Rows: 30; stored 30, already there 0, rejected 0, of them parked 10." in first
    assert Event.objects.count() == 30
    assert Event.objects.filter(exclusion_reason="unregistered", event_type="$pageview").count() == 10
    # u0 never carries a group in the file: its events stay without an account.
    assert set(Event.objects.filter(user_id="u0").values_list("tenant_id", flat=True)) == {""}
    assert set(Event.objects.exclude(user_id="u0").values_list("tenant_id", flat=True)) == {"acme"}
    second = _run(path, "--format", "posthog")
    assert "Rows: 30; stored 0, already there 30, rejected 0" in second
    assert Event.objects.count() == 30


def test_a_segment_archive_imports_with_its_memberships_and_stores_nothing_twice(tmp_path):
    messages = [
        {"type": "group", "userId": "s1", "groupId": "globex", "traits": {"name": "Globex"}, "messageId": "g1",
         "timestamp": START.isoformat()},
        {"type": "identify", "userId": "s1", "traits": {"email": "s1@globex.com"}, "messageId": "i1",
         "timestamp": START.isoformat()},
    ]  # fmt: skip
    messages += [
        {
            "type": "track",
            "userId": "s1",
            "event": "Order Completed" if i % 2 else "LOGIN",
            "messageId": f"t{i}",
            "timestamp": (START + timedelta(minutes=i + 1)).isoformat(),
            "context": {"userAgent": "Mozilla/5.0"},
        }
        for i in range(10)
    ]
    path = _write_jsonl(tmp_path / "segment.jsonl", messages)
    assert "stored 12, already there 0, rejected 0, of them parked 7." in _run(path, "--format", "segment")
    assert set(Event.objects.values_list("tenant_id", flat=True)) == {"globex"}  # group-less tracks attributed
    assert UserAccount.objects.get(user_id="s1").tenant_id == "globex"
    assert "stored 0, already there 12" in _run(path, "--format", "segment")


def test_native_lines_without_an_event_id_are_stored_once_however_often_the_file_is_imported(tmp_path):
    lines = [
        {"tenant_id": "acme", "user_id": "u1", "event_type": "LOGIN", "occurred_at": START.isoformat()},
        {"tenant_id": "acme", "user_id": "u2", "event_type": "LOGIN", "occurred_at": START.isoformat()},
        {"tenant_id": "acme", "user_id": "u1", "event_type": "LOGIN", "occurred_at": START.isoformat(),
         "event_id": None},  # null, as some exporters write it: the same as absent
    ]  # fmt: skip
    path = _write_jsonl(tmp_path / "native.jsonl", [*lines[:2], {**lines[0], "metadata": {"plan": "pro"}}])
    for _ in range(3):
        _run(path)
    assert Event.objects.count() == 3
    assert sorted(Event.objects.values_list("user_id", flat=True)) == ["u1", "u1", "u2"]
    # The same content under a null event_id is the same event: nothing more is stored.
    _run(_write_jsonl(tmp_path / "again.jsonl", [lines[2]]))
    assert Event.objects.count() == 3


def test_a_csv_imports_with_a_column_map_and_a_second_run_stores_nothing(tmp_path):
    path = tmp_path / "history.csv"
    rows = ["when,who,account,what,plan"]
    rows += [f"{(START + timedelta(days=d)).isoformat()},u{d % 3},acme,LOGIN,pro" for d in range(12)]
    rows.append('2026-01-01T00:00:00+00:00,u9,"acme, inc",NOT_A_TIME_ISSUE,"free"')
    path.write_text("\n".join(rows) + "\n")
    args = [str(path), "--map", "occurred_at=when", "--map", "user_id=who", "--map", "tenant_id=account"]
    args += ["--map", "event_type=what"]
    first = _run(*args)
    assert "Rows: 13; stored 13, already there 0, rejected 0, of them parked 1." in first
    assert Event.objects.filter(tenant_id="acme, inc").get().event_type == "NOT_A_TIME_ISSUE"
    assert Event.objects.filter(tenant_id="acme").first().metadata == {"plan": "pro"}
    assert "stored 0, already there 13" in _run(*args)
    with pytest.raises(CommandError, match="does not have: nope"):
        _run(str(path), "--map", "user_id=nope")


def test_a_dry_run_prints_what_it_would_do_and_changes_nothing(tmp_path):
    path = _write_jsonl(tmp_path / "posthog.jsonl", _posthog_lines())
    out = _run(path, "--format", "posthog", "--dry-run")
    assert "Dry run: nothing was stored. Rows: 30." in out
    assert "Accounts found: 1; rows with no account: 6." in out
    assert "  $pageview: 10" in out
    assert f"First event: {START.isoformat()}" in out
    assert f"last event: {(START + timedelta(hours=29)).isoformat()}" in out
    assert not Event.objects.exists()
    assert not ImportRun.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM customers_tenant")
        assert cursor.fetchone()[0] == 0


def test_a_line_that_is_not_json_is_counted_and_the_rest_imported(tmp_path):
    path = tmp_path / "native.jsonl"
    good = {"event_id": str(uuid.uuid4()), "user_id": "n1", "event_type": "LOGIN", "occurred_at": START.isoformat()}
    path.write_text(json.dumps(good) + "\n{not json\n" + '{"event_type": "LOGIN", "event_type": "X", "user_id": "n"}\n')
    out = _run(str(path))
    assert "Rows: 3; stored 1, already there 0, rejected 2" in out
    assert "appears twice" in out


@pytest.mark.django_db(transaction=True)  # the fold reads committed transactions only, as in production
def test_day_rollups_cover_the_imported_history_the_metrics_read(tmp_path):
    days = 40
    rows = [
        {"event_id": str(uuid.uuid4()), "tenant_id": "acme", "user_id": "u1", "event_type": "LOGIN",
         "occurred_at": (datetime.now(UTC) - timedelta(days=d, hours=1)).isoformat()}
        for d in range(days)
    ]  # fmt: skip
    metrics_recompute()  # a console that has been running: the import lands after its last fold
    _run(_write_jsonl(tmp_path / "native.jsonl", rows))
    metrics_recompute()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT day), sum(value) FROM ops_rollup_tenant_day WHERE tenant_id = 'acme'")
        assert cursor.fetchone() == (days, days)


@pytest.mark.django_db(transaction=True)
def test_an_import_killed_mid_way_resumes_after_its_last_committed_batch(tmp_path):
    rows = [
        {"event_id": str(uuid.UUID(int=10**6 + i)), "tenant_id": f"t{i % 7}", "user_id": f"u{i % 50}",
         "event_type": "LOGIN", "occurred_at": (START + timedelta(seconds=i)).isoformat()}
        for i in range(40_000)
    ]  # fmt: skip
    path = _write_jsonl(tmp_path / "big.jsonl", rows)
    env = project_env(DATABASE_URL=database_url())
    command = [sys.executable, "manage.py", "import_events", path, "--batch-rows", "500", "--no-progress"]
    process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not ImportRun.objects.filter(rows_done__gt=0).exists():
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)  # a crash: no cleanup, no final checkpoint
    process.wait()
    run = ImportRun.objects.get()
    assert run.finished_at is None
    assert 0 < run.rows_done < 40_000, "the import finished before it could be killed"
    assert Event.objects.count() == run.rows_done  # the checkpoint committed with its batch

    out = StringIO()
    call_command("import_events", path, "--no-progress", stdout=out)
    assert f"Resumed after row {run.rows_done}" in out.getvalue()
    assert f"stored {40_000 - run.rows_done}, already there 0" in out.getvalue()
    assert Event.objects.count() == 40_000
    assert ImportRun.objects.get().finished_at is not None


def _segment_and_native_mix() -> list[dict[str, Any]]:
    """Messages whose classification depends on earlier batches: a group call, then group-less
    tracks; an identify with an internal email, then that user's tracks; a test tenant and an
    internal user id set up before the import; plain tracks between them."""
    t = START
    messages: list[dict[str, Any]] = []

    def track(user: str, n: int, **context: Any) -> None:
        for i in range(n):
            messages.append({"type": "track", "event": "LOGIN", "userId": user, "messageId": f"{user}-{len(messages)}",
                             "timestamp": (t + timedelta(minutes=len(messages))).isoformat(),
                             "context": context, "properties": {"i": i}})  # fmt: skip

    track("plain", 7, groupId="acme")
    messages.append(
        {"type": "group", "userId": "g1", "groupId": "globex", "messageId": "grp", "timestamp": t.isoformat()}
    )
    track("g1", 6)  # no group on the call: the membership above attributes them
    messages.append({"type": "identify", "userId": "team", "traits": {"email": "me@us.example"}, "messageId": "idn",
                     "timestamp": t.isoformat()})  # fmt: skip
    track("team", 5, groupId="acme")  # internal by the identify's domain
    track("founder", 4, groupId="acme")  # internal by a user-id rule
    track("tester", 4, groupId="sandbox")  # a test tenant
    track("plain", 9, groupId="acme")
    return messages


def _stored() -> list[tuple[str, str, bool, str]]:
    return sorted(Event.objects.values_list("user_id", "tenant_id", "is_real", "exclusion_reason").order_by())


@pytest.mark.django_db(transaction=True)  # the preparation thread reads committed rules, as in production
@pytest.mark.parametrize("batch_rows", [2, 1])
def test_batches_classified_in_the_preparation_thread_match_those_classified_at_their_store(
    tmp_path, monkeypatch, batch_rows
):
    """The oracle is the same import with every batch attributed and classified inside its
    store's transaction (``validated_classify`` disabled), batch by batch as before. Every batch
    is classified ahead, in the preparation thread, except the first, the identify with an email
    and the batch after it; g1's group-less tracks right after its group call need that call's
    membership while it is still being stored."""
    from customers.models import Tenant
    from events.ingestion import importer
    from events.models import InternalUserRule, UserProfile

    InternalUserRule.objects.create(kind="user_id", value="founder")
    InternalUserRule.objects.create(kind="email_domain", value="us.example")
    Tenant.objects.create(tenant_id="sandbox", kind="test")
    path = _write_jsonl(tmp_path / "segment.jsonl", _segment_and_native_mix())
    ahead: list[int] = []
    real_classify = importer.validated_classify

    def counting(batch: Any, **kwargs: Any) -> None:
        ahead.append(len(batch.rows))
        real_classify(batch, **kwargs)

    monkeypatch.setattr(importer, "validated_classify", counting)
    outcome = importer.events_import(path=path, file_format="segment", batch_rows=batch_rows)
    assert (outcome.rows, outcome.accepted, outcome.rejected) == (37, 37, 0)
    threaded = _stored()
    Event.objects.all().delete()
    ImportRun.objects.all().delete()
    UserAccount.objects.all().delete()
    UserProfile.objects.all().delete()
    assert len(ahead) >= 37 // batch_rows - 3, "batches were classified at their store instead of ahead"
    assert threaded == _stored_oracle(path, batch_rows, monkeypatch, importer)
    facts = set(threaded)
    assert ("g1", "globex", True, "") in facts
    assert ("team", "acme", False, "internal_user") in facts
    assert ("founder", "acme", False, "internal_user") in facts
    assert ("tester", "sandbox", False, "test_traffic") in facts
    assert ("plain", "acme", True, "") in facts


def _stored_oracle(path: str, batch_rows: int, monkeypatch: Any, importer: Any) -> list[tuple[str, str, bool, str]]:
    from events.models import UserProfile

    monkeypatch.setattr(importer, "validated_classify", lambda batch, **kwargs: None)
    importer.events_import(path=path, file_format="segment", batch_rows=batch_rows)
    rows = _stored()
    Event.objects.all().delete()
    ImportRun.objects.all().delete()
    UserAccount.objects.all().delete()
    UserProfile.objects.all().delete()
    return rows


def test_inside_a_callers_transaction_the_import_sees_its_uncommitted_registry_and_rules(tmp_path):
    """The preparation thread reads on its own connection (committed rows only), so inside a
    transaction (this test's) every batch is validated and classified at its store instead."""
    from events.models import EventType, InternalUserRule

    EventType.objects.create(name="BRAND_NEW_CALL", friction_signal="")
    InternalUserRule.objects.create(kind="user_id", value="insider")
    rows = [
        {"event_id": str(uuid.uuid4()), "tenant_id": "acme", "user_id": "insider" if i % 2 else "outsider",
         "event_type": "BRAND_NEW_CALL", "occurred_at": (START + timedelta(minutes=i)).isoformat()}
        for i in range(12)
    ]  # fmt: skip
    from events.ingestion.importer import events_import

    outcome = events_import(path=_write_jsonl(tmp_path / "native.jsonl", rows), file_format="native", batch_rows=2)
    assert (outcome.accepted, outcome.parked) == (12, 0)
    assert set(Event.objects.values_list("user_id", "is_real", "exclusion_reason")) == {
        ("outsider", True, ""),
        ("insider", False, "internal_user"),
    }


def test_an_import_stores_its_batches_with_the_cyclic_collector_held_off_and_restores_it(tmp_path, monkeypatch):
    import gc

    import events.ingestion.importer as importer

    seen: list[bool] = []
    store = importer._batch_store

    def watched(*args: Any, **kwargs: Any) -> None:
        seen.append(gc.isenabled())
        store(*args, **kwargs)

    monkeypatch.setattr(importer, "_batch_store", watched)
    path = _write_jsonl(tmp_path / "posthog.jsonl", _posthog_lines())
    assert gc.isenabled()
    _run(path, "--format", "posthog", "--batch-rows", "10")
    assert seen and not any(seen)  # every batch stored while the collector was off
    assert gc.isenabled()  # and it runs again afterwards
    assert Event.objects.count() == 30
