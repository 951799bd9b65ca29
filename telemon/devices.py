"""Devices: a patient's meters, phone apps and CGM uploaders, each with its own secret token."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from telemon import queries
from telemon.broker_passwords import mosquitto_password_hash
from telemon.db import Conn
from telemon.security import new_secret, nightscout_secret, secret_hash
from telemon.settings import SettingsError

KINDS = ("meter", "app", "cgm")


@dataclass(frozen=True)
class NewDevice:
    device_id: str
    token: str


async def add_device(conn: Conn, *, patient_id: uuid.UUID, kind: str, label: str = "") -> NewDevice:
    if kind not in KINDS:
        raise SettingsError(f"--kind: {kind!r} is not one of {', '.join(KINDS)}")
    device_id = f"{kind}-{secrets.token_hex(6)}"
    token = new_secret("tmd_")
    await conn.execute(
        queries.INSERT_DEVICE,
        patient_id,
        device_id,
        kind,
        label,
        secret_hash(token),
        secret_hash(nightscout_secret(token)),
        mosquitto_password_hash(token),
    )
    await conn.execute(queries.SET_DEVICE_NS_SECRET_512, device_id, secret_hash(nightscout_secret_512(token)))
    return NewDevice(device_id, token)


def nightscout_secret_512(token: str) -> str:
    """The other api-secret Nightscout accepts (besides the SHA-1 hex): the SHA-512 hex of the secret."""
    return hashlib.sha512(token.encode()).hexdigest()


async def set_active(conn: Conn, device_id: str, active: bool) -> bool:
    status: str = await conn.execute(queries.SET_DEVICE_ACTIVE, device_id, active)
    return status.endswith(" 1")


async def broker_accounts(conn: Conn) -> list[tuple[str, str]]:
    """(username, Mosquitto hash) of every active device, for the broker's password file."""
    rows = await conn.fetch(queries.BROKER_ACCOUNTS)
    return [(r["id"], r["broker_password"]) for r in rows]
