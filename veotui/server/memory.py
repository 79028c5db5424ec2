"""Keeping the server's resident memory flat while clients come and go (glibc only; a no-op
elsewhere).

Each burst of connections allocates and frees many small blocks. glibc gives each thread
that allocates its own arena, up to eight per core, and it returns a freed page to the
system only from the top of a heap. So bursts leave pages behind that are free but still
resident, and RSS grows with every burst. Two arenas are enough for one event loop and its
worker threads; a trim after a burst returns the free pages at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import time
from functools import cache

M_ARENA_MAX = -8
M_MMAP_THRESHOLD = -3
ARENAS = 2
#: Blocks this large or larger (request bodies, decoded images) are mapped on their own and
#: given back the moment they are freed. glibc would otherwise raise the threshold after the
#: first such block is freed and serve the next ones from a heap that keeps them resident.
MMAP_THRESHOLD = 1024 * 1024
#: At most one trim this often (seconds); a trim walks every arena.
TRIM_INTERVAL = 1.0
#: Collections of the middle generation between two full ones, once the heap is frozen
#: (Python's default is 10).
FULL_COLLECTION_THRESHOLD = 100


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "malloc_trim") or not hasattr(libc, "mallopt"):
        return None  # not glibc
    return libc


def limit_arenas(arenas: int = ARENAS) -> None:
    """Call before any thread starts: later threads share these arenas. Large blocks are
    mapped on their own (see ``MMAP_THRESHOLD``)."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, arenas)
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


class Trimmer:
    """``malloc_trim`` after a burst, at most once per ``TRIM_INTERVAL``."""

    def __init__(self) -> None:
        self._last = 0.0

    def __call__(self) -> None:
        libc = _libc()
        now = time.monotonic()
        if libc is None or now - self._last < TRIM_INTERVAL:
            return
        self._last = now
        libc.malloc_trim(0)


def freeze_heap() -> None:
    """Once the server is up: what was built to start it (the imports, the app and its
    schemas) lives as long as the process, so take it out of the collector's full passes,
    which would otherwise scan it all every second or two and hold up the event streams;
    and make those passes rarer. Collect first, so no garbage is frozen."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_THRESHOLD)
