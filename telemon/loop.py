"""The event loop telemon's processes run on: uvloop where it is installed (Linux and macOS), else asyncio's own;
and the cyclic garbage collector's settings for a long-running service.

uvloop runs the same asyncio code with its network I/O in C; asyncpg and uvicorn are written for it. Tests keep
pytest-asyncio's loop: the code does not depend on which loop runs it.
"""

from __future__ import annotations

import asyncio
import gc
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
