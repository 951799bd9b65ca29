"""The served process's periodic memory check (``telemon.loop.release_freed_memory``), in this process: it collects
the garbage cycles made since its last look, even when they are too few objects to have set off a collection of
their own. (The served process under hostile requests, its heap trimmed: ``tests/integration/test_memory_soak.py``.)"""

from __future__ import annotations

import asyncio
import gc
import weakref

from telemon import loop


class _Refusal:
    """What a refused request leaves behind: a large body, held in a cycle by a handful of tracked objects (an
    exception's traceback holds the handler's frame, which holds the body)."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.me = self


async def test_a_cycle_made_after_the_last_collection_is_collected_while_idle() -> None:
    stop = loop.release_freed_memory()
    try:
        gc.collect()
        refusal = _Refusal(b"x" * 4_000_000)  # bytes: the collector does not count it
        gone = weakref.ref(refusal)
        del refusal
        young = gc.get_stats()[0]["collections"]
        await asyncio.sleep(loop.TRIM_INTERVAL_S + 0.5)
        assert gc.get_stats()[0]["collections"] == young, "a collection of the youngest generation ran by itself"
        assert gone() is None, "the cycle outlived the check"
    finally:
        stop()
