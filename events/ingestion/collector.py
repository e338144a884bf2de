"""Ingestion's one setting of the Python runtime: no cyclic collection while batches are made and stored."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

# The longest the collector stays off while paused sections overlap without a gap (a threaded
# server under steady load): past it, the section leaving collects the youngest generation, so the
# little cyclic garbage requests leave cannot pile up for as long as the load lasts.
COLLECTOR_PAUSE_MAX_SECONDS = 5.0

_lock = threading.Lock()
_paused = 0  # sections of this process inside collector_paused
_restore = False  # whether the collector was on when the first of them began
_since = 0.0  # when the collector was last off with nothing collected


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off while batches are read and stored.

    A parsed batch is tens of thousands of dicts and lists that hold no cycle and all die at once,
    by reference counting, when the request ends. Collecting meanwhile finds nothing to free: it
    walks them again and again and promotes those it sees to the oldest generation, whose
    growth then sets off full collections, each walking every object of the loaded project.
    Whatever cyclic garbage a request or an import leaves (an import's batches leave almost none)
    is collected after it, as before.

    The sections of a process are counted: under threaded workers the collector is on again only
    when the last one in flight leaves (turned on by the first to leave, its next allocation set off
    a collection that walked the batches of the requests still in flight). A collector found off by
    the first section (switched off by its caller) stays off.
    """
    global _paused, _restore, _since
    with _lock:
        if _paused == 0:
            _restore = gc.isenabled()
            _since = time.monotonic()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        overdue = False
        with _lock:
            _paused -= 1
            if _paused == 0:
                if _restore:
                    gc.enable()
            elif _restore and time.monotonic() - _since > COLLECTOR_PAUSE_MAX_SECONDS:
                overdue = True
                _since = time.monotonic()
        if overdue:
            gc.collect(0)
