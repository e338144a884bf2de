"""The cyclic collector held off while batches are made and stored (events/ingestion/collector.py), also
when a threaded web worker's requests overlap: one request leaving must not turn it on under another."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from events.ingestion import collector
from events.ingestion.collector import collector_paused


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_collector_stays_off_until_the_last_overlapping_request_leaves(collector_on):
    first_in = threading.Event()
    first_may_leave = threading.Event()
    first_left = threading.Event()
    second_may_leave = threading.Event()
    seen: dict[str, bool] = {}

    def first() -> None:
        with collector_paused():
            first_in.set()
            first_may_leave.wait(5)
        first_left.set()

    def second() -> None:
        first_in.wait(5)
        with collector_paused():
            first_may_leave.set()
            first_left.wait(5)
            seen["after the first left"] = gc.isenabled()
            second_may_leave.wait(5)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_left.wait(5)
    second_may_leave.set()
    for thread in threads:
        thread.join(5)
    assert seen == {"after the first left": False}
    assert gc.isenabled()


def test_a_collector_its_caller_switched_off_stays_off(collector_on):
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_requests_without_a_gap_still_collect_now_and_then(collector_on, monkeypatch):
    collected: list[int] = []
    monkeypatch.setattr(collector, "COLLECTOR_PAUSE_MAX_SECONDS", 0.0)
    monkeypatch.setattr(collector.gc, "collect", lambda generation=2: collected.append(generation) or 0)
    with collector_paused():
        with collector_paused():
            pass  # leaves while the outer one is still in flight, the pause already past its bound
        assert not gc.isenabled() and collected == [0]
    assert gc.isenabled()
