"""Bad input to the clinic's API is a 422 whose detail names the field, never a 500: wrong types, unknown values,
dates out of range (as the command line refuses them), NUL characters, lone surrogates, control characters, huge
strings, unknown fields, and bodies that are not JSON."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from telemon.app.services import Services
from tests.support.clinic import WRITE, auth, clinic_client, enrol, enrolment, new_team
from tests.support.factories import api_key

TODAY = dt.date.today()
HUGE = "x" * 100_000


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with clinic_client(services) as http:
        yield http


def names(answer: httpx.Response, field: str) -> bool:
    """Whether a 422's detail names ``field``: in a ``loc`` of the framework's list, or first in a text."""
    detail = answer.json()["detail"]
    if isinstance(detail, str):
        return detail.startswith(f"{field}:")
    return any(field in item.get("loc", []) for item in detail)


# (field at fault, the enrolment's changes)
BAD_ENROLMENTS: list[tuple[str, dict[str, Any]]] = [
    ("readings_per_day", {"readings_per_day": "four"}),
    ("readings_per_day", {"readings_per_day": "4"}),
    ("readings_per_day", {"readings_per_day": True}),
    ("readings_per_day", {"readings_per_day": 0}),
    ("readings_per_day", {"readings_per_day": 13}),
    ("readings_per_day", {"readings_per_day": 2**80}),
    ("readings_per_day", {"readings_per_day": 4.5}),
    ("profile", {"profile": "XX"}),
    ("profile", {"profile": "fr"}),
    ("treatment", {"treatment": 5}),
    ("due_date", {"due_date": "2026-13-45"}),
    ("due_date", {"due_date": "not a date"}),
    ("due_date", {"due_date": (TODAY + dt.timedelta(days=400)).isoformat()}),
    ("due_date", {"due_date": (TODAY - dt.timedelta(days=200)).isoformat()}),
    ("due_date", {"due_date": "9999-12-31"}),
    ("due_date", {"due_date": None}),
    ("diagnosis_date", {"diagnosis_date": (TODAY + dt.timedelta(days=3)).isoformat()}),
    ("diagnosis_date", {"diagnosis_date": "0001-01-01"}),
    ("timezone", {"timezone": "Mars/Olympus"}),
    ("timezone", {"timezone": "../../../etc/passwd"}),
    ("timezone", {"timezone": "Europe"}),
    ("timezone", {"timezone": "Europe/Paris\x00"}),
    ("timezone", {"timezone": HUGE}),
    ("timezone", {"timezone": 1}),
    ("name", {"name": "Camille\x00Martin"}),
    ("name", {"name": "Camille\x07"}),
    ("name", {"name": HUGE}),
    ("name", {"name": "   "}),
    ("name", {"name": ["Camille"]}),
    ("external_id", {"external_id": ""}),
    ("external_id", {"external_id": "H\x00-1"}),
    ("external_id", {"external_id": "H" * 65}),
    ("external_id", {"external_id": {"$ne": ""}}),
    ("team_id", {"team_id": "my team"}),
    ("nmae", {"nmae": "typo"}),
]


@pytest.mark.parametrize(
    ("field", "changes"), BAD_ENROLMENTS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_ENROLMENTS)]
)
async def test_a_bad_enrolment_names_its_field(
    api: httpx.AsyncClient, db: asyncpg.Pool, field: str, changes: dict[str, Any]
) -> None:
    key = await api_key(db, *WRITE, teams=[await new_team(db)])
    answer = await api.post("/api/v1/patients", json=enrolment(**changes), headers=auth(key))
    assert answer.status_code == 422, answer.text[:500]
    assert names(answer, field), answer.text[:500]


@pytest.mark.parametrize("field", ["name", "external_id", "timezone"])
async def test_a_lone_surrogate_is_refused_by_name(api: httpx.AsyncClient, db: asyncpg.Pool, field: str) -> None:
    key = await api_key(db, *WRITE, teams=[await new_team(db)])
    raw = json.dumps(enrolment(**{field: "SURROGATE"})).replace("SURROGATE", "Camille \\ud800")
    answer = await api.post("/api/v1/patients", content=raw, headers={**auth(key), "Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text[:500]
    assert names(answer, field)


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"[1, 2]", b'{"external_id": ', b"\xff\xfe", b"null", b'"text"', b"[" * 100_000],
    ids=["empty", "text", "array", "truncated", "not-utf8", "null", "string", "deep"],
)
async def test_a_body_that_is_not_an_object_is_a_422(api: httpx.AsyncClient, db: asyncpg.Pool, content: bytes) -> None:
    key = await api_key(db, *WRITE, teams=[await new_team(db)])
    headers = {**auth(key), "Content-Type": "application/json"}
    for path in ("/api/v1/patients", "/api/v1/pairing"):
        answer = await api.post(path, content=content, headers=headers)
        assert answer.status_code == 422, (path, answer.text[:300])


async def test_bad_changes_devices_and_queries_name_their_field(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    key = await api_key(db, *WRITE, teams=[await new_team(db)])
    patient = await enrol(api, key)
    path = f"/api/v1/patients/{patient['id']}"
    patches: list[tuple[str, dict[str, Any]]] = [
        ("due_date", {"due_date": (TODAY + dt.timedelta(days=500)).isoformat()}),
        ("timezone", {"timezone": "Nowhere/Land"}),
        ("name", {"name": None}),
        ("profile", {"profile": None}),
        ("readings_per_day", {"readings_per_day": False}),
        ("archived", {"archived": True}),
        ("id", {"id": "00000000-0000-4000-8000-000000000000"}),
    ]
    for field, body in patches:
        answer = await api.patch(path, json=body, headers=auth(key))
        assert answer.status_code == 422 and names(answer, field), (field, answer.text[:300])

    for field, body in [
        ("kind", {"kind": "pump"}),
        ("kind", {}),
        ("label", {"kind": "meter", "label": HUGE}),
        ("label", {"kind": "meter", "label": "a\x00b"}),
        ("token", {"kind": "meter", "token": "mine"}),
    ]:
        answer = await api.post(f"{path}/devices", json=body, headers=auth(key))
        assert answer.status_code == 422 and names(answer, field), (field, answer.text[:300])

    for params, field in [
        ({"status": "gone"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 10**20}, "limit"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"updated_since": "2026-01-01T00:00:00"}, "updated_since"),
        ({"updated_since": "0000-01-01T00:00:00Z"}, "updated_since"),
        ({"updated_since": "x" * 10_000}, "updated_since"),
    ]:
        answer = await api.get("/api/v1/patients", params=params, headers=auth(key))
        assert answer.status_code == 422 and names(answer, field), (params, answer.text[:300])
    assert (
        await api.get("/api/v1/patients", params={"cursor": "bm90IGEgY3Vyc29y"}, headers=auth(key))
    ).status_code == 400

    for target in ("/api/v1/patients/not-a-uuid", f"{path}/devices/a%00b/rotate", f"{path}/devices/{'d' * 200}"):
        answer = await api.request("POST" if target.endswith("rotate") else "GET", target, headers=auth(key))
        assert answer.status_code in (404, 405, 422), (target, answer.text[:300])
    assert (await api.delete(f"{path}/devices/a%00b", headers=auth(key))).status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"code": 123},
        {"code": "x" * 1000},
        {"code": "ABCD\x00EFGH-JKMN"},
        {"code": "ABC"},
        {},
        {"code": "ABCD-EFGH-JKMN", "more": 1},
    ],
    ids=["int", "huge", "nul", "short", "missing", "extra"],
)
async def test_a_malformed_pairing_code_is_a_422(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    answer = await api.post("/api/v1/pairing", json=body)
    assert answer.status_code == 422
    assert names(answer, "code") or names(answer, "more")


HOSTILE: list[Any] = [
    None, True, False, 0, -1, 13, 2**63, -(2**80), 1.5, 1e308, "", " ", "\x00", "\ud800", "a\udfffb", "\u202e",
    "x" * 100_000, [], {}, [1, "a"], {"$gt": ""}, "2026-02-30", "9999-12-31", "0001-01-01", "-infinity",
    "Europe", "Etc", "NICE", "meter", "insulin", "00000000-0000-0000-0000-000000000000", "ABCD-EFGH-JKMN",
]  # fmt: skip


async def test_random_hostile_bodies_never_make_a_500(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    """Every field of every body, given values from a hostile corpus at random (a fixed seed, so a failure is
    reproduced): each answer is below 500, and each 422 names its places."""
    rng = random.Random(20261204)
    key = await api_key(db, *WRITE, teams=[await new_team(db)])
    patient = await enrol(api, key)
    device = (
        await api.post(f"/api/v1/patients/{patient['id']}/devices", json={"kind": "app"}, headers=auth(key))
    ).json()
    targets = [
        ("POST", "/api/v1/patients", enrolment()),
        ("PATCH", f"/api/v1/patients/{patient['id']}", {"name": "Camille", "due_date": enrolment()["due_date"]}),
        ("POST", f"/api/v1/patients/{patient['id']}/devices", {"kind": "meter", "label": "x"}),
        ("POST", "/api/v1/pairing", {"code": device["pairing_code"]}),
    ]
    statuses: set[int] = set()
    for _ in range(240):
        method, path, valid = rng.choice(targets)
        body = dict(valid)
        for name in rng.sample(sorted(body), rng.randint(1, len(body))):
            body[name] = rng.choice(HOSTILE)
        if rng.random() < 0.1:
            body[rng.choice(["extra", "id", "archived", "team"])] = rng.choice(HOSTILE)
        raw = json.dumps(body).encode()  # lone surrogates travel escaped, as a JSON client sends them
        answer = await api.request(method, path, content=raw, headers={**auth(key), "Content-Type": "application/json"})
        statuses.add(answer.status_code)
        assert answer.status_code < 500, (method, path, body, answer.text[:300])
        if answer.status_code == 422:
            assert all(item["loc"] for item in answer.json()["detail"]), answer.text[:300]
    assert 422 in statuses
