"""Ingestion's one setting of the Python runtime: no cyclic collection while batches are made and stored."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off while batches are read and stored.

    A parsed batch is tens of thousands of dicts and lists that hold no cycle and all die at once,
    by reference counting, when the request ends. Collecting meanwhile finds nothing to free: it
    walks them again and again and promotes those it sees to the oldest generation, whose
    growth then sets off full collections, each walking every object of the loaded project.
    Whatever cyclic garbage a request or an import leaves (an import's batches leave almost none)
    is collected after it, as before. Under threaded workers the request that disabled the
    collector enables it again; one that found it disabled leaves it so."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
