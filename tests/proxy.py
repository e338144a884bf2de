"""The shipped production stack for tests: gunicorn with deploy/gunicorn.conf.py behind nginx
with deploy/nginx/opsconsole-proxy.conf, on free high ports as an ordinary process each."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

from tests.processes import BASE_DIR, free_port, project_env, wait_for_port

DEPLOY = BASE_DIR / "deploy"

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "proxy-test-only-" + "q9z" * 20,
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    # TLS ends at the proxy in production; here the proxy speaks plain HTTP.
    "SECURE_SSL_REDIRECT": "0",
}


@pytest.fixture(name="server_database_url")
def _server_database_url(transactional_db: object) -> str:
    """The migrated test database as a URL, for servers started as separate processes."""
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def nginx_conf(*, run_dir: Path, listen: int, upstream: int) -> str:
    template = (DEPLOY / "nginx" / "nginx-unprivileged.conf.in").read_text()
    return (
        template.replace("@RUN_DIR@", str(run_dir))
        .replace("@LISTEN@", f"127.0.0.1:{listen}")
        .replace("@UPSTREAM@", f"127.0.0.1:{upstream}")
        .replace("@PROXY_CONF@", str(DEPLOY / "nginx" / "opsconsole-proxy.conf"))
    )


@contextmanager
def shipped_gunicorn(*, workers: int = 2, log_path: Path | None = None, **env: str) -> Iterator[int]:
    """gunicorn -c deploy/gunicorn.conf.py on a free port; yields the port."""
    port = free_port()
    environment = project_env(**PRODUCTION_ENV, GUNICORN_WORKERS=str(workers), GUNICORN_ACCESS_LOG="-", **env)
    argv = [sys.executable, "-m", "gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py"), "-b", f"127.0.0.1:{port}"]
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(argv, cwd=BASE_DIR, env=environment, stdout=log, stderr=log)
    try:
        wait_for_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        if log_path:
            log.close()  # type: ignore[union-attr]


@contextmanager
def nginx_proxy(upstream_port: int) -> Iterator[str]:
    """nginx with the shipped proxy directives in front of upstream_port; yields its base URL."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        raise FileNotFoundError("nginx")
    run_dir = Path(tempfile.mkdtemp(prefix="opsconsole-nginx-"))
    os.chmod(run_dir, 0o755)  # as root, nginx workers run as nobody and write temp files here
    port = free_port()
    conf = run_dir / "nginx.conf"
    conf.write_text(nginx_conf(run_dir=run_dir, listen=port, upstream=upstream_port))
    check = subprocess.run([binary, "-t", "-c", str(conf), "-e", str(run_dir / "error.log")], capture_output=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx refused the shipped configuration: {check.stderr.decode()}")
    process = subprocess.Popen([binary, "-c", str(conf), "-e", str(run_dir / "error.log")], stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(run_dir, ignore_errors=True)
