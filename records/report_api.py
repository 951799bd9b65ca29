"""The hospital API's PDF report: ``GET /api/v1/patients/{id}/report.pdf`` (``patients:read``).

``kind=report`` (default) is the patient report of a period (default: the last 14 local days); ``kind=letter`` the
end-of-monitoring letter (default: the whole monitoring, from the diagnosis to the delivery). One path for both:
the same patient, period, language and unit, the same audit record (``patient.report`` with the kind). Another
team's patient is a 404 exactly like a missing one."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query
from fastapi.responses import Response

from alerts import messages
from records import report
from telemon.api_keys import ApiKey
from telemon.auth import api_key, pool

router = APIRouter(prefix="/api/v1", tags=["reports"])

BOUND = "a date (YYYY-MM-DD, the patient's local midnight) or an ISO 8601 timestamp with its offset"
PDF_ANSWER: dict[int | str, dict[str, object]] = {
    200: {"content": {"application/pdf": {}}, "description": "the report as a PDF document"},
    404: {"description": "no such patient among the key's care teams"},
    422: {"description": "a bound, the kind, the language or the unit is not one the report knows"},
}


@router.get(
    "/patients/{patient_id}/report.pdf",
    summary="A patient's report, or her end-of-monitoring letter, as PDF",
    response_class=Response,
    responses=PDF_ANSWER,
)
async def report_pdf(
    patient_id: Annotated[uuid.UUID, Path(description="The patient's telemon id.")],
    key: Annotated[ApiKey, Depends(api_key("patients:read"))],
    db: Annotated[asyncpg.Pool, Depends(pool)],
    from_: Annotated[str | None, Query(alias="from", description=f"inclusive: {BOUND}")] = None,
    to: Annotated[str | None, Query(description=f"exclusive: {BOUND}")] = None,
    kind: Annotated[
        Literal["report", "letter"],
        Query(description="report: the period's report (default the last 14 days); letter: end of monitoring"),
    ] = "report",
    lang: Annotated[Literal["en", "fr"] | None, Query(description="en or fr (default: Accept-Language)")] = None,
    unit: Annotated[Literal["mg/dL", "mmol/L", "g/L"], Query(description="the glucose unit shown")] = "mg/dL",
    accept_language: Annotated[str | None, Header(description="the language when lang is not given")] = None,
) -> Response:
    language = lang or messages.language_of(accept_language)
    try:
        data, pdf = await report.report_pdf(
            db,
            patient_id,
            key.team_ids,
            actor=f"api_key:{key.id}",
            printed_by=key.label,
            kind=kind,
            from_text=from_,
            to_text=to,
            lang=language,
            unit=unit,
        )
    except report.ReportRefused as refused:
        raise HTTPException(status_code=refused.status, detail=refused.detail) from None
    return report.pdf_response(data, pdf)
