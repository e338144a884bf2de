"""`make run`: one command for the whole console on a developer's machine.

Migrates, installs the periodic task schedules, seeds the demo history on the
first run, creates the demo login, then starts the web server, a Celery worker
and Celery beat as child processes. Ctrl-C (or any child exiting) stops all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from events.models import Event

DEMO_USER = "founder"
DEMO_PASSWORD = "opsconsole-demo"


class Command(BaseCommand):
    help = "Run the console for development: web server, Celery worker and beat together."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-seed", action="store_true", help="Do not seed demo data on an empty database.")

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("install_schedules", verbosity=0)
        if not options["no_seed"] and not Event.objects.exists():
            self.stdout.write("First run: seeding demo data…")
            call_command("seed_demo")
            self.stdout.write("Computing the customer metrics and a first infrastructure reading…")
            call_command("recompute_metrics", "--full")
            call_command("snapshot_infra")
        user_model = get_user_model()
        if not user_model.objects.filter(username=DEMO_USER).exists():
            user_model.objects.create_superuser(DEMO_USER, "founder@example.com", DEMO_PASSWORD)

        port = options["port"]
        python = sys.executable
        commands = {
            "web": [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
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
        children = {name: subprocess.Popen(cmd, cwd=settings.BASE_DIR) for name, cmd in commands.items()}
        self.stdout.write(
            self.style.SUCCESS(
                f"\nOps Console is running at http://127.0.0.1:{port}/\n"
                f"Log in as '{DEMO_USER}' with password '{DEMO_PASSWORD}'. Ctrl-C stops everything.\n"
            )
        )
        try:
            while all(child.poll() is None for child in children.values()):
                time.sleep(0.5)
            exited = [name for name, child in children.items() if child.poll() is not None]
            self.stderr.write(f"{', '.join(exited)} exited; stopping the rest.")
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for child in children.values():
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
