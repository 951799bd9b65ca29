"""The audit trail: who did or saw what, and for which patient."""

from __future__ import annotations

import uuid
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
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, action, patient_id, detail) VALUES ($1, $2, $3, $4)",
        actor,
        action,
        patient_id,
        detail or {},
    )
