"""HTTP ingest for devices, ``POST /api/v1/readings``, and the read-back for hospitals,
``GET /api/v1/patients/{patient_id}/readings``."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from ingest import queries, schemas
from ingest.body import BodyError, parse_json, read_body, refusal_reason
from ingest.readings import DeviceContext
from ingest.service import IngestService, device_by_token, receipt_json
from telemon import audit
from telemon.api_keys import ApiKey
from telemon.auth import api_key, bearer_token, pool, unauthorized
from telemon.pagination import cursor_instant, cursor_int, decode_cursor, envelope, limit_param
from telemon.periods import END, EPOCH, bound_instant, parse_bound

router = APIRouter(prefix="/api/v1", tags=["readings"])


def service(request: Request) -> IngestService:
    found: IngestService = request.app.state.services.ingest
    return found


async def device(request: Request, db: asyncpg.Pool = Depends(pool)) -> DeviceContext:
    token = bearer_token(request)
    if token is None:
        raise unauthorized("missing bearer token (Authorization: Bearer <device token>)")
    found = await device_by_token(db, token)
    if found is None:
        raise unauthorized("unknown device token")
    if not found.active:
        raise HTTPException(status_code=403, detail=f"device {found.device_id} is disabled")
    return found


@router.post(
    "/readings",
    summary="Send a device's readings",
    response_model=None,
    responses={
        **schemas.answered_with(schemas.Receipt, "stored; the receipt of the sync"),
        401: {"description": "missing or unknown token"},
        413: {"description": "body too large"},
        422: {"description": "body is not JSON or not of the wire format"},
    },
)
async def post_readings(
    request: Request, sender: DeviceContext = Depends(device), ingest: IngestService = Depends(service)
) -> Response:
    """Body: the device wire format, ``{"device_time": optional, "readings": [...]}``, optionally gzip-encoded.
    Answer: ``{"accepted", "duplicates", "rejected": [{"index", "reason"}]}``; a bad reading never fails the
    good ones beside it."""
    settings = request.app.state.services.settings
    try:
        body = await read_body(request, settings.max_body_bytes)
        payload = parse_json(body)
        if not isinstance(payload, dict) or not isinstance(payload.get("readings"), list):
            raise BodyError(
                422,
                [{"loc": ["body", "readings"], "msg": "expected an object with a readings array", "type": "missing"}],
                body,
            )
        if len(payload["readings"]) > settings.max_batch_readings:
            raise BodyError(
                413,
                f"{len(payload['readings'])} readings in one request; at most {settings.max_batch_readings}",
                body[:256],
            )
    except BodyError as exc:
        await ingest.reject("http", sender.device_id, refusal_reason(exc), exc.raw)
        raise
    receipt = await ingest.receive(payload, sender, "http")
    return Response(receipt_json(receipt), media_type="application/json")


def reading_out(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "measured_at": row["measured_at"].astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "value_mgdl": row["value_mgdl"],
        "value": row["value_raw"],
        "unit": row["unit_raw"],
        "kind": row["kind"],
        "context": row["context"],
        "context_inferred": row["context_inferred"],
        "meal": row["meal"],
        "minutes_after_meal": row["minutes_after_meal"],
        "device_id": row["device_id"],
        "flags": list(row["flags"]),
        "source": row["source"],
        "device_time": row["device_time"].astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "clock_offset_s": row["clock_offset_s"],
        "note": row["note"],
    }


@router.get(
    "/patients/{patient_id}/readings",
    summary="A patient's readings, in time order",
    response_model=None,
    responses=schemas.answered_with(schemas.ReadingsPage, "a page of readings and the cursor of the next"),
)
async def get_readings(
    patient_id: uuid.UUID,
    from_: str | None = Query(
        None,
        alias="from",
        description="inclusive: an ISO 8601 timestamp with its offset, or a date (the patient's local midnight)",
        examples=["2026-11-01", "2026-11-01T06:00:00Z"],
    ),
    to: str | None = Query(
        None,
        description="exclusive: an ISO 8601 timestamp with its offset, or a date (the patient's local midnight)",
        examples=["2026-11-08", "2026-11-08T06:00:00+01:00"],
    ),
    limit: int = Depends(limit_param),
    cursor: str | None = Query(None),
    key: ApiKey = Depends(api_key("readings:read")),
    db: asyncpg.Pool = Depends(pool),
) -> dict[str, Any]:
    first, last_ = parse_bound(from_, "from"), parse_bound(to, "to")
    after_time, after_id = decode_cursor(cursor, cursor_instant, cursor_int) or (EPOCH - dt.timedelta(days=1), 0)
    time_zone = await db.fetchval(queries.PATIENT_ZONE_OF_TEAMS, patient_id, list(key.team_ids))
    if time_zone is None:
        raise HTTPException(status_code=404, detail=f"no patient {patient_id}")
    start = bound_instant(first, "from", time_zone) or EPOCH
    end = bound_instant(last_, "to", time_zone) or END
    rows = await db.fetch(queries.READINGS_PAGE, patient_id, start, end, after_time, after_id, limit + 1)
    await audit.record(
        db,
        actor=f"api_key:{key.id}",
        action="readings.read",
        patient_id=patient_id,
        detail={"from": start.isoformat(), "to": end.isoformat(), "count": min(len(rows), limit)},
    )
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    return envelope([reading_out(r) for r in rows], [last["measured_at"].isoformat(), last["id"]] if last else None)
