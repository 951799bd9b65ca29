"""Every route of the clinic's API × every kind of caller: no key (401), a key without the route's scope (403), a
key of another care team (404, exactly as for a missing patient: the answer says nothing of the other team's
patient), and the right key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from clinic import api as clinic_api
from clinic import postpartum_api, treatment_api
from telemon.app.services import Services
from tests.support.clinic import auth, clinic_client, enrol, enrolment, new_team
from tests.support.factories import api_key

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with clinic_client(services) as http:
        yield http


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {patient} and {device} are filled in
    scope: str
    ok: int  # with the right key
    stranger: int = 404  # with another team's key
    body: dict[str, Any] | None = None

    @property
    def template(self) -> str:
        return self.path.replace("{patient}", "{patient_id}").replace("{device}", "{device_id}")


ROUTES = (
    Route("POST", "/api/v1/patients", "patients:write", 201, stranger=201, body={}),
    Route("GET", "/api/v1/patients", "patients:read", 200, stranger=200),
    Route("GET", "/api/v1/patients/{patient}", "patients:read", 200),
    Route("PATCH", "/api/v1/patients/{patient}", "patients:write", 200, body={"name": "Camille D."}),
    Route("POST", "/api/v1/patients/{patient}/archive", "patients:write", 200),
    Route("POST", "/api/v1/patients/{patient}/unarchive", "patients:write", 200),
    Route("POST", "/api/v1/patients/{patient}/devices", "patients:write", 201, body={"kind": "app"}),
    Route("GET", "/api/v1/patients/{patient}/devices", "patients:read", 200),
    Route("DELETE", "/api/v1/patients/{patient}/devices/{device}", "patients:write", 200),
    Route("POST", "/api/v1/patients/{patient}/devices/{device}/rotate", "patients:write", 200),
    Route("POST", "/api/v1/patients/{patient}/devices/{device}/pairing-code", "patients:write", 201),
    Route("GET", "/api/v1/patients/{patient}/treatment", "patients:read", 200),
    Route(
        "PUT",
        "/api/v1/patients/{patient}/treatment",
        "patients:write",
        200,
        body={
            "treatment": "insulin",
            "basal": {"product": "NPH", "units": 10, "time": "22:00"},
            "note": "fasting high",
        },
    ),
    # before a delivery is recorded, the right key is answered 409 (the test follows the birth)
    Route(
        "POST",
        "/api/v1/patients/{patient}/postpartum-test",
        "patients:write",
        409,
        body={"test": "ogtt_75g", "fasting": 5.2, "two_hour": 8.9, "unit": "mmol/L"},
    ),
    Route("GET", "/api/v1/patients/{patient}/postpartum-tests", "patients:read", 200),
)
OTHER_SCOPE = {"patients:read": "patients:write", "patients:write": "patients:read"}


def test_the_matrix_covers_every_route_with_a_key() -> None:
    keyed = {
        (method, path)
        for router in (clinic_api.router, treatment_api.router, postpartum_api.router)
        for route in router.routes
        for method in getattr(route, "methods", ())
        if (path := getattr(route, "path", "")) != "/api/v1/pairing"
    }
    assert keyed == {(r.method, r.template) for r in ROUTES}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.template}")
async def test_every_route_for_every_caller(api: httpx.AsyncClient, db: asyncpg.Pool, route: Route) -> None:
    team, other_team = await new_team(db), await new_team(db)
    right = await api_key(db, "patients:read", "patients:write", teams=[team])
    wrong_scope = await api_key(db, OTHER_SCOPE[route.scope], "alerts:read", "readings:read", teams=[team])
    stranger = await api_key(db, "patients:read", "patients:write", teams=[other_team])
    patient = await enrol(api, right)
    device = (await api.post(f"/api/v1/patients/{patient['id']}/devices", json={"kind": "meter"},
                             headers=auth(right))).json()  # fmt: skip

    def url(patient_id: str = patient["id"], device_id: str = device["device_id"]) -> str:
        return route.path.format(patient=patient_id, device=device_id)

    def body() -> dict[str, Any] | None:
        return enrolment() if route.body == {} else route.body

    async def call(headers: dict[str, str], target: str | None = None) -> httpx.Response:
        return await api.request(route.method, target or url(), json=body(), headers=headers)

    assert (await call({})).status_code == 401
    assert (await call(auth("tmk_not-a-key"))).status_code == 401
    assert (await call(auth(wrong_scope))).status_code == 403
    assert (await call({"X-API-Key": wrong_scope})).status_code == 403
    foreign = await call(auth(stranger))
    assert foreign.status_code == route.stranger, foreign.text
    if route.stranger == 404:
        missing = await call(auth(right), url(patient_id=MISSING))
        assert missing.status_code == 404
        assert foreign.json()["detail"].replace(patient["id"], "<id>") == missing.json()["detail"].replace(
            MISSING, "<id>"
        )
    elif route.method == "GET":
        assert patient["id"] not in foreign.text  # the other team's list does not show her
    if "{device}" in route.path:
        # a device of another patient of the same team is not this patient's
        neighbour = await enrol(api, right)
        assert (await call(auth(right), url(patient_id=neighbour["id"]))).status_code == 404
    # nothing of the refused calls changed her
    after = await api.get(f"/api/v1/patients/{patient['id']}", headers=auth(right))
    assert after.json() == patient

    answer = await call(auth(right))
    assert answer.status_code == route.ok, answer.text
    if "{patient}" in route.path:
        assert (await call(auth(right), url(patient_id="not-a-uuid"))).status_code == 422
