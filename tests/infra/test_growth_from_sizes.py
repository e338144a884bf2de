"""Infrastructure from the first morning (issue 17): growth is the measured change in size, never
the arrival count; a history import is a jump, not growth; the embedded database's limit defaults
to its disk; every projection is drawn to the limit with the day it crosses.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from infra.models import InfraSnapshot
from infra.selectors import infra_overview
from infra.services import infra_snapshot_take
from tests.customers.conftest import NOW, Ev, days_ago, events_store

pytestmark = pytest.mark.django_db(transaction=True)
MB = 1024**2
AFTER = NOW + timedelta(minutes=1)


def _history_loaded_at_once() -> None:
    """60 days of history, 10 events a day, all arriving at NOW (an import)."""
    events_store([Ev("acme", "INCIDENT_VIEWED", days_ago(d)) for d in range(60) for _ in range(10)])


def test_a_backfill_of_60_days_is_estimated_by_event_dates_not_as_60_days_of_growth_per_day(transactional_db):
    _history_loaded_at_once()
    with time_machine.travel(AFTER, tick=False):
        snapshot = infra_snapshot_take()
        overview = infra_overview()
    # Days 0..13 fall in the 14 days before the reading: 140 events, 10 a day by their own dates.
    assert snapshot.events_occurred_14d == 140
    # Arrived more than a day after they occurred: days 2..59 (day 1 is exactly a day old).
    assert snapshot.events_backfilled == 580
    bytes_per_event = snapshot.events_table_bytes / snapshot.events_row_estimate
    db = overview.db_storage
    assert db.method == "event_volume"
    assert db.growth_rate_bytes_per_day == pytest.approx(bytes_per_event * 10)
    assert db.growth_rate_bytes_per_day < bytes_per_event * 600 / 10  # not the 600 arrivals of the day
    assert "Too few readings for a trend: 1 reading over 0 minutes" in db.reason
    assert "x 10 events per day by their own dates over the 14 days before the reading" in db.reason


def _reading(at: Any, size: float, *, backfilled: int = 0) -> InfraSnapshot:
    return InfraSnapshot.objects.create(
        taken_at=at,
        db_size_bytes=int(size),
        events_table_bytes=1_000_000_000,
        events_row_estimate=1_000_000,  # 1,000 bytes per event
        events_received_24h=0,
        api_requests_24h=0,
        events_occurred_14d=14_000,
        events_backfilled=backfilled,
    )


def test_an_import_between_readings_is_a_jump_not_growth(transactional_db):
    # 1 MB a day for two days, read hourly; at hour 24 an import of 300,000 events (300 MB) lands.
    for hour in range(49):
        size = 100 * MB + MB * hour / 24 + (300_000_000 if hour >= 24 else 0)
        _reading(NOW - timedelta(hours=48 - hour), size, backfilled=300_000 if hour == 24 else 0)
    with time_machine.travel(AFTER, tick=False):
        db = infra_overview().db_storage
    assert db.method == "least_squares"
    assert db.growth_rate_bytes_per_day == pytest.approx(MB, rel=1e-6)
    assert "history imports of 286.1 MB taken out: a jump, not growth" in db.reason
    assert db.current_bytes == int(100 * MB + 2 * MB + 300_000_000)  # the measured size, not the adjusted one


def test_the_embedded_database_defaults_its_limit_to_its_disk_and_draws_the_crossing(
    transactional_db, settings, tmp_path: Path, staff_client
):
    settings.EMBEDDED_DATABASE = True
    settings.VAR_DIR = tmp_path
    _history_loaded_at_once()
    with time_machine.travel(AFTER, tick=False):
        snapshot = infra_snapshot_take()
        overview = infra_overview()
        body = staff_client.get("/infra/").content.decode()
    assert snapshot.disk_free_bytes is not None and snapshot.disk_free_bytes > 0
    db = overview.db_storage
    assert (db.limit_bytes, db.limit_source) == (snapshot.db_size_bytes + snapshot.disk_free_bytes, "disk_free")
    assert db.days_to_limit == pytest.approx(snapshot.disk_free_bytes / db.growth_rate_bytes_per_day)
    assert "size + free disk space" in body
    assert "Estimated from the events, projected" in body
    if db.projected_limit_at is not None:  # within a century at this rate
        assert f"limit reached {db.projected_limit_at:%-d %b %Y}" in body


def test_a_database_server_elsewhere_has_no_disk_default(transactional_db, settings):
    settings.EMBEDDED_DATABASE = False
    _history_loaded_at_once()
    with time_machine.travel(AFTER, tick=False):
        snapshot = infra_snapshot_take()
        overview = infra_overview()
    assert snapshot.disk_free_bytes is None
    assert overview.db_storage.limit_bytes is None and "No limit is set" in overview.db_storage.reason
