"""The broker's logins kept equal to the devices: a rotated token stops logging in, a revoked device is refused.

Mosquitto checks a device's MQTT login against its ``password_file``, which telemon can write (device tokens are
stored only as hashes, so telemon also keeps each token's Mosquitto hash: :mod:`telemon.broker_passwords`). With
``TELEMON_BROKER_PASSWORD_FILE`` set, the MQTT role keeps that file equal to the active devices and its own login
(``TELEMON_MQTT_URL``'s user and password): it writes the file at start, and again whenever a device is created,
rotated or revoked, from whichever process (a trigger on ``devices`` notifies :data:`telemon.channels.DEVICES`),
and once a minute should a notification be missed while the database was away. Each rewrite replaces the file
atomically and then runs ``TELEMON_BROKER_RELOAD`` (for example ``pkill -HUP -x mosquitto``), since Mosquitto reads
its password file only at start and on SIGHUP; without one, the broker's side watches the file (``deploy/``).

Readings are safe without it: ingest refuses a revoked device's messages (and a rotated token's HTTP calls) at
once. The broker's file is the second lock, that keeps a revoked device from connecting at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from telemon import channels, devices
from telemon.broker_passwords import mosquitto_password_hash, render_password_file

log = logging.getLogger(__name__)

RESYNC_S = 60.0  # a rewrite at least this often, should a notification be missed
RETRY_S = 2.0  # after the database or the reload command failed


class BrokerLogins:
    """Writes ``path`` from the active devices (and ``service_login``) on every device change, then runs
    ``reload``. ``start`` writes once before returning, so a broker started after telemon finds its file."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        path: Path,
        *,
        service_login: tuple[str, str] | None,
        reload: Sequence[str] = (),
    ) -> None:
        self._pool = pool
        self._path = path
        # hashed once: a fresh salt at every rewrite would make every rewrite a change
        self._service = (service_login[0], mosquitto_password_hash(service_login[1])) if service_login else None
        self._reload = tuple(reload)
        self._changed = asyncio.Event()
        self._written: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.rewrites = 0  # how many times the file was written (with its reload run)

    async def start(self) -> None:
        try:
            await self.sync()
        except (OSError, asyncpg.PostgresError, RuntimeError) as exc:
            log.warning("broker logins not written: %s", exc)
        self._task = asyncio.create_task(self._run(), name="broker-logins")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def sync(self) -> bool:
        """Write the file and reload the broker if the logins changed since the last write; True if it did."""
        async with self._pool.acquire() as conn:
            accounts = await devices.broker_accounts(conn)
        if self._service is not None:
            accounts.insert(0, self._service)
        text = render_password_file(accounts)
        if text == self._written:
            return False
        await asyncio.to_thread(_replace, self._path, text)
        if self._reload:
            await _run(self._reload)
        self._written = text  # only once the broker was told: a failed reload is tried again
        self.rewrites += 1
        log.info("broker logins written", extra={"file": str(self._path), "accounts": len(accounts)})
        return True

    def _on_notification(self, *_args: object) -> None:
        self._changed.set()

    async def _run(self) -> None:
        while True:
            try:
                async with self._pool.acquire() as conn:
                    await conn.add_listener(channels.DEVICES, self._on_notification)
                    try:
                        await self.sync()  # what changed while no one listened
                        while True:
                            with contextlib.suppress(TimeoutError):
                                await asyncio.wait_for(self._changed.wait(), RESYNC_S)
                            self._changed.clear()
                            await self.sync()
                    finally:
                        with contextlib.suppress(asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                            await conn.remove_listener(channels.DEVICES, self._on_notification)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, RuntimeError) as exc:
                log.warning("broker logins not written: %s", exc)
                await asyncio.sleep(RETRY_S)


def _replace(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (the broker may read it at any moment), keeping the mode an operator
    gave the file; a new file is readable by its owner and group only (the broker's group, where it runs as
    another user): the hashes are slow to attack, not impossible."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o640
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.chmod(mode)
    os.replace(temporary, path)


async def _run(command: Sequence[str]) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited with {process.returncode}: {stderr.decode(errors='replace').strip()}"
        )
