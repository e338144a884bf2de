from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from playbooks.subscription_import import SubscriptionImportError, subscriptions_import


class Command(BaseCommand):
    help = (
        "Load customers' MRR from a Stripe subscriptions export (Dashboard -> Subscriptions -> Export). All rows are "
        "checked first: any bad row and nothing is written. Rerunning it records nothing twice. See "
        "playbooks/subscription_import.py for the columns read."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", help="Path of the CSV file.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with open(options["file"], newline="", encoding="utf-8-sig") as handle:
                result = subscriptions_import(handle)
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}.") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{options['file']} is not UTF-8 text; nothing was imported.") from exc
        except SubscriptionImportError as exc:
            raise CommandError(
                "Nothing was imported; fix these rows and run it again:\n  " + "\n  ".join(exc.problems)
            ) from exc
        self.stdout.write(
            f"Recorded {result.recorded} subscription(s) for {len(result.tenants)} customer(s); "
            f"{result.already_recorded} already recorded."
        )
        for note in result.notes:
            self.stdout.write(f"Note: {note}.")
        if result.ignored_columns:
            self.stdout.write(f"Ignored columns: {', '.join(result.ignored_columns)}.")
