"""FHIR's way of saying no to an import: ``FhirBodyError``, a refused body, and ``Refused``, an entry that cannot be
stored with the status, issue code and element a single POST of it gets. The answers themselves (OperationOutcome,
the route class, the 503 of an outage) are the core's (``telemon.fhir_json``), shared with the read side."""

from __future__ import annotations

from typing import Any

from ingest.body import BodyError
from ingest.readings import storable
from telemon.fhir_json import issue


class FhirBodyError(BodyError):
    """A refused body, with the FHIR issue code and the element at fault."""

    def __init__(
        self, status_code: int, code: str, diagnostics: str, raw: bytes = b"", expression: str | None = None
    ) -> None:
        super().__init__(status_code, diagnostics, raw)
        self.code = code
        self.expression = expression


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
