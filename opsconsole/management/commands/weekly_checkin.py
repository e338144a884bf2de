from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from opsconsole.checkin import weekly_checkin_compose, weekly_checkin_send


class Command(BaseCommand):
    help = "Print the weekly check-in digest; with --send, also queue it to Slack/email (once per ISO week)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--send", action="store_true", help="Queue it on the configured channels too.")

    def handle(self, *args: Any, **options: Any) -> None:
        _subject, body = weekly_checkin_compose()
        self.stdout.write(body)
        if options["send"]:
            created = weekly_checkin_send()
            self.stdout.write(f"\nQueued {len(created)} notification(s) (none if already sent this week).")
