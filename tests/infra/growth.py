"""A database growing steadily, as the infrastructure snapshots record it: the runway tests' history."""

from __future__ import annotations

from datetime import datetime, timedelta

from infra.models import InfraLimitSettings, InfraSnapshot


def database_growth_record(
    *, now: datetime, start_bytes: float, bytes_per_day: float, limit_gb: float, events_table_bytes: int
) -> None:
    """A week of daily snapshots up to ``now`` (eight readings), and the database's storage limit."""
    for day in range(8):
        InfraSnapshot.objects.create(
            taken_at=now - timedelta(days=7 - day),
            db_size_bytes=int(start_bytes + bytes_per_day * day),
            events_table_bytes=events_table_bytes,
            events_received_24h=1000,
            api_requests_24h=0,
        )
    limits = InfraLimitSettings.objects.get()
    limits.db_storage_limit_gb = limit_gb
    limits.save()
