"""The PDF report as FHIR: ``GET /fhir/DiagnosticReport?patient=<id>[&date=geYYYY-MM-DD][&date=ltYYYY-MM-DD]``, a
``searchset`` Bundle holding one DiagnosticReport whose ``presentedForm`` is the patient report of the period
(``records.report``, the same PDF as ``/api/v1/patients/{id}/report.pdf``), base64-encoded, ``application/pdf``.

The report is made when it is asked for, not stored: the search answers the report of the period the ``date``
parameters give (``ge``/``eq`` the first day, ``lt`` the day after the last, ``le`` the last; a date is the
patient's local day, a dateTime with its offset an instant), by default the last 14 days. Its id is derived from
the patient, the period, the language and the unit, so that the same request names the same resource. ``patients:read``; another team's
patient is a 404 like a missing one; the read is audited (``patient.report``); the language follows
``Accept-Language`` (English or French), the unit ``unit`` (mg/dL by default)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request

from alerts import messages
from records import report
from records.fhir_api import fhir_base, searchset
from records.fhir_resources import diagnostic_report, instant
from records.report_texts import report_text
from telemon.api_keys import ApiKey
from telemon.auth import api_key, pool
from telemon.fhir_json import FhirJSONResponse, FhirRoute

router = APIRouter(prefix="/fhir", tags=["fhir"], route_class=FhirRoute, default_response_class=FhirJSONResponse)

KNOWN_PARAMS = {"patient", "subject", "date", "unit", "_format"}
REPORT_IDS = uuid.UUID("6f1d2c3e-5b1a-4c8e-9a57-0e7f3c1d9b24")  # the namespace of the reports' derived ids


def _patient_id(text: str) -> uuid.UUID | None:
    """``Patient/<id>`` (absolute or not) or the bare id; None when it names no telemon id."""
    parts = text.strip().rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] != "Patient":
        raise HTTPException(status_code=400, detail=f"patient: {text[:80]!r} does not refer to a Patient")
    try:
        return uuid.UUID(parts[-1])
    except ValueError:
        return None


def _bounds(dates: list[str]) -> tuple[str | None, str | None]:
    """The report's ``from`` and ``to`` (exclusive) from FHIR ``date`` parameters."""
    first: str | None = None
    after: str | None = None
    for text in dates:
        prefix, value = (text[:2], text[2:]) if text[:2].isalpha() else ("eq", text)
        if prefix not in ("eq", "ge", "lt", "le"):
            raise HTTPException(status_code=400, detail=f"date: the prefix {prefix[:2]!r} is not supported here")
        if prefix in ("eq", "ge"):
            first = value
        if prefix == "lt":
            after = value
        if prefix in ("eq", "le"):
            try:
                after = (dt.date.fromisoformat(value) + dt.timedelta(days=1)).isoformat()
            except ValueError:
                raise HTTPException(status_code=400, detail=f"date: {prefix} takes a date (YYYY-MM-DD)") from None
    return first, after


@router.get(
    "/DiagnosticReport",
    summary="The patient report of a period as a FHIR DiagnosticReport with the PDF (searchset Bundle)",
)
async def search_diagnostic_reports(
    request: Request,
    key: Annotated[ApiKey, Depends(api_key("patients:read"))],
    db: Annotated[asyncpg.Pool, Depends(pool)],
    patient: Annotated[str | None, Query(description="Patient/<id> or the id")] = None,
    unit: Annotated[Literal["mg/dL", "mmol/L", "g/L"], Query(description="the glucose unit of the PDF")] = "mg/dL",
    accept_language: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    unknown = sorted(set(request.query_params) - KNOWN_PARAMS)
    if unknown:
        raise HTTPException(status_code=400, detail=f"unknown search parameter {', '.join(unknown)}")
    reference = patient or request.query_params.get("subject")
    if not reference:
        raise HTTPException(status_code=400, detail="patient: a DiagnosticReport search names its patient")
    patient_id = _patient_id(reference)
    if patient_id is None:
        raise HTTPException(status_code=404, detail=f"no patient {reference[:80]}")
    first, after = _bounds(request.query_params.getlist("date"))
    lang = messages.language_of(accept_language)
    try:
        data, pdf = await report.report_pdf(
            db,
            patient_id,
            key.team_ids,
            actor=f"api_key:{key.id}",
            printed_by=key.label,
            from_text=first,
            to_text=after,
            lang=lang,
            unit=unit,
        )
    except report.ReportRefused as refused:
        raise HTTPException(status_code=refused.status, detail=refused.detail) from None
    period = data.period
    found = diagnostic_report(
        patient_id=patient_id,
        start=instant(period.start),
        end=instant(period.end),
        issued=data.now,
        pdf=pdf,
        title=f"{report_text('report.title', lang)} {period.first_day} – {period.last_day}",
        language=lang,
        cgm="cgm" in data.patient["device_kinds"] or len(data.cgm_t) > 0,  # the HL7 CGM IG's summary PDF
    )
    found["id"] = str(
        uuid.uuid5(REPORT_IDS, f"{patient_id}/{period.start.isoformat()}/{period.end.isoformat()}/{lang}/{unit}")
    )
    return searchset([found], total=1, links=[("self", str(request.url))], base=fhir_base(request))
