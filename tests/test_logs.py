"""Log lines: short text for a person at a terminal, JSON for a collector, and TELEMON_LOG_FORMAT choosing."""

from __future__ import annotations

import json
import logging
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

from telemon import logs

# Logs one warning with extra fields, as telemon's code does, after configuring logging from the environment.
SCRIPT = """
import logging
from telemon import logs
from telemon.settings import Settings
settings = Settings.from_env()
logs.configure(settings.log_level, settings.log_format)
logging.getLogger("telemon.outage").warning("database unavailable", extra={"retry_in": 2.0, "host": "db 1"})
"""


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("telemon.outage", logging.WARNING, __file__, 1, "database %s", ("unavailable",), None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_every_field() -> None:
    token = logs.request_id.set("req-7")
    try:
        line = logs.JsonFormatter().format(_record(retry_in=2.0, patient_id="p-1"))
    finally:
        logs.request_id.reset(token)
    entry = json.loads(line)
    assert "\n" not in line
    assert {k: entry[k] for k in ("level", "logger", "message", "request_id", "retry_in", "patient_id")} == {
        "level": "WARNING",
        "logger": "telemon.outage",
        "message": "database unavailable",
        "request_id": "req-7",
        "retry_in": 2.0,
        "patient_id": "p-1",
    }


def test_text_lines_are_short_and_keep_the_fields() -> None:
    token = logs.request_id.set("req-7")
    try:
        line = logs.TextFormatter().format(
            _record(retry_in=2.0, reason="no route to host", empty="", counts={"a": 1}, active=True)
        )
    finally:
        logs.request_id.reset(token)
    clock, level, rest = line.split(maxsplit=2)
    assert len(clock) == 8 and clock.count(":") == 2  # HH:MM:SS, local time
    assert level == "WARNING"
    assert rest == (
        'outage: database unavailable request_id=req-7 retry_in=2.0 reason="no route to host" empty="" '
        'counts={"a":1} active=true'
    )


def test_text_lines_show_the_traceback_below() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("telemon.consumer", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    first, *rest = logs.TextFormatter().format(record).splitlines()
    assert first.endswith("ERROR   consumer: failed")
    assert rest[0].startswith("Traceback") and rest[-1] == "RuntimeError: boom"


def test_auto_is_text_on_a_terminal_and_json_elsewhere(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal, (tmp_path / "log").open("w") as file:
        assert isinstance(logs.formatter_for("auto", terminal), logs.TextFormatter)
        assert isinstance(logs.formatter_for("auto", file), logs.JsonFormatter)
        # asked for explicitly, the format holds whatever the output is
        assert isinstance(logs.formatter_for("json", terminal), logs.JsonFormatter)
        assert isinstance(logs.formatter_for("text", file), logs.TextFormatter)
    os.close(leader)


def _run(env: dict[str, str], *, terminal: bool) -> str:
    """Run SCRIPT with stderr on a pseudo-terminal or on a pipe; what it wrote on stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMON_")} | env
    if not terminal:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=30, check=True
        )
        return done.stderr
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stderr=follower)
        os.close(follower)
        output = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=30) == 0
    finally:
        os.close(leader)
    return output.decode().replace("\r\n", "\n")


@pytest.mark.parametrize(
    ("log_format", "terminal", "expected"),
    [
        ("auto", True, "text"),
        ("auto", False, "json"),
        ("json", True, "json"),
        ("text", False, "text"),
    ],
)
def test_telemon_log_format_chooses_the_lines(log_format: str, terminal: bool, expected: str) -> None:
    output = _run({"TELEMON_LOG_FORMAT": log_format}, terminal=terminal)
    lines = output.strip().splitlines()
    assert len(lines) == 1
    if expected == "json":
        assert json.loads(lines[0])["retry_in"] == 2.0
    else:
        assert lines[0].split(maxsplit=2)[2] == 'outage: database unavailable retry_in=2.0 host="db 1"'
