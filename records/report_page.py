"""The patient report as PDF from the dashboard: the hospital API's report (``records.report``), under the
clinician's session, in her language and unit unless the link asks for others, scoped to her teams."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from clinician_ui import web
from clinician_ui.sessions import Clinician
from records import report

router = APIRouter(include_in_schema=False)


@router.get("/patients/{patient_id}/report.pdf")
async def report_pdf(patient_id: uuid.UUID, request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    """``?kind=report|letter&from=&to=&lang=&unit=``, as the API's; another team's patient is the 404 page."""
    query = request.query_params
    try:
        data, pdf = await report.report_pdf(
            web.pool(request),
            patient_id,
            who.team_ids,
            actor=who.actor,
            printed_by=who.display_name,
            kind=query.get("kind") or "report",
            from_text=query.get("from"),
            to_text=query.get("to"),
            lang=query.get("lang") or who.language,
            unit=query.get("unit") or who.unit,
        )
    except report.ReportRefused as refused:
        if refused.status == 404:
            raise web.PageError(404, "error.not_found") from None
        raise web.PageError(422, "error.invalid", detail=refused.detail) from None
    return report.pdf_response(data, pdf)
