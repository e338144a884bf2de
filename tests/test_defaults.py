"""The defaults are defined once (events/defaults.py, customers/defaults.py, infra/defaults.py,
playbooks/defaults.py), and a freshly migrated database holds exactly them: the migrations that
seed a fresh install and the modules every other reader uses cannot drift apart."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import psycopg
import pytest
from django.conf import settings
from psycopg.rows import dict_row

from customers.defaults import DEFAULT_WEIGHTS_NOTE, ROLE_WORDING
from customers.metrics.risk import DEFAULT_WEIGHTS
from events.defaults import (
    AUTOMATION_USER_AGENTS,
    DEFAULT_VOCABULARY,
    MILESTONES,
    NORTH_STAR_TARGETS,
    event_type_defaults,
)
from infra.defaults import LIMITS_DEFAULTS
from playbooks.defaults import DEFAULT_PLAYBOOKS, EXPANSION_PLAYBOOKS
from tests.processes import database_conninfo, database_url, manage

pytestmark = [
    pytest.mark.slow,
    pytest.mark.default_install,
    pytest.mark.not_on_citus("migrates a database of its own on one server; the seeds are the same on a cluster"),
]


@pytest.fixture(scope="module")
def fresh() -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A database migrated from nothing by `manage.py migrate`, as a fresh install gets it."""
    name = f"{settings.DATABASES['default']['NAME']}_fresh_defaults"
    with psycopg.connect(database_conninfo("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        manage(["migrate", "--no-input", "-v", "0"], DATABASE_URL=database_url(name))
        with psycopg.connect(database_conninfo(name), row_factory=dict_row) as conn:
            yield conn
    finally:
        with psycopg.connect(database_conninfo("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _rows(conn: psycopg.Connection[dict[str, Any]], sql: str) -> list[dict[str, Any]]:
    return list(conn.execute(sql).fetchall())


def test_the_vocabulary_is_the_default_vocabulary(fresh: psycopg.Connection[dict[str, Any]]) -> None:
    columns = ", ".join(event_type_defaults(DEFAULT_VOCABULARY[0]))
    stored = {row["name"]: row for row in _rows(fresh, f"SELECT {columns} FROM events_eventtype")}
    assert stored == {t.name: event_type_defaults(t) for t in DEFAULT_VOCABULARY}


def test_the_north_star_rules_are_the_defaults(fresh: psycopg.Connection[dict[str, Any]]) -> None:
    agents = _rows(fresh, "SELECT pattern, reason, description, is_active FROM events_useragentpattern")
    assert {(r["pattern"], r["reason"], r["description"]) for r in agents} == set(AUTOMATION_USER_AGENTS)
    assert all(r["is_active"] for r in agents)
    milestones = _rows(fresh, 'SELECT name, target_date, users, max_days FROM events_milestone ORDER BY "order"')
    assert milestones == [asdict(m) for m in MILESTONES]
    targets = _rows(fresh, "SELECT id, dau_target, mau_target FROM events_northstarsettings")
    assert targets == [{"id": 1, **NORTH_STAR_TARGETS}]


def test_the_risk_weights_and_role_words_are_the_defaults(fresh: psycopg.Connection[dict[str, Any]]) -> None:
    versions = _rows(fresh, "SELECT version, source, weights, note, is_active FROM customers_risk_weights")
    assert len(versions) == 1
    version = versions[0]
    assert (version["version"], version["source"], version["note"], version["is_active"]) == (
        1,
        "default",
        DEFAULT_WEIGHTS_NOTE,
        True,
    )
    # A component a version does not name counts at its default, so the effective weights are compared.
    assert {**DEFAULT_WEIGHTS, **version["weights"]} == DEFAULT_WEIGHTS
    words = _rows(fresh, "SELECT role, for_types, text FROM customers_role_wording ORDER BY role")
    assert [(r["role"], r["for_types"], r["text"]) for r in words] == list(ROLE_WORDING)


def test_the_infrastructure_limits_are_the_defaults(fresh: psycopg.Connection[dict[str, Any]]) -> None:
    rows = _rows(fresh, "SELECT id, db_storage_limit_gb, redis_memory_limit_mb FROM infra_infralimitsettings")
    assert rows == [{"id": 1, **LIMITS_DEFAULTS}]


def test_the_playbooks_are_the_default_playbooks(fresh: psycopg.Connection[dict[str, Any]]) -> None:
    playbooks = {
        r["id"]: r
        for r in _rows(
            fresh, "SELECT id, name, risk_level, purpose, success_metric, notes, enabled FROM playbooks_playbook"
        )
    }
    conditions = _rows(
        fresh,
        "SELECT playbook_id, metric, event_types, operator, threshold, window_days FROM playbooks_triggercondition"
        ' ORDER BY playbook_id, "order"',
    )
    actions = _rows(
        fresh,
        'SELECT playbook_id, step, timing, channel, talk_track FROM playbooks_playbookaction ORDER BY playbook_id, "order"',
    )
    stored = [
        {
            "id": pid,
            "name": row["name"],
            "risk_level": row["risk_level"],
            "purpose": row["purpose"],
            "conditions": [
                (c["metric"], c["event_types"], c["operator"], c["threshold"], c["window_days"])
                for c in conditions
                if c["playbook_id"] == pid
            ],
            "success_metric": row["success_metric"],
            "notes": row["notes"],
            "actions": [
                (a["step"], a["timing"], a["channel"], a["talk_track"]) for a in actions if a["playbook_id"] == pid
            ],
        }
        for pid, row in sorted(playbooks.items())
    ]
    assert all(row["enabled"] for row in playbooks.values())
    expected = [{**p, "purpose": "risk"} for p in DEFAULT_PLAYBOOKS] + [
        # An expansion playbook's level is required by the model and ignored.
        {**p, "risk_level": "medium", "purpose": "expansion"}
        for p in EXPANSION_PLAYBOOKS
    ]
    assert stored == sorted(({k: p[k] for k in stored[0]} for p in expected), key=lambda p: p["id"])
