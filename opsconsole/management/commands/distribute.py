"""``manage.py distribute``: place an existing database's tables on its Citus cluster, in place."""

from django.core.management.base import BaseCommand, CommandError

from core.flavour import flavour
from opsconsole.citus import distribute


class Command(BaseCommand):
    help = (
        "Distribute the per-account tables by tenant_id and make the registries reference tables on a Citus "
        "coordinator (idempotent; migrate does it too when Citus is installed)."
    )

    def handle(self, *args, **options):
        if flavour().rows_on_one_server:
            raise CommandError(
                "This database has no citus extension: run CREATE EXTENSION citus on the coordinator and every "
                "worker, and add the workers (citus_add_node), first. On plain PostgreSQL nothing needs distributing."
            )
        done = distribute(stdout=self.stdout)
        self.stdout.write("Every table is already placed." if not done else f"{len(done)} change(s) made.")
