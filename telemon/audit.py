"""The audit trail: who did or saw what, and for which patient.

A single-patient action names its patient in ``patient_id``; a read that shows several patients at once (a list,
an event stream) is one row naming all of them in ``patient_ids``, not one row per patient."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import asyncpg

from telemon.db import Conn


async def record(
    conn: Conn | asyncpg.Pool,
    *,
    actor: str,
    action: str,
    patient_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
    patient_ids: Iterable[uuid.UUID] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, action, patient_id, detail, patient_ids) VALUES ($1, $2, $3, $4, $5)",
        actor,
        action,
        patient_id,
        detail or {},
        None if patient_ids is None else list(dict.fromkeys(patient_ids)),
    )
