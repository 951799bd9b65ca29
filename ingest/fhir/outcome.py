"""FHIR's way of saying no: ``OperationOutcome`` answers, the route class that turns every error of the FHIR routes
(authentication included) into one, the 503 of a database outage, and ``Refused``, an entry that cannot be stored
with the status, issue code and element a single POST of it gets."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from ingest.body import BodyError
from ingest.readings import storable
from telemon.outage import UNAVAILABLE_TEXT

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


class FhirBodyError(BodyError):
    """A refused body, with the FHIR issue code and the element at fault."""

    def __init__(
        self, status_code: int, code: str, diagnostics: str, raw: bytes = b"", expression: str | None = None
    ) -> None:
        super().__init__(status_code, diagnostics, raw)
        self.code = code
        self.expression = expression


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


class Refused(Exception):
    """An entry that cannot be stored: the HTTP status a single POST of it gets, the FHIR issue code, and the
    element at fault (a FHIRPath from ``Observation``, or from ``Bundle.entry[i]`` for the entry itself)."""

    def __init__(self, status: int, code: str, diagnostics: str, expression: str | None = None) -> None:
        diagnostics = storable(diagnostics)  # it is recorded and answered: never a text that cannot be
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics
        self.expression = expression

    @property
    def reason(self) -> str:
        """The reason recorded in ``ingest_rejections``."""
        return f"{self.expression}: {self.diagnostics}" if self.expression else self.diagnostics

    def issue(self, entry: int | None = None) -> dict[str, Any]:
        expression = self.expression
        if entry is not None and expression and expression.startswith("Observation."):
            expression = f"Bundle.entry[{entry}].resource.{expression.removeprefix('Observation.')}"
        diagnostics = self.diagnostics if entry is None else f"entry {entry}: {self.diagnostics}"
        return issue(self.code, diagnostics, expression)
