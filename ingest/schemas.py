"""What the ingest JSON endpoints answer, as pydantic models, so that ``/openapi.json`` tells integrators what they
receive. The routes declare them with ``responses=`` and keep writing their answers themselves: a receipt is built
and encoded on the hot path (orjson), and validating it through a model on every sync would cost more than the
encoding does."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class RejectedReading(BaseModel):
    index: int | None = Field(
        description="The position of the refused item in the message (its ``readings`` array, the Nightscout"
        " upload, the Bundle); null when the whole message is refused."
    )
    reason: str = Field(description="Why, in words: the field at fault and what was expected.")


class Receipt(BaseModel):
    """The answer to a device's sync (``POST /api/v1/readings``), also published as the MQTT receipt on
    ``telemon/v1/devices/{device_id}/receipts``. Sent only once the readings are stored: what it counts is kept."""

    accepted: int = Field(description="Readings stored by this message.")
    duplicates: int = Field(description="Readings already stored (a re-sent memory): counted, not an error.")
    rejected: list[RejectedReading] = Field(description="The refused items; the others were stored all the same.")


class StoredReading(BaseModel):
    id: int
    measured_at: str = Field(description="UTC, after the correction of the device's clock.")
    value_mgdl: float
    value: float = Field(description="As the device sent it, in ``unit``.")
    unit: str
    kind: str
    context: str
    context_inferred: bool
    meal: str | None
    minutes_after_meal: int | None
    device_id: str
    flags: list[str]
    source: str = Field(description="http, mqtt, nightscout or fhir.")
    device_time: str = Field(description="The time the device gave, in UTC.")
    clock_offset_s: int = Field(description="Seconds added to the device's time (its clock was off).")
    note: str | None


class ReadingsPage(BaseModel):
    items: list[StoredReading]
    next: str | None = Field(description="The cursor of the next page, or null on the last one.")


class NightscoutDocument(BaseModel):
    """An entry or a treatment as Nightscout answers it: the document as uploaded (normalised as Nightscout does),
    with its ``_id``."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(alias="_id")


class NightscoutStatus(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str
    name: str
    version: str
    serverTime: str  # Nightscout's field names
    serverTimeEpoch: int
    apiEnabled: bool
    careportalEnabled: bool
    settings: dict[str, Any]


class NightscoutAuthMessage(BaseModel):
    canRead: bool  # Nightscout's field names
    canWrite: bool
    isAdmin: bool
    message: str = Field(description="OK or UNAUTHORIZED")
    rolefound: str
    permissions: str


class NightscoutAuth(BaseModel):
    status: int
    message: NightscoutAuthMessage


class FhirObservation(BaseModel):
    """The Observation as it was sent, its ``id`` being the stored reading's (a ``Location`` header names it)."""

    model_config = ConfigDict(extra="allow")

    resourceType: Literal["Observation"]  # FHIR's field names
    id: str = Field(description="The stored reading's id.")


class FhirEntryResponse(BaseModel):
    status: str = Field(description="What a single POST of the entry would have answered.", examples=["201 Created"])
    location: str | None = Field(None, description="``Observation/<reading id>`` of a stored entry.")
    outcome: dict[str, Any] | None = Field(None, description="The OperationOutcome of a refused entry.")


class FhirBundleEntry(BaseModel):
    response: FhirEntryResponse


class FhirBundleResponse(BaseModel):
    """One entry per entry sent, in order."""

    resourceType: Literal["Bundle"]  # FHIR's field names
    id: str
    type: Literal["batch-response", "transaction-response"]
    timestamp: str
    entry: list[FhirBundleEntry]


def answered_with(model: Any, description: str) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=`` entry for its 200 answer (``model``: a model, or a list of one)."""
    return {200: {"model": model, "description": description}}
