"""CSV downloads from the dashboard: a patient's readings with her doses and measurements
(``/patients/{id}/readings.csv?from=&to=``) and the team's patient list (``/patients.csv``), the same files as the
hospital API's (``records.exports``), under the clinician's session and scoped to her teams."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from clinician_ui import web
from clinician_ui.sessions import Clinician
from records import exports
from telemon.csv_export import csv_response

router = APIRouter(include_in_schema=False)


@router.get("/patients/{patient_id}/readings.csv", response_model=None)
async def readings_csv(patient_id: uuid.UUID, request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    query = request.query_params
    async with web.connection(request) as conn:
        try:
            text, name = await exports.export_patient_readings(
                conn, patient_id, who.team_ids, actor=who.actor, from_text=query.get("from"), to_text=query.get("to")
            )
        except exports.ExportRefused as refused:
            if refused.status == 404:
                raise web.PageError(404, "error.not_found") from None
            raise web.PageError(422, "error.invalid", detail=refused.detail) from None
    return csv_response(text, name)


@router.get("/patients.csv", response_model=None)
async def patients_csv(request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    archived = request.query_params.get("archived") in ("1", "true", "on")
    async with web.connection(request) as conn:
        text = await exports.export_team_patients(conn, who.team_ids, actor=who.actor, archived=archived)
    return csv_response(text, "telemon-patients.csv")
