"""Production settings: checked the way an operator would start the app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=environment, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_production_settings():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="a-long-random-test-only-value-7f3kq9x2m5v8b1n4c6z0lp" * 2,
        ALLOWED_HOSTS="ops.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_refuses_to_start_without_a_secret_key_in_production():
    result = _manage("check", DEBUG="0")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY must be set" in result.stderr


def test_a_non_postgres_database_url_is_refused():
    result = _manage("check", DEBUG="1", DATABASE_URL="sqlite:///db.sqlite3")
    assert result.returncode != 0
    assert "DATABASE_URL must be a postgres:// URL" in result.stderr


def test_parking_and_the_strict_mode_together_refuse_to_start():
    result = _manage("check", DEBUG="1", INGEST_PARK_UNREGISTERED="1", INGEST_REJECT_UNREGISTERED="1")
    assert result.returncode != 0
    assert "INGEST_PARK_UNREGISTERED and INGEST_REJECT_UNREGISTERED are both on" in result.stderr
