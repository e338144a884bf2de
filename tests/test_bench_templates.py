"""The bench's cached event templates follow the shape of ops_events, not the wording of its migrations."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench import common

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "events" / "migrations", tmp_path / "events" / "migrations")
    monkeypatch.setattr(common, "BASE_DIR", tmp_path)
    return tmp_path / "events" / "migrations"


def _first(migrations: Path) -> Path:
    return sorted(migrations.glob("0*.py"))[0]


def test_rewording_a_migration_keeps_the_templates(migrations: Path) -> None:
    before = common._schema_key()
    path = _first(migrations)
    text = path.read_text()
    reworded = text.replace('"""', '"""Reworded. ', 1) if text.startswith('"""') else '"""Reworded."""\n' + text
    path.write_text("# A new comment.\n" + reworded + "\n# And another.\n")
    assert common._schema_key() == before


def test_a_changed_or_new_migration_rebuilds_them(migrations: Path) -> None:
    before = common._schema_key()
    (migrations / "0999_more.py").write_text("operations = []\n")
    added = common._schema_key()
    assert added != before
    path = _first(migrations)
    path.write_text(path.read_text() + "\nEXTRA = 1\n")
    assert common._schema_key() not in (before, added)
