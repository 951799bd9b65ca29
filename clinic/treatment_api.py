"""The treatment plan through the hospital API: read the plan in force and its history, and write a new version.

The same checks and audit as the dashboard's form, through ``telemon.treatment``: a dose outside 0.5–100 units or
not in half units, metformin outside 250–3000 mg, a time that is not HH:MM, a product longer than 40 characters is
a 422 naming the field. Another care team's patient is 404, exactly as a missing one; an archived one 409."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from clinic.errors import ClinicRoute
from clinic.schemas import Strict, Treatment, plain_text
from clinic.service import actor, by_key, field_error
from telemon import audit, patients, treatment
from telemon.api_keys import ApiKey
from telemon.auth import api_key, pool
from telemon.db import Conn

router = APIRouter(prefix="/api/v1", tags=["treatment"], route_class=ClinicRoute)

Reader = Annotated[ApiKey, Depends(api_key("patients:read"))]
Writer = Annotated[ApiKey, Depends(api_key("patients:write"))]
Db = Annotated[asyncpg.Pool, Depends(pool)]
PatientId = Annotated[uuid.UUID, Path(description="The patient's telemon id.")]
NO_PATIENT: dict[int | str, dict[str, Any]] = {404: {"description": "no such patient among the key's care teams"}}

Product = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=treatment.PRODUCT_MAX_CHARS),
    AfterValidator(plain_text),
    Field(description="The insulin's name: " + ", ".join(treatment.BASAL_PRODUCTS) + ", or another."),
]
Text = Annotated[str, StringConstraints(max_length=treatment.TEXT_MAX_CHARS), AfterValidator(plain_text)]
Units = Annotated[float, Field(description="Units: 0.5 to 100, in steps of 0.5.", examples=[10])]
Time = Annotated[str, Field(max_length=5, description="Local time of day, HH:MM.", examples=["22:00"])]


class BasalIn(Strict):
    product: Product
    units: Units
    time: Time


class PrandialIn(Strict):
    """Units before each meal; a meal left out has no dose."""

    breakfast: Units | None = None
    lunch: Units | None = None
    dinner: Units | None = None


class TreatmentIn(Strict):
    """A new version of the plan, in force from now."""

    treatment: Treatment
    basal: BasalIn | None = None
    prandial: PrandialIn | None = None
    prandial_product: Product | None = Field(None, description="The rapid insulin's name, for example NovoRapid.")
    metformin_mg: int | None = Field(None, description="Metformin per day, 250 to 3000 mg.")
    metformin_times: list[Time] = Field(default_factory=list, max_length=6, description="When it is taken, HH:MM.")
    instruction: Text = Field("", description="The instruction as the patient reads it.")
    note: Text = Field("", description="Why the plan changes.")


class BasalOut(BaseModel):
    product: str
    units: float
    time: str


class PlanOut(BaseModel):
    version: int
    treatment: Treatment
    metformin_mg: int | None
    metformin_times: list[str]
    basal: BasalOut | None
    prandial: dict[str, float] | None
    prandial_product: str | None
    instruction: str
    note: str = Field(description="Why the plan changed.")
    created_by: str = Field(description="Who wrote this version: clinician:<id> or api_key:<id>.")
    created_at: dt.datetime


class TreatmentOut(BaseModel):
    treatment: Treatment = Field(description="The treatment of her record (the plan in force's, once there is one).")
    current: PlanOut | None = Field(description="The plan in force, or null when none was ever written.")
    history: list[PlanOut] = Field(description="Every version, newest first.")


def plan_out(plan: treatment.Plan) -> PlanOut:
    return PlanOut.model_validate(plan.as_json())


async def _patient(conn: Conn, patient_id: uuid.UUID, key: ApiKey) -> patients.PatientRecord:
    found = await patients.patient_of_teams(conn, patient_id, key.team_ids)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no patient {patient_id}")
    return found


@router.get(
    "/patients/{patient_id}/treatment", summary="The treatment plan in force and its history", responses=NO_PATIENT
)
async def read_plan(patient_id: PatientId, key: Reader, db: Db) -> TreatmentOut:
    """The plan in force (the newest version) and every version, newest first, with who wrote it, when and why."""
    async with db.acquire() as conn:
        found = await _patient(conn, patient_id, key)
        versions = await treatment.history(conn, patient_id)
        await audit.record(conn, actor=actor(key), action="treatment.read", patient_id=patient_id, detail=by_key(key))
    history = [plan_out(p) for p in versions]
    return TreatmentOut.model_validate(
        {"treatment": found.treatment, "current": history[0] if history else None, "history": history}
    )


@router.put(
    "/patients/{patient_id}/treatment",
    summary="Write a new version of the treatment plan",
    responses={**NO_PATIENT, 409: {"description": "the patient is archived (read-only): un-archive her first"}},
)
async def write_plan(patient_id: PatientId, body: TreatmentIn, key: Writer, db: Db) -> PlanOut:
    """A new version of the plan, in force from now; the record's ``treatment`` follows it. The version written is
    answered."""
    prandial = {} if body.prandial is None else body.prandial.model_dump(exclude_none=True)
    plan = treatment.Plan(
        treatment=body.treatment,
        metformin_mg=body.metformin_mg,
        metformin_times=tuple(body.metformin_times),
        basal=None if body.basal is None else treatment.Basal(body.basal.product, body.basal.units, body.basal.time),
        prandial_product=body.prandial_product,
        prandial=prandial,
        instruction=body.instruction,
        note=body.note,
    )
    async with db.acquire() as conn:
        await _patient(conn, patient_id, key)
        try:
            stored = await treatment.new_version(conn, patient_id, plan, actor=actor(key), detail=by_key(key))
        except patients.FieldError as exc:
            raise field_error(exc.field, str(exc)) from None
        except treatment.PlanRefused as exc:
            if exc.reason == "archived":
                raise HTTPException(
                    status_code=409, detail=f"patient {patient_id} is archived and read-only; un-archive her first"
                ) from None
            raise HTTPException(status_code=404, detail=f"no patient {patient_id}") from None
    return plan_out(stored)
