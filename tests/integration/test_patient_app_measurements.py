"""The companion app's other kinds, through the patient's own API against a real PostgreSQL: ``GET /api/v1/me``
hands her the plan in force dose by dose (what the app pre-fills), the doses, ketones, weights and blood pressures
she sends with her app token through the device contract are stored once (a retry with the phone's ids is all
duplicates, a wrong one refused by index without failing the others), and ``GET /api/v1/me/measurements`` gives
them back, hers only, page by page."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from telemon import treatment
from telemon.app.services import Services
from tests.support.clinic import clinic_client
from tests.support.factories import add_device, patient_with_device


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with clinic_client(services) as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def item(minutes_ago: int, kind: str, **fields: Any) -> dict[str, Any]:
    """An item as the app makes it: its own id (so that a retry is a duplicate), the instant with its offset."""
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=minutes_ago)
    return {"id": f"app-{uuid.uuid4()}", "measured_at": at.isoformat(), "kind": kind, **fields}


async def test_me_hands_her_the_plan_in_force_dose_by_dose(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    her = await patient_with_device(db, kind="app", profile="FR")
    assert (await api.get("/api/v1/me", headers=bearer(her.token))).json()["plan"] is None
    async with db.acquire() as conn:
        for units in (8.0, 10.0):  # a second version: the dose raised
            plan = treatment.Plan(
                "insulin",
                basal=treatment.Basal("NPH", units, "22:00"),
                prandial_product="NovoRapid",
                prandial={"breakfast": 4.0, "dinner": 6.5},
            )
            await treatment.new_version(conn, her.patient_id, plan, actor="test")
    me = (await api.get("/api/v1/me", headers=bearer(her.token))).json()
    assert me["treatment"] == "insulin"
    assert me["plan"]["version"] == 2 and me["plan"]["treatment"] == "insulin"
    assert me["plan"]["doses"] == [
        {"slot": "bedtime", "insulin": "basal", "product": "NPH", "units": 10.0, "time": "22:00"},
        {"slot": "breakfast", "insulin": "rapid", "product": "NovoRapid", "units": 4.0, "time": None},
        {"slot": "dinner", "insulin": "rapid", "product": "NovoRapid", "units": 6.5, "time": None},
    ]
    # a morning basal is the breakfast injection; metformin has no dose to log but its plan is there
    other = await patient_with_device(db, kind="app")
    async with db.acquire() as conn:
        morning = treatment.Plan("insulin", basal=treatment.Basal("Levemir", 6, "08:00"))
        await treatment.new_version(conn, other.patient_id, morning, actor="test")
    doses = (await api.get("/api/v1/me", headers=bearer(other.token))).json()["plan"]["doses"]
    assert [(d["slot"], d["product"], d["units"]) for d in doses] == [("breakfast", "Levemir", 6.0)]
    third = await patient_with_device(db, kind="app")
    async with db.acquire() as conn:
        pills = treatment.Plan("metformin", metformin_mg=1000, metformin_times=("08:00", "20:00"))
        await treatment.new_version(conn, third.patient_id, pills, actor="test")
    plan = (await api.get("/api/v1/me", headers=bearer(third.token))).json()["plan"]
    assert (plan["treatment"], plan["metformin_mg"], plan["doses"]) == ("metformin", 1000, [])
    # the language change answers the same profile, plan included
    changed = await api.patch("/api/v1/me", json={"language": "en"}, headers=bearer(her.token))
    assert changed.json()["plan"]["version"] == 2


async def test_her_doses_and_measurements_are_stored_once_and_come_back_hers_only(
    api: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    her = await patient_with_device(db, kind="app", profile="ADA", time_zone="America/New_York")
    items = [
        item(300, "insulin", units=10, insulin="basal", product="NPH", slot="bedtime"),
        item(240, "ketone", value=0.4, unit="mmol/L"),
        item(200, "ketone", urine="trace"),
        item(180, "weight", value=160.2, unit="lb"),
        item(120, "blood_pressure", systolic=142, diastolic=91, pulse=80, unit="mmHg"),
        item(60, "insulin", units=4.5, insulin="rapid", slot="lunch"),
    ]
    wrong = item(30, "blood_pressure", systolic=80, diastolic=120, unit="mmHg")  # the two numbers swapped
    first = await api.post("/api/v1/readings", json={"readings": [*items, wrong]}, headers=bearer(her.token))
    assert first.status_code == 200, first.text
    receipt = first.json()
    assert (receipt["accepted"], receipt["duplicates"]) == (6, 0)
    assert [r["index"] for r in receipt["rejected"]] == [6] and "diastolic" in receipt["rejected"][0]["reason"]
    # the phone lost the answer and sends the queue again, with the same ids: nothing is doubled
    again = await api.post("/api/v1/readings", json={"readings": items}, headers=bearer(her.token))
    assert again.json() == {"accepted": 0, "duplicates": 6, "rejected": []}
    assert await db.fetchval("SELECT count(*) FROM measurements WHERE patient_id = $1", her.patient_id) == 6

    listed: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        page = await api.get("/api/v1/me/measurements", params=params, headers=bearer(her.token))
        assert page.status_code == 200, page.text
        listed += page.json()["items"]
        cursor = page.json()["next"]
        if cursor is None:
            break
    assert [m["client_id"] for m in listed] == [i["id"] for i in items]  # oldest first, the phone's ids
    dose, blood, urine, weight, pressure, rapid = listed
    assert (dose["kind"], dose["value"], dose["insulin"], dose["product"], dose["slot"]) == (
        "insulin", 10.0, "basal", "NPH", "bedtime"
    )  # fmt: skip
    assert (blood["value"], blood["unit_sent"], blood["urine"]) == (0.4, "mmol/L", None)
    assert (urine["value"], urine["urine"]) == (None, "trace")
    assert (weight["value_sent"], weight["unit_sent"]) == (160.2, "lb")
    assert weight["value"] == pytest.approx(160.2 * 0.45359237)  # kg, the canonical unit
    assert (pressure["systolic"], pressure["diastolic"], pressure["pulse"]) == (142, 91, 80)
    assert (rapid["value"], rapid["product"]) == (4.5, None)
    assert all(m["device_kind"] == "app" and m["device_id"] == her.device_id for m in listed)
    assert dose["local_time"].endswith(("-05:00", "-04:00"))  # her own zone

    only = await api.get("/api/v1/me/measurements", params={"kind": "insulin"}, headers=bearer(her.token))
    assert [m["client_id"] for m in only.json()["items"]] == [items[0]["id"], items[-1]["id"]]
    recent = await api.get(
        "/api/v1/me/measurements",
        params={"from": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=90)).isoformat()},
        headers=bearer(her.token),
    )
    assert [m["client_id"] for m in recent.json()["items"]] == [items[-1]["id"]]
    assert (
        await api.get("/api/v1/me/measurements", params={"kind": "glucose"}, headers=bearer(her.token))
    ).status_code == 422
    assert (
        await api.get("/api/v1/me/measurements", params={"to": "tomorrow"}, headers=bearer(her.token))
    ).status_code == 422
    read = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE patient_id = $1 AND action = 'me.measurements.read'", her.patient_id
    )
    assert read >= 4

    # another patient sees none of them; a meter's token is not the patient's key to her record
    other = await patient_with_device(db, kind="app")
    assert (await api.get("/api/v1/me/measurements", headers=bearer(other.token))).json()["items"] == []
    meter = await add_device(db, her.patient_id, kind="meter")
    assert (await api.get("/api/v1/me/measurements", headers=bearer(meter.token))).status_code == 403
    assert (await api.get("/api/v1/me/measurements")).status_code == 401
