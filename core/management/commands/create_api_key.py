from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.models import ApiKeyScope
from core.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key. The raw key is printed once, as the last line of output, and never stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Who or what uses the key, e.g. 'backend-prod'.")
        parser.add_argument("--scope", required=True, choices=ApiKeyScope.values)
        parser.add_argument(
            "--automation", action="store_true", help="Mark as automation: its events never count as real users."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            api_key, raw_key = api_key_create(
                name=options["name"], scope=options["scope"], is_automation=options["automation"]
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Created {options['scope']} key '{api_key.name}' (prefix {api_key.prefix}). Copy it now:")
        self.stdout.write(raw_key)
