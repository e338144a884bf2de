"""On a Citus coordinator, migrate leaves every table where opsconsole/citus.py says, and a second
distribute changes nothing."""

from __future__ import annotations

import pytest
from django.db import connection

from opsconsole.citus import DISTRIBUTED, REFERENCE, distribute

pytestmark = [pytest.mark.citus, pytest.mark.django_db]


def _placements() -> dict[str, tuple[str, int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT logicalrelid::regclass::text, partmethod, colocationid FROM pg_dist_partition")
        return {name: (method, group) for name, method, group in cursor.fetchall()}


def test_migrate_placed_every_table_and_distribute_again_changes_nothing():
    placed = _placements()
    anchor = placed["ops_events"][1]
    for table in DISTRIBUTED:
        assert placed[table] == ("h", anchor), f"{table} is not distributed beside ops_events"
    for table in REFERENCE:
        assert placed[table][0] == "n", f"{table} is not a reference table"
    assert distribute() == []


def test_the_keys_citus_requires_hold_on_the_events():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'ops_events'::regclass AND contype IN ('p', 'u')"
        )
        keys = sorted(row[0] for row in cursor.fetchall())
    assert keys == ["PRIMARY KEY (tenant_id, id)", "UNIQUE (tenant_id, event_id)"]
