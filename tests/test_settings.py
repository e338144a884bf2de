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


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "a-long-random-test-only-value-7f3kq9x2m5v8b1n4c6z0lp" * 2,
    "ALLOWED_HOSTS": "ops.example.com",
    "METRICS_BEARER_TOKEN": "metrics-test-only-value-" + "t0k" * 8,
}


def test_check_deploy_is_clean_with_production_settings():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        **PRODUCTION,
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


def test_it_refuses_to_start_in_production_with_metrics_open_unless_told_it_is_public():
    open_metrics = {**PRODUCTION, "METRICS_BEARER_TOKEN": ""}
    refused = _manage("check", **open_metrics)
    assert refused.returncode != 0
    assert "ImproperlyConfigured: GET /metrics would be open to anyone" in refused.stderr

    public = _manage("check", "--deploy", **open_metrics, METRICS_PUBLIC="1")
    assert public.returncode == 0, public.stderr
    assert "(opsconsole.W001) GET /metrics is open to anyone" in public.stderr


def test_check_deploy_warns_about_a_metrics_token_short_enough_to_guess():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **{**PRODUCTION, "METRICS_BEARER_TOKEN": "abc123"})
    assert result.returncode != 0
    assert "(opsconsole.W002) METRICS_BEARER_TOKEN is 6 characters" in result.stderr


def test_the_shipped_env_file_once_filled_in_starts_with_metrics_closed_and_prometheus_has_the_token(tmp_path):
    env_file = tmp_path / "opsconsole.env"
    token_file = tmp_path / "opsconsole_metrics_token"
    env_file.write_text((BASE_DIR / "deploy" / "systemd" / "opsconsole.env").read_text())
    fill = [sys.executable, "-m", "opsconsole.dotenv", "--production", str(env_file)]
    filled = subprocess.run(
        [*fill, "--metrics-token-file", str(token_file)], cwd=BASE_DIR, capture_output=True, text=True
    )
    assert filled.returncode == 0, filled.stderr
    assert "generated SECRET_KEY, METRICS_BEARER_TOKEN" in filled.stdout
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if line and line[0] != "#")
    assert len(values["SECRET_KEY"]) >= 50 and len(values["METRICS_BEARER_TOKEN"]) >= 32
    assert token_file.read_text().strip() == values["METRICS_BEARER_TOKEN"]
    assert oct(env_file.stat().st_mode & 0o007) == "0o0" and oct(token_file.stat().st_mode & 0o777) == "0o640"
    # The shipped Prometheus configuration reads the token from where DEPLOY.md writes it.
    scrape = (BASE_DIR / "deploy" / "prometheus" / "prometheus.yml").read_text()
    assert "credentials_file: /etc/prometheus/opsconsole_metrics_token" in scrape
    assert (
        "--metrics-token-file /etc/prometheus/opsconsole_metrics_token" in (BASE_DIR / "docs" / "DEPLOY.md").read_text()
    )

    again = env_file.read_text()
    assert "nothing" in subprocess.run(fill, cwd=BASE_DIR, capture_output=True, text=True).stdout
    assert env_file.read_text() == again  # a second run keeps every value

    environment = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "METRICS_BEARER_TOKEN")}
    started = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env={**environment, "OPSCONSOLE_ENV_FILE": str(env_file)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stdout + started.stderr


def test_parking_and_the_strict_mode_together_refuse_to_start():
    result = _manage("check", DEBUG="1", INGEST_PARK_UNREGISTERED="1", INGEST_REJECT_UNREGISTERED="1")
    assert result.returncode != 0
    assert "INGEST_PARK_UNREGISTERED and INGEST_REJECT_UNREGISTERED are both on" in result.stderr
