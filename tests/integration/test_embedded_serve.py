"""``telemon serve`` with nothing configured: embedded PostgreSQL and broker, ready quickly, nothing left
behind on Ctrl-C, and the data still there on the next start."""

from __future__ import annotations

import os
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


def _env(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMON_")}
    env["TELEMON_STATE_DIR"] = str(state_dir)
    return env


def _wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        assert process.poll() is None, "telemon serve exited early"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"/readyz did not answer 200 within {timeout} s")


def _postgres_processes(pgdata: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and str(pgdata) in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


def _serve(state_dir: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "telemon", "serve", "--port", str(port)],
        env=_env(state_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=60)


def _cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "telemon", *args],
        env=_env(state_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_embedded_service_starts_stops_cleanly_and_keeps_its_data(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    port = free_port()
    process = _serve(state_dir, port)
    try:
        _wait_ready(port, process)
        # an admin command joins the running embedded database
        assert _cli(state_dir, "create-team", "--name", "Maternité Nord").returncode == 0
    finally:
        assert _stop(process) == 0
    assert _postgres_processes(state_dir.resolve() / "pg") == []

    process = _serve(state_dir, port)
    try:
        _wait_ready(port, process)
        again = _cli(state_dir, "create-team", "--name", "Maternité Nord")
        assert again.returncode == 2
        assert "already exists" in again.stderr
    finally:
        assert _stop(process) == 0
    assert _postgres_processes(state_dir.resolve() / "pg") == []
    assert not (state_dir / "endpoints.json").exists()
