from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from infra.projection import GB, MB
from infra.services import infra_snapshot_take


class Command(BaseCommand):
    help = "Take one infrastructure snapshot now (database and events table size, Redis memory, traffic)."

    def handle(self, *args: Any, **options: Any) -> None:
        snapshot = infra_snapshot_take()
        if snapshot is None:
            raise CommandError("Another snapshot is being taken right now; try again in a moment.")
        self.stdout.write(f"snapshot {snapshot.pk} at {snapshot.taken_at:%Y-%m-%d %H:%M:%S %Z}")
        self.stdout.write(f"  database size       {snapshot.db_size_bytes / GB:.3f} GB")
        self.stdout.write(f"  ops_events size     {snapshot.events_table_bytes / GB:.3f} GB")
        if snapshot.redis_used_memory_bytes is None:
            self.stdout.write(f"  redis used memory   - ({snapshot.redis_reason})")
        else:
            maxmemory = f"{snapshot.redis_maxmemory_bytes / MB:.1f} MB" if snapshot.redis_maxmemory_bytes else "not set"
            self.stdout.write(
                f"  redis used memory   {snapshot.redis_used_memory_bytes / MB:.1f} MB (maxmemory {maxmemory})"
            )
        self.stdout.write(f"  events last 24h     {snapshot.events_received_24h}")
        self.stdout.write(f"  API requests 24h    {snapshot.api_requests_24h}")
