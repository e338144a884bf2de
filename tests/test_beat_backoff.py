"""Beat during a database outage, in process: it sends nothing while PostgreSQL is down (the tasks
could only fail), retries its schedule read with a growing wait, and sends the recompute it held
at once when the database is back. (tests/reliability/test_beat_outage.py stops a real server.)"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from opsconsole import beat
from opsconsole.celery import app as celery_app

pytestmark = pytest.mark.django_db(transaction=True)

RECOMPUTE = "customers.metrics_recompute"


class Outage:
    """PostgreSQL as beat sees it: reads, saves and probes fail while ``down``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.down = False
        read, save = DatabaseScheduler.all_as_schedule, ModelEntry.save

        # Down just after beat saved its entries: the read that finds it back finds the recompute not due.
        self.saves_went_through = False

        def all_as_schedule(scheduler: Any) -> Any:
            self._fail()
            return read(scheduler)

        def entry_save(entry: Any) -> None:
            if not self.saves_went_through:
                self._fail()
            save(entry)

        monkeypatch.setattr(DatabaseScheduler, "all_as_schedule", all_as_schedule)
        monkeypatch.setattr(ModelEntry, "save", entry_save)
        monkeypatch.setattr(
            beat.ResilientDatabaseScheduler, "_database_answers", lambda scheduler: not self.down, raising=False
        )

    def _fail(self) -> None:
        if self.down:
            raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The task names beat sends (to the broker, here to this list)."""
    names: list[str] = []

    def apply_async(scheduler: Any, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> None:
        entry = scheduler.reserve(entry) if advance else entry
        names.append(entry.task)

    monkeypatch.setattr(beat.ResilientDatabaseScheduler, "apply_async", apply_async)
    return names


@pytest.fixture
def scheduler(settings: Any) -> beat.ResilientDatabaseScheduler:
    # Every tick re-reads (or retries the read): the failure mode shows in a few ticks, not minutes.
    settings.BEAT_SCHEDULE_REREAD_SECONDS = 0.001
    settings.BEAT_SCHEDULE_RETRY_SECONDS = 0.001
    settings.BEAT_SCHEDULE_RETRY_MAX_SECONDS = 0.001
    every_5_minutes = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.create(
        name="recompute",
        task=RECOMPUTE,
        interval=every_5_minutes,
        last_run_at=timezone.now() - timedelta(minutes=4, seconds=59, milliseconds=700),
    )
    return beat.ResilientDatabaseScheduler(app=celery_app)


def _ticks(scheduler: beat.ResilientDatabaseScheduler, count: int) -> None:
    for _ in range(count):
        scheduler.tick()


def test_while_the_database_is_down_beat_sends_nothing_and_sends_the_held_recompute_once_it_is_back(
    scheduler, sent, monkeypatch
):
    outage = Outage(monkeypatch)
    outage.down = True
    _ticks(scheduler, 3)
    time.sleep(0.5)  # the recompute falls due during the outage
    _ticks(scheduler, 40)  # the library resent every due task at each failed re-read
    assert sent == []

    outage.down = False
    _ticks(scheduler, 3)  # the first read that succeeds
    assert sent == [RECOMPUTE]  # at once, not at the next 5-minute slot, and once
    _ticks(scheduler, 20)
    assert sent == [RECOMPUTE]


def test_a_recompute_that_fell_due_in_a_short_outage_runs_when_the_database_answers_not_at_its_next_slot(
    scheduler, sent, monkeypatch
):
    outage = Outage(monkeypatch)
    outage.down = outage.saves_went_through = True
    time.sleep(0.5)
    _ticks(scheduler, 3)  # due: held, its advanced last_run_at saved, so the next read finds it not due
    assert sent == []
    outage.down = False
    _ticks(scheduler, 3)
    assert sent == [RECOMPUTE]
    _ticks(scheduler, 20)
    assert sent == [RECOMPUTE]


def test_beat_retries_the_schedule_read_with_a_doubling_wait_up_to_its_limit(settings):
    settings.BEAT_SCHEDULE_RETRY_SECONDS = 5
    settings.BEAT_SCHEDULE_RETRY_MAX_SECONDS = 30
    settings.BEAT_SCHEDULE_REREAD_SECONDS = 300
    scheduler = beat.ResilientDatabaseScheduler(app=celery_app)
    waits = []
    for failures in range(7):
        scheduler._read_failures = failures
        waits.append(scheduler.reread_interval())
    assert waits == [300, 5, 10, 20, 30, 30, 30]
