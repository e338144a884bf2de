"""`make run`, and a single-box production run: the whole console under one supervisor.

Migrates, installs the periodic task schedules and (with DEBUG on) seeds the demo
history on the first run and creates the demo login, then supervises the web server,
a Celery worker and Celery beat (opsconsole/supervisor.py): a child that exits is
restarted with backoff and logged; SIGTERM or Ctrl-C stops all of them cleanly.

With DEBUG on the web server is Django's runserver; with DEBUG off it is gunicorn
with the shipped configuration (deploy/gunicorn.conf.py), meant to sit behind the
nginx configuration in deploy/nginx/ (docs/DEPLOY.md).
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.models import Event
from opsconsole.supervisor import Supervisor, supervisor_state_path

DEMO_USER = "founder"
DEMO_PASSWORD = "opsconsole-demo"
CHILDREN = ("web", "worker", "beat")


def port_number(value: str) -> int:
    try:
        port = int(value)
    except ValueError as exc:
        raise CommandError(f"--port must be a number between 1 and 65535, got {value!r}.") from exc
    if not 1 <= port <= 65535:
        raise CommandError(f"--port must be between 1 and 65535, got {port}.")
    return port


def port_answers(host: str, port: int) -> bool:
    """Whether something accepts connections on host:port now."""
    try:
        socket.create_connection((host, port), timeout=0.2).close()
    except OSError:
        return False
    return True


def child_commands(*, port: int, host: str, web_server: str, only: tuple[str, ...]) -> dict[str, list[str]]:
    """The argv of each supervised child (the same ones deploy/systemd/ runs)."""
    python = sys.executable
    web = (
        [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"]
        if web_server == "runserver"
        else [
            python,
            "-m",
            "gunicorn",
            "-c",
            str(settings.BASE_DIR / "deploy" / "gunicorn.conf.py"),
            "-b",
            f"{host}:{port}",
        ]
    )
    commands = {
        "web": web,
        "worker": [python, "-m", "celery", "-A", "opsconsole", "worker", "--loglevel=INFO", "--concurrency=2"],
        "beat": [
            python,
            "-m",
            "celery",
            "-A",
            "opsconsole",
            "beat",
            "--loglevel=INFO",
            "--schedule",
            str(settings.VAR_DIR / "celerybeat-schedule"),
        ],
    }
    return {name: argv for name, argv in commands.items() if name in only}


class Command(BaseCommand):
    help = "Run the console: web server, Celery worker and beat under one supervisor (restarts a crashed child)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=str, default=None, help="Web port (default: $PORT, else 8000).")
        parser.add_argument("--host", default="127.0.0.1", help="Address the web server binds (default 127.0.0.1).")
        parser.add_argument("--no-seed", action="store_true", help="Do not seed demo data on an empty database.")
        parser.add_argument(
            "--web-server",
            choices=("runserver", "gunicorn"),
            default=None,
            help="runserver with DEBUG on (the default), gunicorn with deploy/gunicorn.conf.py otherwise.",
        )
        parser.add_argument(
            "--only",
            default=",".join(CHILDREN),
            help="Comma-separated children to run (web, worker, beat); default all three.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        port = port_number(options["port"] or os.environ.get("PORT") or "8000")
        only = tuple(name.strip() for name in options["only"].split(",") if name.strip())
        unknown = sorted(set(only) - set(CHILDREN))
        if unknown or not only:
            raise CommandError(
                f"--only takes a comma-separated subset of {', '.join(CHILDREN)}; got {options['only']!r}."
            )
        web_server = options["web_server"] or ("runserver" if settings.DEBUG else "gunicorn")

        self.stdout.write("Applying database migrations…")
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Installing the periodic task schedules…")
        call_command("install_schedules", verbosity=0)
        demo = settings.DEBUG and not options["no_seed"]
        if demo and not Event.objects.exists():
            self.stdout.write("First run: seeding demo data (about half a minute)…")
            call_command("seed_demo")
            self.stdout.write("Computing the customer metrics and a first infrastructure reading…")
            call_command("recompute_metrics", "--full")
            call_command("snapshot_infra")
        if demo:
            user_model = get_user_model()
            if not user_model.objects.filter(username=DEMO_USER).exists():
                user_model.objects.create_superuser(DEMO_USER, "founder@example.com", DEMO_PASSWORD)

        login = f"Log in as '{DEMO_USER}' with password '{DEMO_PASSWORD}'. " if demo else ""
        if not demo and not get_user_model().objects.filter(is_staff=True).exists():
            login = "No login yet: create one with `.venv/bin/python manage.py createsuperuser`. "

        def announce() -> None:
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nOps Console is running at http://{options['host']}:{port}/ ({', '.join(only)})\n"
                    f"{login}Ctrl-C (or SIGTERM) stops everything; a child that crashes is restarted.\n"
                )
            )
            self.stdout.flush()

        self.stdout.write(f"Starting {', '.join(only)}…")
        supervisor = Supervisor(
            commands=child_commands(port=port, host=options["host"], web_server=web_server, only=only),
            cwd=settings.BASE_DIR,
            state_path=supervisor_state_path(),
            say=lambda line: self.stdout.write(line),
            # The URL is printed once the web server answers on its port (at once without a web child).
            ready=(lambda: port_answers(options["host"], port)) if "web" in only else None,
            on_ready=announce,
        )
        status = supervisor.run()
        if status:
            raise CommandError(f"stopped with status {status}")
