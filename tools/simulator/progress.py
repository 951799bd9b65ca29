"""A progress bar on stderr, without a dependency: redrawn in place on a terminal (at most 10 times a second),
one line every 10 % otherwise (logs, CI), nothing when disabled."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

WIDTH = 30


class Progress:
    def __init__(
        self, total: int, label: str, *, unit: str = "readings", enabled: bool = True, stream: TextIO | None = None
    ) -> None:
        self.total = max(total, 0)
        self.label = label
        self.unit = unit
        self.enabled = enabled and self.total > 0
        self.stream = stream or sys.stderr
        self.done = 0
        self.started = time.monotonic()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn = 0.0
        self._decile = -1
        self._lock = threading.Lock()

    def advance(self, n: int) -> None:
        with self._lock:
            self.done = min(self.total, self.done + n)
            if self.enabled:
                self._draw(final=False)

    def close(self) -> None:
        with self._lock:
            if self.enabled:
                self._draw(final=True)
                self.enabled = False

    def line(self) -> str:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(WIDTH * fraction)
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = f", {((self.total - self.done) / rate):.0f} s left" if rate > 0 and self.done < self.total else ""
        return (
            f"{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] {fraction:4.0%} "
            f"{self.done:,}/{self.total:,} {self.unit} {elapsed:.1f} s{eta}"
        )

    def _draw(self, *, final: bool) -> None:
        now = time.monotonic()
        if self._tty:
            if final or now - self._drawn >= 0.1:
                self._drawn = now
                self.stream.write("\r" + self.line() + ("\n" if final else ""))
                self.stream.flush()
            return
        decile = int(10 * self.done / self.total) if self.total else 10
        if decile > self._decile or final:
            if final and decile == self._decile:
                return
            self._decile = decile
            self.stream.write(self.line() + "\n")
            self.stream.flush()
