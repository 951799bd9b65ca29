"""The event loop telemon's processes run on: uvloop where it is installed (Linux and macOS), else asyncio's own;
the cyclic garbage collector's settings for a long-running service; and giving freed memory back to the system.

uvloop runs the same asyncio code with its network I/O in C; asyncpg and uvicorn are written for it. Tests keep
pytest-asyncio's loop: the code does not depend on which loop runs it.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import gc
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def _factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # Windows: asyncio's loop
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the fastest loop available."""
    with asyncio.Runner(loop_factory=_factory()) as runner:
        return runner.run(main)


# Allocations between two youngest-generation collections (CPython's default: 700). A flood of MQTT messages
# allocates a few hundred objects each (paho's packets and properties, asyncpg's records), nearly all freed by
# reference counting within the batch; at 700 the collector ran hundreds of times a second and promoted them.
GC_YOUNG_THRESHOLD = 10_000


def settle_gc() -> None:
    """Once a process has started: its long-lived objects (modules, pools, the app) leave the cyclic collector
    (``gc.freeze``), and the youngest generation is collected every ``GC_YOUNG_THRESHOLD`` allocations. Measured
    on the MQTT consumer under a flood of single-reading messages: collection took ~8 % of the process, ~1 %
    after. Cycles made later are still collected."""
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
    gc.freeze()


# --- freed memory back to the system (glibc) ---------------------------------------------------------------------
#
# A hostile request (a body near TELEMON_MAX_BODY_BYTES, an array of a million objects, 10,000 bad items) makes a
# few hundred MB of Python objects for a moment, and the process kept much of it for good. Measured with
# tracemalloc, mallinfo2 and sys._debugmallocstats in a served process after rounds of hostile requests: 41 MB of
# live Python objects, but 244 MB free and held by malloc's heap; and, between collections, refused payloads still
# alive in garbage cycles (a refusal re-raised from an ``except ... as exc`` block keeps the handler's frame, its
# parsed payload included, in a cycle with the exception) that the collector reached only after a million more
# allocations (``GC_YOUNG_THRESHOLD``), which an idle process never makes. glibc raises its mmap threshold after
# the first megabyte buffer is freed (up to 32 MB), so the next bodies are carved out of the heap, which is only
# given back from its top. Hence: a fixed mmap threshold (buffers of a megabyte and more are mapped on their own
# and unmapped when freed) and, every ``TRIM_INTERVAL_S`` on the event loop, a full collection when objects were
# made since the last check, then ``malloc_trim`` (the free pages inside the heap go back) when the heap holds more
# than ``TRIM_ABOVE_BYTES`` free. What stays after that is CPython's small-object arenas (1 MiB, given back only
# when empty), each kept by a few long-lived objects. Elsewhere than glibc only the collection runs.

M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1024 * 1024
TRIM_INTERVAL_S = 2.0
TRIM_ABOVE_BYTES = 16 * 1024 * 1024


class MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2``: what malloc holds, summed over its heaps (``man 3 mallinfo2``)."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                     "keepcost")
    ]  # fmt: skip


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``malloc_trim``); None elsewhere (musl, macOS, Windows)."""
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError, TypeError):
        return None
    if hasattr(libc, "mallinfo2"):  # glibc 2.33 and later
        libc.mallinfo2.restype = MallInfo2
    return libc


def heap_info() -> MallInfo2 | None:
    """malloc's counts now; None where they cannot be read (not glibc, or glibc before 2.33)."""
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    info: MallInfo2 = libc.mallinfo2()
    return info


def free_heap_bytes() -> int | None:
    """Bytes malloc holds free in its heaps (mallinfo2's ``fordblks``); None where it cannot be read."""
    info = heap_info()
    return None if info is None else int(info.fordblks)


def trim_memory() -> bool:
    """Give the free pages of malloc's heaps back to the system; whether any was given back."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))


def _young_generation() -> tuple[int, int]:
    """How many times the youngest generation was collected, and how many objects it holds now. Either changes
    when objects were made: the count of collections alone missed the cycles made after the last collection (a
    refused body is ``bytes``, which the collector does not count, held in a cycle by a handful of objects that
    are)."""
    return gc.get_stats()[0]["collections"], gc.get_count()[0]


def release_freed_memory() -> Callable[[], None]:
    """From now on, give memory freed by large requests back to the system (see above): fixes malloc's mmap and
    trim thresholds (unless ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` set them for this process), and
    on the running event loop collects garbage cycles and trims the heap every ``TRIM_INTERVAL_S``, when there is
    something to do. Returns the function that stops it. A check takes the loop a few milliseconds (most objects
    are frozen out of the collector by ``settle_gc``), once every two seconds at most."""
    libc = _glibc()
    if libc is not None and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    if libc is not None and "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        libc.mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD_BYTES)
    running = asyncio.get_running_loop()
    handle: asyncio.TimerHandle | None = None
    seen = _young_generation()

    def check() -> None:
        nonlocal handle, seen
        if _young_generation() != seen:  # objects were made since the last check
            gc.collect()
            seen = _young_generation()
        free = free_heap_bytes()
        if libc is not None and (free is None or free > TRIM_ABOVE_BYTES):
            trim_memory()
        handle = running.call_later(TRIM_INTERVAL_S, check)

    handle = running.call_later(TRIM_INTERVAL_S, check)

    def stop() -> None:
        if handle is not None:
            handle.cancel()

    return stop
