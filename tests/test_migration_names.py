"""Migrations are named for what they do, and an install that applied them under their old
names upgrades without running any of them again."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

BASE_DIR = Path(__file__).resolve().parent.parent
APPS = ("events", "customers", "playbooks", "infra", "validation")
# The project's history: a migration named after the issue that asked for it (0009_i15_...).
ISSUE_NAMED = re.compile(r"^\d{4}_i\d+_")


def test_no_migration_is_named_after_an_issue() -> None:
    named = [path.name for app in APPS for path in (BASE_DIR / app / "migrations").glob("0*.py")]
    assert named, "no migrations found"
    assert [name for name in named if ISSUE_NAMED.match(name)] == []


@pytest.mark.django_db
def test_an_install_with_the_old_names_applies_nothing_again_and_records_the_new_ones() -> None:
    loader = MigrationLoader(connection)
    renamed = {
        (app, name): replaced
        for (app, name), migration in loader.disk_migrations.items()
        if app in APPS
        for replaced in migration.replaces or []
    }
    assert len(renamed) >= 13
    # Today's databases hold the old names: write them back as such an install has them.
    with connection.cursor() as cursor:
        for (app, name), (_, old) in renamed.items():
            cursor.execute("UPDATE django_migrations SET name = %s WHERE app = %s AND name = %s", [old, app, name])
            assert cursor.rowcount == 1, (app, name)
        cursor.execute("SELECT count(*) FROM ops_events")
        (events_before,) = cursor.fetchone()

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    assert plan == [], [f"{m.app_label}.{m.name}" for m, _ in plan]
    executor.check_replacements()  # what `migrate` does first: record the new names as applied

    with connection.cursor() as cursor:
        cursor.execute("SELECT app, name FROM django_migrations")
        recorded = set(cursor.fetchall())
        cursor.execute("SELECT count(*) FROM ops_events")
        (events_after,) = cursor.fetchone()
    assert set(renamed) <= recorded
    assert events_after == events_before
