"""The postpartum glucose test through the hospital API: record a test once the delivery is recorded, and list them.

The same checks, classification and audit as the dashboard's form, through ``telemon.postpartum``: a value outside
the plausible range, a value the test is not made of, a missing one, a date before the delivery or in the future is a
422 naming every refused field; before the delivery is recorded, or for an archived patient, 409. Another care
team's patient is 404, exactly as a missing one."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from clinic.errors import ClinicRoute
from clinic.schemas import Strict
from clinic.service import actor, by_key
from telemon import audit, patients, postpartum
from telemon.api_keys import ApiKey
from telemon.auth import api_key, pool
from telemon.db import Conn

router = APIRouter(prefix="/api/v1", tags=["postpartum"], route_class=ClinicRoute)

Reader = Annotated[ApiKey, Depends(api_key("patients:read"))]
Writer = Annotated[ApiKey, Depends(api_key("patients:write"))]
Db = Annotated[asyncpg.Pool, Depends(pool)]
PatientId = Annotated[uuid.UUID, Path(description="The patient's telemon id.")]
NO_PATIENT: dict[int | str, dict[str, Any]] = {404: {"description": "no such patient among the key's care teams"}}

Test = Literal["ogtt_75g", "fasting_glucose", "hba1c"]
GlucoseUnit = Literal["mg/dL", "mmol/L", "g/L"]
Classification = Literal[
    "normal", "elevated_hba1c", "impaired_fasting_glucose", "impaired_glucose_tolerance", "diabetes"
]
Value = Annotated[float, Field(strict=True, allow_inf_nan=False)]

assert set(postpartum.TESTS) == set(Test.__args__)  # type: ignore[attr-defined]
assert set(postpartum.CLASSIFICATIONS) == set(Classification.__args__)  # type: ignore[attr-defined]


class PostpartumTestIn(Strict):
    """A postpartum glucose test's results, as the laboratory reported them (at most 3 decimals)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"test": "ogtt_75g", "fasting": 5.2, "two_hour": 8.9, "hba1c_percent": None, "unit": "mmol/L"},
                {"test": "hba1c", "hba1c_mmol_mol": 41, "date": "2027-05-02"},
            ]
        },
    )

    test: Test = Field(description="ogtt_75g (fasting and 2-hour values), fasting_glucose, or hba1c.")
    date: dt.date | None = Field(None, description="The day of the test: from the delivery to today (default).")
    fasting: Value | None = Field(None, description="Fasting plasma glucose, in unit.", examples=[5.2])
    two_hour: Value | None = Field(None, description="Plasma glucose 2 hours after 75 g of glucose, in unit.",
                                   examples=[8.9])  # fmt: skip
    hba1c_percent: Value | None = Field(None, description="HbA1c in % (NGSP), for an hba1c test.")
    hba1c_mmol_mol: Value | None = Field(None, description="Or HbA1c in mmol/mol (IFCC): one of the two.")
    unit: GlucoseUnit | None = Field(None, description="The glucose values' unit; needed for glucose values.")


class PostpartumTestOut(BaseModel):
    id: int
    patient_id: uuid.UUID
    date: dt.date
    test: Test
    unit: GlucoseUnit | None
    fasting: float | None = Field(description="As entered, in unit.")
    two_hour: float | None
    hba1c_percent: float | None
    hba1c_mmol_mol: float | None
    fasting_mgdl: float | None = Field(description="The fasting value in mg/dL.")
    two_hour_mgdl: float | None
    classification: Classification = Field(
        description="The most severe finding, with the thresholds of the patient's guideline profile; an HbA1c of "
        "high risk (ADA 5.7-6.4 %, NICE 39-47 mmol/mol) is elevated_hba1c."
    )
    findings: list[Classification] = Field(description="Every abnormal value's category, least severe first.")
    follow_up: list[str] = Field(description="What the guideline asks for next: " + ", ".join(postpartum.FOLLOW_UPS))
    profile: str = Field(description="The guideline profile the test was classified with.")
    source: str = Field(description="The guideline the thresholds come from.")
    recorded_by: str = Field(description="clinician:<id> or api_key:<id>.")
    recorded_at: dt.datetime


class PostpartumTestPage(BaseModel):
    items: list[PostpartumTestOut] = Field(description="Newest first: the first is the current test.")
    next: str | None = Field(description="Always null: a patient's tests fit in one page.")


def stored_out(stored: postpartum.StoredTest) -> PostpartumTestOut:
    return PostpartumTestOut.model_validate(stored.as_json())


def _decimal(value: float | None) -> Decimal | None:
    """The value as it was written (the shortest decimal of the JSON number)."""
    return None if value is None else Decimal(repr(value))


async def _patient(conn: Conn, patient_id: uuid.UUID, key: ApiKey) -> patients.PatientRecord:
    found = await patients.patient_of_teams(conn, patient_id, key.team_ids)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no patient {patient_id}")
    return found


@router.post(
    "/patients/{patient_id}/postpartum-test",
    status_code=201,
    summary="Record a postpartum glucose test",
    responses={
        **NO_PATIENT,
        409: {"description": "no delivery recorded yet (the test follows the birth), or the patient is archived"},
    },
)
async def record_test(patient_id: PatientId, body: PostpartumTestIn, key: Writer, db: Db) -> PostpartumTestOut:
    """Classified with the thresholds of the patient's guideline profile, each value compared with the threshold
    the guideline states in the value's unit; answers the stored test with its classification and follow-up."""
    entry = postpartum.Entry(
        test=body.test,
        unit=body.unit,
        fasting=_decimal(body.fasting),
        two_hour=_decimal(body.two_hour),
        hba1c_percent=_decimal(body.hba1c_percent),
        hba1c_mmol_mol=_decimal(body.hba1c_mmol_mol),
        tested_on=body.date,
    )
    async with db.acquire() as conn:
        await _patient(conn, patient_id, key)
        try:
            stored = await postpartum.record(conn, patient_id, entry, actor=actor(key), detail=by_key(key))
        except postpartum.TestRefused as refused:
            raise RequestValidationError(
                [{"loc": ("body", p.field), "msg": str(p), "type": "value_error"} for p in refused.problems]
            ) from None
        except postpartum.RecordRefused as exc:
            if exc.reason == "not_delivered":
                raise HTTPException(
                    status_code=409,
                    detail=f"no delivery recorded for patient {patient_id}: the postpartum test follows the birth",
                ) from None
            if exc.reason == "archived":
                raise HTTPException(
                    status_code=409, detail=f"patient {patient_id} is archived and read-only; un-archive her first"
                ) from None
            raise HTTPException(status_code=404, detail=f"no patient {patient_id}") from None
    return stored_out(stored)


@router.get(
    "/patients/{patient_id}/postpartum-tests", summary="A patient's postpartum glucose tests", responses=NO_PATIENT
)
async def list_tests(patient_id: PatientId, key: Reader, db: Db) -> PostpartumTestPage:
    """Every recorded test, newest first, with its classification, follow-up and who recorded it."""
    async with db.acquire() as conn:
        await _patient(conn, patient_id, key)
        found = await postpartum.tests_of(conn, patient_id)
        await audit.record(conn, actor=actor(key), action="postpartum.read", patient_id=patient_id, detail=by_key(key))
    return PostpartumTestPage(items=[stored_out(t) for t in found], next=None)
