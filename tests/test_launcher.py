"""The launcher (run_console) with real processes: a crashed child is restarted and said
so, SIGTERM stops everything as Ctrl-C does, the first-run .env makes manage.py work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from opsconsole.dotenv import dotenv_write_first_run
from opsconsole.supervisor import child_restarts_recent
from tests.processes import BASE_DIR, database_conninfo, database_url, free_port, project_env, wait_for_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.default_install]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie not yet reaped by anyone counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _state(path: Path) -> dict:
    try:
        return json.loads(path.read_text())["children"]
    except (OSError, ValueError, KeyError):
        return {}


SUPERVISE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from opsconsole.supervisor import Supervisor
    steady = [sys.executable, "-c", "import time; time.sleep(600)"]
    crashy = [sys.executable, "-c", "import sys; sys.exit(3)"]
    sys.exit(Supervisor(commands={"steady": steady, "crashy": crashy}, cwd=Path.cwd(),
                        state_path=Path(sys.argv[1])).run())
    """
)


def test_a_child_that_keeps_crashing_is_restarted_with_backoff_and_the_others_keep_running(tmp_path):
    state = tmp_path / "state.json"
    launcher = subprocess.Popen([sys.executable, "-c", SUPERVISE, str(state)], cwd=BASE_DIR, env=project_env())
    try:
        wait_until(lambda: _state(state).get("steady", {}).get("pid"), timeout=20, what="the steady child")
        steady_pid = _state(state)["steady"]["pid"]
        # Backoff 1 s, then 2 s: the second restart comes about 3 s after the first exit.
        wait_until(lambda: _state(state)["crashy"]["restarts"] >= 2, timeout=30, what="two restarts")
        crashy = _state(state)["crashy"]
        assert crashy["last_exit_code"] == 3
        assert launcher.poll() is None, "the supervisor stopped because one child exited"
        assert _state(state)["steady"]["pid"] == steady_pid and _alive(steady_pid)
        restarts = child_restarts_recent(state, within=timedelta(minutes=5))
        assert [(r.name, r.how) for r in restarts] == [("crashy", "exited with code 3")]

        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=30) == 0
        assert not _alive(steady_pid)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()


@pytest.fixture
def launcher_database() -> str:
    """A throwaway database on the test server for run_console, which migrates it."""
    name = f"{settings.DATABASES['default']['TEST']['NAME'] or 'test_opsconsole'}_launcher"
    conninfo = database_conninfo()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield database_url(name)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_run_console_restarts_a_killed_worker_and_stops_everything_on_sigterm(tmp_path, launcher_database, redis_url):
    port = free_port()
    state = tmp_path / "run_console.json"
    log = tmp_path / "run_console.log"
    env = project_env(
        DATABASE_URL=launcher_database,
        CELERY_BROKER_URL=redis_url,
        REDIS_URL=redis_url,
        SUPERVISOR_STATE_FILE=str(state),
    )
    with open(log, "wb") as out:
        launcher = subprocess.Popen(
            [sys.executable, "manage.py", "run_console", "--no-seed", "--port", str(port)],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, timeout=120)
        wait_until(
            lambda: all(_state(state).get(n, {}).get("pid") for n in ("web", "worker", "beat")),
            timeout=30,
            what="three children",
        )
        pids = {name: child["pid"] for name, child in _state(state).items()}

        os.killpg(pids["worker"], signal.SIGKILL)  # as the OOM killer would
        wait_until(
            lambda: (
                _state(state)["worker"]["restarts"] == 1
                and _state(state)["worker"]["pid"] not in (None, pids["worker"])
            ),
            timeout=30,
            what="the worker restarted",
        )
        assert launcher.poll() is None
        assert {n: _state(state)[n]["pid"] for n in ("web", "beat")} == {n: pids[n] for n in ("web", "beat")}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            assert response.status == 200
        restarted = child_restarts_recent(state, within=timedelta(minutes=5), now=datetime.now(UTC))
        assert [(r.name, r.how) for r in restarted] == [("worker", "was killed by SIGKILL")]
        new_worker = _state(state)["worker"]["pid"]

        launcher.send_signal(signal.SIGTERM)  # what systemd, docker or a CI runner sends
        assert launcher.wait(timeout=60) == 0
        for pid in (pids["web"], pids["beat"], new_worker):
            assert not _alive(pid), f"pid {pid} outlived the launcher"
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
        output = log.read_text()
        assert "worker was killed by SIGKILL; restarting it in 1 s" in output
        assert "SIGTERM received: stopping" in output and "Stopped." in output
        # Each child stops itself (its pool too): no pool process is reported dead as an ERROR.
        assert "ERROR" not in output, output
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        for pid in _state(state).values():
            if pid.get("pid") and _alive(pid["pid"]):
                os.killpg(pid["pid"], signal.SIGKILL)


def test_run_console_prints_the_url_once_the_port_answers_and_how_to_create_the_first_login(
    tmp_path, launcher_database
):
    port = free_port()
    env = project_env(DATABASE_URL=launcher_database, SUPERVISOR_STATE_FILE=str(tmp_path / "state.json"))
    launcher = subprocess.Popen(
        [sys.executable, "-u", "manage.py", "run_console", "--no-seed", "--only", "web", "--port", str(port)],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert launcher.stdout is not None
        before = []
        for line in launcher.stdout:
            if "running at" in line:
                break
            before.append(line)
        else:
            pytest.fail("run_console ended without printing its URL:\n" + "".join(before))
        # The line is printed once the web server answers: a connection now must succeed.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            assert response.status == 200
        assert "createsuperuser" in next(launcher.stdout)  # a clean start has no login yet
    finally:
        launcher.send_signal(signal.SIGTERM)
        launcher.communicate(timeout=60)


def _production_like_env(**overrides: str) -> dict[str, str]:
    """The environment of a fresh shell: no DEBUG, no SECRET_KEY, only what .env says."""
    env = {k: v for k, v in project_env().items() if k not in ("DEBUG", "SECRET_KEY")}
    env.update(overrides)
    return env


@pytest.mark.django_db(transaction=True)
def test_the_first_run_env_file_lets_the_readme_commands_work_as_written(tmp_path):
    dotenv = tmp_path / ".env"
    url = database_url()
    command = [sys.executable, "manage.py", "create_api_key", "readme-check", "--scope", "ingest"]
    env = _production_like_env(OPSCONSOLE_ENV_FILE=str(dotenv), DATABASE_URL=url)

    # Without the file: the newcomer's stumble of issue 17.
    refused = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "SECRET_KEY must be set" in refused.stderr

    assert dotenv_write_first_run(dotenv) is True
    first = dotenv.read_text()
    assert "DEBUG=1" in first and oct(dotenv.stat().st_mode & 0o777) == "0o600"
    secret = next(line.split("=", 1)[1] for line in first.splitlines() if line.startswith("SECRET_KEY="))
    assert len(secret) >= 50

    created = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().splitlines()[-1].startswith("oc_")

    # A second run never overwrites the founder's file.
    assert dotenv_write_first_run(dotenv) is False
    assert dotenv.read_text() == first


def test_make_run_passes_port_to_the_launcher():
    dry = subprocess.run(["make", "-n", "run", "PORT=8080"], cwd=BASE_DIR, capture_output=True, text=True, check=True)
    assert "manage.py run_console --port 8080" in dry.stdout


@pytest.mark.parametrize("port", ["0", "70000", "eighty"])
def test_run_console_refuses_a_bad_port_before_starting_anything(port, tmp_path):
    state = tmp_path / "state.json"
    result = subprocess.run(
        [sys.executable, "manage.py", "run_console", "--port", port, "--no-seed"],
        cwd=BASE_DIR,
        env=project_env(SUPERVISOR_STATE_FILE=str(state)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "--port must be" in result.stderr
    assert not state.exists()


@pytest.mark.django_db
def test_today_says_which_child_was_restarted_and_forgets_it_after_an_hour(tmp_path, settings, staff_client):
    state = tmp_path / "run_console.json"
    settings.SUPERVISOR_STATE_FILE = str(state)
    exited = datetime.now(UTC) - timedelta(minutes=12)
    children = {
        "web": {"pid": 11, "restarts": 0, "last_exit_code": None, "last_exit_at": None},
        "beat": {"pid": 12, "restarts": 2, "last_exit_code": 1, "last_exit_at": exited.isoformat()},
    }
    state.write_text(json.dumps({"children": children, "stopped": False}))
    page = staff_client.get("/").content.decode()
    assert "the beat process exited with code 1 12\xa0minutes ago and was restarted (2 restarts)" in page
    assert "the web process" not in page

    children["beat"]["last_exit_at"] = (datetime.now(UTC) - timedelta(minutes=61)).isoformat()
    state.write_text(json.dumps({"children": children, "stopped": False}))
    assert 'data-testid="process-restart"' not in staff_client.get("/").content.decode()
