"""Devices: a patient's meters, phone apps and CGM uploaders, each with its own secret token."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from telemon import audit, queries
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


@dataclass(frozen=True)
class DeviceRecord:
    patient_id: uuid.UUID
    id: str
    kind: str
    label: str
    active: bool
    created_at: dt.datetime
    last_seen_at: dt.datetime | None
    revoked_at: dt.datetime | None


def _device(row: asyncpg.Record | None) -> DeviceRecord | None:
    return DeviceRecord(**dict(row)) if row else None


async def device_of_patient(conn: Conn | asyncpg.Pool, patient_id: uuid.UUID, device_id: str) -> DeviceRecord | None:
    return _device(await conn.fetchrow(queries.DEVICE_OF_PATIENT, patient_id, device_id))


@dataclass(frozen=True)
class DeviceUse(DeviceRecord):
    """A device with how much it is used: the readings it sent measured in the last 7 days."""

    readings_7d: int


async def devices_of_patient(conn: Conn | asyncpg.Pool, patient_id: uuid.UUID) -> list[DeviceUse]:
    """A patient's devices, revoked ones included, oldest first (the hospital API's list and the dashboard's)."""
    return [DeviceUse(**dict(r)) for r in await conn.fetch(queries.DEVICES_OF_PATIENT, patient_id)]


async def revoke_device(
    conn: Conn, device_id: str, *, actor: str, detail: dict[str, Any] | None = None
) -> DeviceRecord | None:
    """Revoke a device from now on, audited: its token, its Nightscout secret and its open pairing codes stop
    working at the next request (device authentication reads the database on every request, and the MQTT consumer
    refuses the readings of an inactive device); the broker's password file leaves it out when next written. None
    when it was revoked already."""
    revoked = _device(await conn.fetchrow(queries.REVOKE_DEVICE, device_id))
    if revoked is not None:
        await conn.execute(queries.CLOSE_DEVICE_PAIRING_CODES, device_id)
        await audit.record(
            conn,
            actor=actor,
            action="device.revoke",
            patient_id=revoked.patient_id,
            detail={**(detail or {}), "device_id": device_id},
        )
    return revoked


async def rotate_token(conn: Conn, device_id: str) -> NewDevice | None:
    """A new token for an active device; every hash of the old one is replaced in the same statement, so the old
    token, its Nightscout secrets and its broker password stop matching at once. None for a revoked device. The
    caller audits (a rotation asked for, or a pairing code exchanged)."""
    token = new_secret("tmd_")
    row = await conn.fetchrow(
        queries.ROTATE_DEVICE_TOKEN,
        device_id,
        secret_hash(token),
        secret_hash(nightscout_secret(token)),
        secret_hash(nightscout_secret_512(token)),
        mosquitto_password_hash(token),
    )
    return NewDevice(device_id, token) if row else None


# --- pairing codes -------------------------------------------------------------------------------------------
#
# A phone app is paired by a short code the patient types (or scans) instead of a 40-character token. The code is
# a selector, looked up, and a secret, compared in constant time with its stored hash: a wrong secret is counted
# against that code, which closes at the fifth, so guessing the secret of a known code succeeds with odds of
# 5 in 2**40; guessing whole codes is bounded by the per-address limit of the API. A code lives 24 h (the time to
# hand the sheet over and install the app) and is used once.

PAIRING_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32: no I, L, O, U to misread
PAIRING_SELECTOR_LENGTH = 4  # 20 bits: unique among the codes open at one time, drawn again on a collision
PAIRING_SECRET_LENGTH = 8  # 40 bits
PAIRING_CODE_LIFETIME = dt.timedelta(hours=24)
PAIRING_MAX_FAILURES = 5
_MISREAD = str.maketrans({"O": "0", "I": "1", "L": "1"})


@dataclass(frozen=True)
class PairingCode:
    code: str  # shown once, in groups of four: ABCD-EFGH-JKMN
    expires_at: dt.datetime


@dataclass(frozen=True)
class Paired:
    """What exchanging a pairing code gave: the device's new token, or why not (``refused``)."""

    device: NewDevice | None
    patient_id: uuid.UUID | None = None
    device_id: str | None = None  # the code's device, refused or not
    kind: str = ""
    refused: str | None = None  # "unknown", "expired", "locked", "wrong", "unusable"


def normalise_pairing_code(text: str) -> str | None:
    """The code's characters as the alphabet writes them (spaces, dashes and case ignored; O, I, L read as the
    digits they resemble), or None when it cannot be a code."""
    letters = "".join(text.split()).replace("-", "").upper().translate(_MISREAD)
    if len(letters) != PAIRING_SELECTOR_LENGTH + PAIRING_SECRET_LENGTH:
        return None
    if any(c not in PAIRING_ALPHABET for c in letters):
        return None
    return letters


async def new_pairing_code(conn: Conn, *, patient_id: uuid.UUID, device_id: str, actor: str) -> PairingCode:
    """A new pairing code for an active device; the device's earlier open codes close (the newest sheet holds)."""
    await conn.execute(queries.CLOSE_DEVICE_PAIRING_CODES, device_id)
    await conn.execute(queries.CLOSE_EXPIRED_PAIRING_CODES)
    for _ in range(20):
        letters = "".join(
            secrets.choice(PAIRING_ALPHABET) for _ in range(PAIRING_SELECTOR_LENGTH + PAIRING_SECRET_LENGTH)
        )
        selector, secret = letters[:PAIRING_SELECTOR_LENGTH], letters[PAIRING_SELECTOR_LENGTH:]
        row = await conn.fetchrow(
            queries.INSERT_PAIRING_CODE,
            patient_id,
            device_id,
            selector,
            secret_hash(secret),
            actor,
            PAIRING_CODE_LIFETIME.total_seconds(),
        )
        if row is not None:
            code = "-".join(letters[i : i + 4] for i in range(0, len(letters), 4))
            return PairingCode(code, row["expires_at"])
    raise RuntimeError("no free pairing-code selector after 20 draws")  # a million selectors: not reached


async def redeem_pairing_code(conn: Conn, letters: str) -> Paired:
    """Exchange a normalised code for a new token of its device, in the caller's transaction, which must commit
    whatever the outcome (a wrong secret is counted). The code is used once: the row is locked, and closed by the
    exchange. The device's earlier token stops working (the device has one credential: the one the app now holds)."""
    selector, secret = letters[:PAIRING_SELECTOR_LENGTH], letters[PAIRING_SELECTOR_LENGTH:]
    row = await conn.fetchrow(queries.LOCK_PAIRING_CODE, selector)
    if row is None:
        return Paired(None, refused="unknown")
    patient_id, code_id = row["patient_id"], row["id"]
    known = {"patient_id": patient_id, "device_id": row["device_id"], "kind": row["kind"]}
    if not hmac.compare_digest(bytes(row["secret_hash"]), secret_hash(secret)):
        failed = await conn.fetchrow(queries.FAIL_PAIRING_CODE, patient_id, code_id, PAIRING_MAX_FAILURES)
        return Paired(None, **known, refused="locked" if failed is not None and failed["locked"] else "wrong")
    if not row["valid"]:
        await conn.execute(queries.CLOSE_PAIRING_CODE, patient_id, code_id)
        return Paired(None, **known, refused="expired")
    if not row["usable"]:
        await conn.execute(queries.CLOSE_PAIRING_CODE, patient_id, code_id)
        return Paired(None, **known, refused="unusable")
    await conn.execute(queries.USE_PAIRING_CODE, patient_id, code_id)
    device = await rotate_token(conn, row["device_id"])
    if device is None:
        return Paired(None, **known, refused="unusable")
    return Paired(device, **known)
