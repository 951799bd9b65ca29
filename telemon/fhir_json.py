"""FHIR R4 over HTTP, shared by every FHIR route (the import in ``ingest.fhir``, the read side and the CGM summary in
``records``): the media type, ``OperationOutcome`` answers, the route class that turns every error of a FHIR route
(authentication included) into one, and the 503 of a database outage. In the core so that both domains say FHIR
one way without one reaching into the other."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from telemon.outage import UNAVAILABLE_TEXT

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
FHIR_JSON = "application/fhir+json"
MEDIA_TYPES = (FHIR_JSON, "application/json")

REASON_PHRASES = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Unprocessable Entity",
}
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
}


def issue(code: str, diagnostics: str, expression: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        found["expression"] = [expression]
    return found


def operation_outcome(issues: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": list(issues)}


class FhirJSONResponse(JSONResponse):
    media_type = FHIR_JSON


def fhir_response(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return FhirJSONResponse(body, status_code=status, headers=headers)


def unavailable(scope: Scope, retry_after_s: int) -> JSONResponse:
    """The 503 of a database outage as FHIR says it: an OperationOutcome whose issue is ``transient``."""
    outcome = operation_outcome([issue("transient", UNAVAILABLE_TEXT)])
    return fhir_response(outcome, 503, {"Retry-After": str(retry_after_s), "Cache-Control": "no-store"})


def diagnostics(detail: Any) -> str:
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = f" (line {item['line']}, column {item['column']})" if "line" in item else ""
                parts.append(f"{item.get('msg')}{where}")
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


def error_outcome(exc: StarletteHTTPException) -> JSONResponse:
    code = getattr(exc, "code", None) or ISSUE_CODES.get(exc.status_code, "exception")
    found = issue(code, diagnostics(exc.detail), getattr(exc, "expression", None))
    return fhir_response(operation_outcome([found]), exc.status_code, dict(exc.headers or {}))


class FhirRoute(APIRoute):
    """A route whose errors, those of its dependencies (API key) included, come out as an OperationOutcome."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def fhir_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except StarletteHTTPException as exc:
                return error_outcome(exc)
            except RequestValidationError as exc:
                diagnostics = "; ".join(f"{e.get('msg')} at {e.get('loc')}" for e in exc.errors())
                return fhir_response(operation_outcome([issue("invalid", diagnostics)]), 400)

        return fhir_handler
