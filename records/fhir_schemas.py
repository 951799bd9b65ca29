"""What the FHIR read side answers, as pydantic models for ``/openapi.json`` only: the routes write their resources
themselves (``records.fhir_resources``); these name the resource types and their main elements, the rest being
FHIR R4's."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class FhirResource(BaseModel):
    """A FHIR R4 resource (Patient, Observation, CapabilityStatement)."""

    model_config = ConfigDict(extra="allow")

    resourceType: str = Field(examples=["Observation"])  # FHIR's field names


class FhirBundleLink(BaseModel):
    relation: Literal["self", "next", "previous"]
    url: str


class FhirBundleEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    fullUrl: str = Field(description="``<base>/fhir/<type>/<id>``, or ``urn:uuid:…`` within a collection.")
    resource: FhirResource


class FhirBundle(BaseModel):
    """A ``searchset`` (with ``total`` and paging links), or the CGM summary's ``collection`` (or ``transaction``)."""

    model_config = ConfigDict(extra="allow")

    resourceType: Literal["Bundle"]
    id: str
    type: Literal["searchset", "collection", "transaction"]
    total: int | None = Field(None, description="searchset: how many resources the search matches, all pages.")
    link: list[FhirBundleLink] | None = None
    entry: list[FhirBundleEntry] = Field(default_factory=list)


def answered_with(model: Any, description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "description": description}}
