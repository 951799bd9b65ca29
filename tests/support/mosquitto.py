"""A private Mosquitto broker for integration tests.

``start_mosquitto(config, tmp_path)`` writes ``config`` plus a loopback listener on a free port to
``tmp_path/mosquitto.conf``, starts ``/usr/sbin/mosquitto`` on it, waits until the port accepts connections and
yields ``(host, port)``; leaving the ``with`` block terminates the broker and waits for it.

Running as root: Mosquitto 2 then drops privileges to the ``mosquitto`` user *before* it reads the password and
ACL files (a 0600 root-owned file, or one under pytest's 0700 temporary directories, is "unable to open"), and
it can no longer write its persistence file (reported only at shutdown). So, as root, a config without a
``user`` line gets ``user root`` appended and Mosquitto keeps the rights of the test.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MOSQUITTO = "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").is_file() else shutil.which("mosquitto") or "mosquitto"
HOST = "127.0.0.1"
_PORT_IN_USE = "Address already in use"


class MosquittoError(RuntimeError):
    """The test broker could not be started; the message carries its log."""


@contextmanager
def start_mosquitto(config: str, tmp_path: Path, *, timeout: float = 10.0) -> Iterator[tuple[str, int]]:
    """Run a private Mosquitto with ``config`` on a free loopback port; yield ``(host, port)``.

    ``config`` must not declare its own ``listener``/``port`` (the helper adds one) nor daemonise. Files the
    config names are read by the broker as the user it runs as (see the module docstring). If the ``with`` body
    raises, the broker's log is attached to the exception as a note.
    """
    if re.search(r"^\s*(listener|port|daemon)\b", config, re.MULTILINE):
        raise ValueError("config must not contain listener, port or daemon lines: start_mosquitto adds the listener")
    if hasattr(os, "geteuid") and os.geteuid() == 0 and not re.search(r"^\s*user\s", config, re.MULTILINE):
        config = config.rstrip("\n") + "\nuser root\n"
    conf_path = tmp_path / "mosquitto.conf"
    log_path = tmp_path / "mosquitto.log"
    for attempt in range(3):  # the free port can be taken between probing it and Mosquitto binding it
        port = _free_port()
        conf_path.write_text(f"{config.rstrip()}\nlistener {port} {HOST}\n", encoding="utf-8")
        conf_path.chmod(0o644)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [MOSQUITTO, "-c", str(conf_path)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            started = _wait_for_port(process, port, timeout)
            if not started and _PORT_IN_USE in _read_log(log_path) and attempt < 2:
                continue
            if not started:
                raise MosquittoError(
                    f"mosquitto did not accept connections on {HOST}:{port} within {timeout} s "
                    f"(exit code {process.poll()}); its log:\n{_read_log(log_path)}"
                )
            try:
                yield HOST, port
            except Exception as exc:
                exc.add_note(f"mosquitto log ({log_path}):\n{_read_log(log_path)}")
                raise
            return
        finally:
            _stop(process)
    raise AssertionError("unreachable")  # pragma: no cover


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(process: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _read_log(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log written)"


DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"


def shipped_config(tmp_path: Path, password_file: Path) -> str:
    """deploy/mosquitto/mosquitto.conf with its file paths moved into ``tmp_path`` and its listener removed."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    paths = {"password_file": str(password_file), "acl_file": str(DEPLOY / "acl"), "persistence_location": f"{data}/"}
    text = (DEPLOY / "mosquitto.conf").read_text()
    for key, path in paths.items():
        text, count = re.subn(rf"^{key}\s.*$", f"{key} {path}", text, flags=re.MULTILINE)
        assert count == 1, f"{key} should appear once in the shipped mosquitto.conf"
    text, listeners = re.subn(r"^listener\s.*$", "", text, flags=re.MULTILINE)
    assert listeners == 1
    return text
