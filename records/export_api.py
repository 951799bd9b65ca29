"""The hospital API's CSV exports: ``GET /api/v1/patients/{id}/readings.csv?from=&to=`` (``readings:read``: her
readings with her doses and other measurements) and ``GET /api/v1/patients.csv`` (``patients:read``: the key's
teams' patients). Another team's patient is a 404 exactly like a missing one; every export is audited."""

from __future__ import annotations

import uuid
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import Response

from records import exports
from telemon.api_keys import ApiKey
from telemon.auth import api_key, pool
from telemon.csv_export import csv_response
from telemon.periods import ACCEPTED

router = APIRouter(prefix="/api/v1", tags=["exports"])

CSV_ANSWER: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/csv": {}}, "description": "a header row, then one row per item; times in ISO 8601"},
}
NO_PATIENT: dict[int | str, dict[str, object]] = {
    **CSV_ANSWER,
    404: {"description": "no such patient among the key's care teams"},
    422: {"description": "a bound is not " + ACCEPTED},
}


@router.get(
    "/patients/{patient_id}/readings.csv",
    summary="A patient's readings, doses and measurements of a period, as CSV",
    response_class=Response,
    responses=NO_PATIENT,
)
async def readings_csv(
    patient_id: Annotated[uuid.UUID, Path(description="The patient's telemon id.")],
    key: Annotated[ApiKey, Depends(api_key("readings:read"))],
    db: Annotated[asyncpg.Pool, Depends(pool)],
    from_: Annotated[str | None, Query(alias="from", description=f"inclusive: {ACCEPTED}; default: all")] = None,
    to: Annotated[str | None, Query(description=f"exclusive: {ACCEPTED}; default: now")] = None,
) -> Response:
    async with db.acquire() as conn:
        try:
            text, name = await exports.export_patient_readings(
                conn, patient_id, key.team_ids, actor=f"api_key:{key.id}", from_text=from_, to_text=to
            )
        except exports.ExportRefused as refused:
            raise HTTPException(status_code=refused.status, detail=refused.detail) from None
    return csv_response(text, name)


@router.get(
    "/patients.csv",
    summary="The patients of the key's care teams, as CSV",
    response_class=Response,
    responses=CSV_ANSWER,
)
async def patients_csv(
    key: Annotated[ApiKey, Depends(api_key("patients:read"))],
    db: Annotated[asyncpg.Pool, Depends(pool)],
    archived: Annotated[bool, Query(description="include the archived patients")] = False,
) -> Response:
    async with db.acquire() as conn:
        text = await exports.export_team_patients(conn, key.team_ids, actor=f"api_key:{key.id}", archived=archived)
    return csv_response(text, "telemon-patients.csv")
