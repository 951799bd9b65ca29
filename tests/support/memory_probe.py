"""``python -m tests.support.memory_probe serve ...`` runs telemon as ``python -m telemon`` does, and on ``SIGUSR1``
appends to the file ``MEMORY_PROBE_FILE`` names one JSON line of what its memory holds (``Snapshot``). It only
reads: it collects nothing and trims nothing, so what it reports is what the process did by itself.

The resident size seen from outside mixes three things: live objects, malloc's freed heap not given back, and
CPython's small-object arenas (1 MiB each, freed only when empty) kept by a few long-lived objects made while a
peak had spread them out. The memory soak test bounds the first two from here, exactly, and the resident size
only loosely, because the third varies from run to run with how the requests overlapped.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from telemon import loop
from telemon.app.cli import main

PROBE_FILE_VARIABLE = "MEMORY_PROBE_FILE"


@dataclass(frozen=True)
class Snapshot:
    tracked_objects: int  # by the cyclic collector, garbage not yet collected included
    allocated_blocks: int  # by Python's allocator (sys.getallocatedblocks)
    heap_resident_bytes: int  # malloc's main heap, resident (the [heap] mapping)
    malloc_in_use_bytes: int  # handed out by malloc and not had back, every heap and mapping

    @property
    def heap_resident_free_bytes(self) -> int:
        """What the main heap holds resident beyond what malloc has in use: freed and not given back. An upper
        bound's lower estimate: what other heaps have in use counts against it."""
        return self.heap_resident_bytes - self.malloc_in_use_bytes


def heap_resident_bytes() -> int:
    """The resident part of malloc's main heap: the ``Rss`` of the ``[heap]`` mapping in ``/proc/self/smaps``."""
    mapping = ""
    for line in Path("/proc/self/smaps").read_text(encoding="ascii", errors="replace").splitlines():
        if "-" in line.partition(" ")[0]:  # a mapping's first line: "start-end perms offset dev inode [path]"
            mapping = line.split()[-1]
        elif mapping == "[heap]" and line.startswith("Rss:"):
            return int(line.split()[1]) * 1024
    return 0


def snapshot() -> Snapshot:
    info = loop.heap_info()
    if info is None:
        raise RuntimeError("the memory probe reads glibc's mallinfo2 (glibc 2.33 and later)")
    return Snapshot(
        tracked_objects=len(gc.get_objects()),
        allocated_blocks=sys.getallocatedblocks(),
        heap_resident_bytes=heap_resident_bytes(),
        malloc_in_use_bytes=info.uordblks + info.hblkhd,  # in its heaps, and mapped on their own
    )


def read(path: Path) -> list[Snapshot]:
    """The snapshots written so far, oldest first."""
    if not path.exists():
        return []
    *whole, _ = path.read_text(encoding="utf-8").split("\n")  # the last line is complete once it ends
    return [Snapshot(**json.loads(line)) for line in whole]


def _write(signum: int, frame: FrameType | None) -> None:
    with Path(os.environ[PROBE_FILE_VARIABLE]).open("a", encoding="utf-8") as probe:
        probe.write(json.dumps(dataclasses.asdict(snapshot())) + "\n")


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, _write)
    sys.exit(main())
