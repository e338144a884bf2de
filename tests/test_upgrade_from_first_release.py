"""An install of the first release upgrades to today's schema and keeps every row.

The first release's migrations are squashed into one per app (``0001_metrics_engine``,
``0001_registry_north_star_and_alerts``, ``0001_growth_and_limits``, ``0001_playbooks_seeded``): a
fresh database applies the squashed ones, and a database that recorded the first release's names
(the oldest schema an upgrade starts from) goes on from the migration after them. Here a database is
brought to the first release's schema, its migration records written back as such an install has
them, rows written the way that release wrote them (a key and an event it sent, a customer, a
founder's edits to a weight, a milestone and a talk track, an intervention, a churn), then
``manage.py migrate`` runs as an upgrade does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.conf import settings
from psycopg.rows import dict_row

from tests.processes import database_conninfo, database_url, manage

pytestmark = [
    pytest.mark.slow,
    pytest.mark.default_install,
    pytest.mark.not_on_citus("migrates a database of its own on one server; the migrations are the same on a cluster"),
]

# app, the squashed migration, the first release's migrations it replaces (as its installs recorded them).
FIRST_RELEASE = [
    ("customers", "0001_metrics_engine", ["0001_initial", "0002_metrics_engine", "0003_incremental_metrics_scope",
                                          "0004_customer_list_index", "0005_tenants_rebuilt_stamp",
                                          "0006_unraised_metrics"]),
    ("events", "0001_registry_north_star_and_alerts", ["0001_initial", "0002_seed_event_types_and_ingest_xid",
                                                       "0003_no_index_on_event_source", "0004_ingest_rate_limit",
                                                       "0005_north_star", "0006_seed_north_star",
                                                       "0007_condition_alerts"]),
    ("infra", "0001_growth_and_limits", ["0001_initial", "0002_events_received_at_brin_and_limits_row"]),
    ("playbooks", "0001_playbooks_seeded", ["0001_playbooks_interventions_churns", "0002_seed_playbooks"]),
]  # fmt: skip

# Rows as the first release's schema holds them.
FIRST_RELEASE_ROWS = [
    "INSERT INTO events_apikey (id, name, scope, prefix, key_hash, is_automation, created_at)"
    " VALUES (1, 'backend-prod', 'ingest', 'oc_abcdefghi', repeat('f', 64), true, '2026-11-20 09:00+00')",
    "INSERT INTO ops_events (event_id, tenant_id, user_id, session_id, event_type, occurred_at, received_at, metadata,"
    " friction_signal, is_real, exclusion_reason, source_id) VALUES ('6f1c1d2e-0000-4000-8000-000000000001', 'acme',"
    " 'u1', 's1', 'LOGIN', '2026-11-20 09:30+00', '2026-11-20 09:30+00', '{\"plan\": \"pro\"}', '', true, '', 1)",
    "INSERT INTO customers_tenant (tenant_id, name, kind, first_seen_at, notes, monthly_event_limit)"
    " VALUES ('acme', 'Acme Inc', 'customer', '2026-11-01 00:00+00', 'renews in March', 50000),"
    " ('gone', 'Gone Ltd', 'customer', '2026-10-01 00:00+00', '', NULL)",
    "UPDATE events_eventtype SET friction_weight = 4.5 WHERE name = 'REPLAY_ABORTED'",
    "UPDATE events_milestone SET name = 'Our first user' WHERE \"order\" = 1",
    "UPDATE playbooks_playbookaction SET talk_track = 'In our own words' WHERE playbook_id = 'silent_churn'"
    ' AND "order" = 1',
    "INSERT INTO playbooks_interventionrecord (action, channel, date, note, outcome_note, created_at, created_by,"
    " tenant_id, playbook_id) VALUES ('Personal check-in to the main user', 'email', '2026-11-21', 'sent', '',"
    " '2026-11-21 10:00+00', 'founder', 'acme', 'silent_churn')",
    "INSERT INTO playbooks_churnrecord (date, reason, created_at, created_by, tenant_id)"
    " VALUES ('2026-11-19', 'moved to a competitor', '2026-11-19 12:00+00', 'founder', 'gone')",
]


def _one(conn: psycopg.Connection[dict[str, Any]], sql: str) -> dict[str, Any]:
    row = conn.execute(sql).fetchone()
    assert row is not None, sql
    return row


@pytest.fixture(scope="module")
def upgraded() -> Iterator[tuple[psycopg.Connection[dict[str, Any]], set[tuple[str, str]]]]:
    """A first-release install with rows, upgraded by ``manage.py migrate``; and what it recorded before."""
    name = f"{settings.DATABASES['default']['NAME']}_first_release"
    url = database_url(name)
    with psycopg.connect(database_conninfo("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        for app, squashed, _ in FIRST_RELEASE:
            manage(["migrate", app, squashed, "--no-input", "-v", "0"], DATABASE_URL=url)
        with psycopg.connect(database_conninfo(name), autocommit=True, row_factory=dict_row) as conn:
            # Applying a squashed migration records the names it replaces; a later run adds its own name.
            # A first-release install holds only the replaced names.
            for app, squashed, _ in FIRST_RELEASE:
                conn.execute("DELETE FROM django_migrations WHERE app = %s AND name = %s", [app, squashed])
            before = {(r["app"], r["name"]) for r in conn.execute("SELECT app, name FROM django_migrations")}
            for sql in FIRST_RELEASE_ROWS:
                conn.execute(sql)
        manage(["migrate", "--no-input", "-v", "0"], DATABASE_URL=url)
        with psycopg.connect(database_conninfo(name), row_factory=dict_row) as conn:
            yield conn, before
    finally:
        with psycopg.connect(database_conninfo("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_install_recorded_the_first_release_by_its_own_names(upgraded: Any) -> None:
    _, before = upgraded
    first_release = {(app, old) for app, _, replaced in FIRST_RELEASE for old in replaced}
    assert {(app, name) for app, name in before if app in {"customers", "events", "infra", "playbooks"}} == (
        first_release
    )


def test_the_upgrade_records_the_squashed_migrations_and_everything_after(upgraded: Any) -> None:
    conn, _ = upgraded
    recorded = {(r["app"], r["name"]) for r in conn.execute("SELECT app, name FROM django_migrations")}
    assert {(app, squashed) for app, squashed, _ in FIRST_RELEASE} <= recorded
    # The newest migrations of each app ran (names as on disk today).
    assert ("customers", "0018_metrics_dirty_for_the_cluster") in recorded
    assert ("events", "0018_keys_and_notifications_move_to_core") in recorded
    assert ("core", "0001_keys_and_notifications_from_events") in recorded
    assert ("playbooks", "0011_playbook_purpose_and_expansion_seed") in recorded


def test_the_upgrade_keeps_the_key_and_the_event_it_sent(upgraded: Any) -> None:
    conn, _ = upgraded
    key = _one(conn, "SELECT id, name, scope, prefix, is_automation FROM events_apikey")
    assert (key["name"], key["scope"], key["prefix"], key["is_automation"]) == (
        "backend-prod",
        "ingest",
        "oc_abcdefghi",
        True,
    )
    event = _one(conn, "SELECT tenant_id, user_id, event_type, metadata, source_id FROM ops_events")
    assert event == {"tenant_id": "acme", "user_id": "u1", "event_type": "LOGIN", "metadata": {"plan": "pro"},
                     "source_id": key["id"]}  # fmt: skip


def test_the_upgrade_keeps_the_customers_their_interventions_and_churns(upgraded: Any) -> None:
    conn, _ = upgraded
    acme = _one(conn, "SELECT name, notes, monthly_event_limit FROM customers_tenant WHERE tenant_id = 'acme'")
    assert acme == {"name": "Acme Inc", "notes": "renews in March", "monthly_event_limit": 50000}
    intervention = _one(conn, "SELECT tenant_id, playbook_id, action, note FROM playbooks_interventionrecord")
    assert intervention == {"tenant_id": "acme", "playbook_id": "silent_churn",
                            "action": "Personal check-in to the main user", "note": "sent"}  # fmt: skip
    churn = _one(conn, "SELECT tenant_id, reason FROM playbooks_churnrecord")
    assert churn == {"tenant_id": "gone", "reason": "moved to a competitor"}


def test_the_upgrade_keeps_what_the_founder_edited(upgraded: Any) -> None:
    conn, _ = upgraded
    assert _one(conn, "SELECT friction_weight FROM events_eventtype WHERE name = 'REPLAY_ABORTED'") == {
        "friction_weight": 4.5
    }
    assert _one(conn, 'SELECT name FROM events_milestone WHERE "order" = 1') == {"name": "Our first user"}
    talk_track = "SELECT talk_track FROM playbooks_playbookaction WHERE playbook_id = 'silent_churn' AND \"order\" = 1"
    assert _one(conn, talk_track) == {"talk_track": "In our own words"}
