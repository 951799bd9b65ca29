"""The event loop telemon's processes run on: uvloop where it is installed (Linux and macOS), else asyncio's own.

uvloop runs the same asyncio code with its network I/O in C; asyncpg and uvicorn are written for it. Tests keep
pytest-asyncio's loop: the code does not depend on which loop runs it.
"""

from __future__ import annotations

import asyncio
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
