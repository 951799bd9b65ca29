"""The alerts API for integrations (API keys): list, acknowledge, snooze, resolve."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field

from alerts import queries, store
from telemon import audit
from telemon.api_keys import ApiKey
from telemon.auth import api_key, pool
from telemon.pagination import cursor_instant, cursor_int, cursor_int32, decode_cursor, envelope, limit_param

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

Status = Literal["open", "acknowledged", "resolved"]
Severity = Literal["info", "warning", "urgent"]
SEVERITY_ORDER = {"info": -1, "warning": -2, "urgent": -3}  # the list's first sort key: most urgent first
BEGINNING: list[Any] = [-4, dt.datetime(1970, 1, 1, tzinfo=dt.UTC), 0]
# An alert id as the path gives it: a bigint, so that a larger number is a 422 rather than an overflow.
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the alert's id")]


def alert_out(row: asyncpg.Record) -> dict[str, Any]:
    def iso(value: dt.datetime | None) -> str | None:
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None

    return {
        "id": row["id"],
        "patient_id": str(row["patient_id"]),
        "rule": row["rule"],
        "severity": row["severity"],
        "status": row["status"],
        "episode": row["episode_key"],
        "opened_at": iso(row["opened_at"]),
        "updated_at": iso(row["updated_at"]),
        "acknowledged_at": iso(row["acknowledged_at"]),
        "acknowledged_by": row["acknowledged_by"],
        "snoozed_until": iso(row["snoozed_until"]),
        "resolved_at": iso(row["resolved_at"]),
        "resolved_by": row["resolved_by"],
        # why the system resolved it: "cleared" (the condition ended), "delivered" (monitoring ended); null for
        # a person's or an integration's resolution
        "resolved_reason": row["resolved_reason"],
        "message": row["message"],
        "evidence": row["evidence"],
        # later episodes of the same rule while this alert was open: counted and kept as evidence, not new alerts
        "folded_episodes": row["folded_episodes"],
        "folded_reading_ids": list(row["folded_reading_ids"] or []),
        "folded_last_at": iso(row["folded_last_at"]),
    }


@router.get("", summary="Alerts, most urgent first, then oldest")
async def list_alerts(
    patient_id: uuid.UUID | None = None,
    status: Status | None = None,
    rule: str | None = Query(None, pattern=r"^[^\x00]*$", description="a rule's name"),
    severity: Severity | None = None,
    limit: int = Depends(limit_param),
    cursor: str | None = Query(None),
    key: ApiKey = Depends(api_key("alerts:read")),
    db: asyncpg.Pool = Depends(pool),
) -> dict[str, Any]:
    rank, opened_at, after_id = decode_cursor(cursor, cursor_int32, cursor_instant, cursor_int) or BEGINNING
    rows = await db.fetch(
        queries.LIST_ALERTS,
        patient_id,
        status,
        rule,
        severity,
        rank,
        opened_at,
        after_id,
        limit + 1,
        list(key.team_ids),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    # One row per request naming the patients whose alerts were shown. A patient_id of another team lists nothing,
    # exactly like one that does not exist (200, no items); the row still keeps what was asked for.
    await audit.record(
        db,
        actor=f"api_key:{key.id}",
        action="alerts.read",
        patient_id=patient_id,
        patient_ids=[r["patient_id"] for r in rows],
        detail={"count": len(rows)},
    )
    next_position = (
        [SEVERITY_ORDER[last["severity"]], last["opened_at"].isoformat(), last["id"]] if last is not None else None
    )
    return envelope([alert_out(r) for r in rows], next_position)


class SnoozeBody(BaseModel):
    until: dt.datetime = Field(description="ISO 8601 with an offset; the alert stays out of the open list until then")


async def _act(db: asyncpg.Pool, alert_id: int, key: ApiKey, action: str, until: dt.datetime | None = None) -> Any:
    actor = f"api_key:{key.id}"
    async with db.acquire() as conn, conn.transaction():
        if not await conn.fetchval(queries.ALERT_OF_TEAMS, alert_id, list(key.team_ids)):
            raise HTTPException(status_code=404, detail=f"no alert {alert_id}")  # another team's: as if missing
        if action == "acknowledge":
            row = await store.acknowledge(conn, alert_id, actor)
        elif action == "snooze":
            assert until is not None
            row = await store.snooze(conn, alert_id, actor, until)
        else:
            row = await store.resolve(conn, alert_id, actor)
        if row is None:
            current = await conn.fetchrow(queries.GET_ALERT, alert_id)
            if current is None:
                raise HTTPException(status_code=404, detail=f"no alert {alert_id}")
            raise HTTPException(status_code=409, detail=f"alert {alert_id} is {current['status']}; cannot {action}")
        await audit.record(
            conn, actor=actor, action=f"alert.{action}", patient_id=row["patient_id"], detail={"alert_id": alert_id}
        )
    return alert_out(row)


@router.post("/{alert_id}/acknowledge", summary="Acknowledge an open alert")
async def acknowledge(
    alert_id: AlertId, key: ApiKey = Depends(api_key("alerts:write")), db: asyncpg.Pool = Depends(pool)
) -> dict[str, Any]:
    result: dict[str, Any] = await _act(db, alert_id, key, "acknowledge")
    return result


@router.post("/{alert_id}/snooze", summary="Snooze an alert until a time")
async def snooze(
    alert_id: AlertId,
    body: SnoozeBody,
    key: ApiKey = Depends(api_key("alerts:write")),
    db: asyncpg.Pool = Depends(pool),
) -> dict[str, Any]:
    if body.until.tzinfo is None:
        raise HTTPException(status_code=422, detail="until: give a time zone offset (for example Z)")
    try:
        body.until.astimezone(dt.UTC)
    except OverflowError:
        raise HTTPException(status_code=422, detail=f"until: {body.until.isoformat()} is out of range") from None
    if body.until <= dt.datetime.now(dt.UTC):
        raise HTTPException(status_code=422, detail="until: must be in the future")
    result: dict[str, Any] = await _act(db, alert_id, key, "snooze", body.until)
    return result


@router.post("/{alert_id}/resolve", summary="Resolve an alert")
async def resolve(
    alert_id: AlertId, key: ApiKey = Depends(api_key("alerts:write")), db: asyncpg.Pool = Depends(pool)
) -> dict[str, Any]:
    result: dict[str, Any] = await _act(db, alert_id, key, "resolve")
    return result
