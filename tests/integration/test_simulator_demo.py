"""``make demo`` (``python -m telemon.app.demo``) on embedded services: the simulated cohort's history is in within
the promised 3 minutes, Ctrl-C leaves no process behind, and a second start continues with the same patients."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from telemon.embedded import free_port

pytestmark = pytest.mark.slow

READY = re.compile(r"telemon demo: (\d+) simulated patients; ([\d,]+) readings of their history sent in ([\d.]+) s")


def _start(state_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMON_")}
    env |= {"TELEMON_STATE_DIR": str(state_dir), "TELEMON_PORT": str(port), "TELEMON_LOG_LEVEL": "WARNING"}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "telemon.app.demo"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _wait_backfilled(process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = READY.search(log.read_text(errors="replace"))
        if found:
            return found
        assert process.poll() is None, f"the demo exited early:\n{log.read_text(errors='replace')}"
        time.sleep(0.5)
    raise AssertionError(f"no backfill within {timeout} s:\n{log.read_text(errors='replace')}")


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=60)


def _postgres_processes(pgdata: Path) -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and str(pgdata) in " ".join(p.info["cmdline"] or [])
    ]


def test_demo_backfills_its_cohort_stops_cleanly_and_continues(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    port = free_port()
    started = time.monotonic()
    process = _start(state_dir, port, tmp_path / "first.log")
    try:
        found = _wait_backfilled(process, tmp_path / "first.log")
        assert time.monotonic() - started < 180
        assert int(found.group(1)) == 40
        assert int(found.group(2).replace(",", "")) > 20_000  # 21 days: meters, apps and 6 CGM traces
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        first_state = json.loads((state_dir / "demo-simulator.json").read_text())
        assert len(first_state["devices"]) == 40
    finally:
        assert _stop(process) == 0
    assert _postgres_processes(state_dir.resolve() / "pg") == []
    assert "Traceback" not in (tmp_path / "first.log").read_text(errors="replace")

    process = _start(state_dir, port, tmp_path / "second.log")
    try:
        found = _wait_backfilled(process, tmp_path / "second.log")
        # the same patients and devices; only what they measured while the demo was stopped is sent
        assert json.loads((state_dir / "demo-simulator.json").read_text())["devices"] == first_state["devices"]
        assert int(found.group(2).replace(",", "")) < 1_000
    finally:
        assert _stop(process) == 0
    assert _postgres_processes(state_dir.resolve() / "pg") == []
