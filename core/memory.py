"""Giving a long computation's freed memory back to the system.

glibc's allocator keeps freed heap pages in the process: after a few arrays of tens of megabytes are
freed (a refit's working copies, a scored date's rows), it raises its own threshold for serving large
blocks from the heap, and the next ones land in holes it never returns. A process that holds a growing
table and frees such temporaries over and over (the walk-forward backtest) then grows by the freed
memory it keeps. ``heap_release`` asks glibc to return every free page now (``malloc_trim``); with
another C library it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def heap_release() -> None:
    """Return the C heap's free pages to the system (glibc), keeping nothing in reserve."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
