"""Hostile input over HTTP: whatever a sender puts in a body, a cursor or a path, the answer is a 4xx with a
specific reason (or a 200 whose receipt names the refused items), never a 500; and every refusal of an ingest is
recorded in ``ingest_rejections``, exactly as many as the answer reports.

Bodies are written with ``json.dumps`` (ASCII, so a lone surrogate travels as its ``\\ud800`` escape and NaN as
the literal devices send), or as raw text where JSON encoders cannot write them (nesting a thousand deep)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemon.security import nightscout_secret
from tests.support.factories import Setup, api_key, patient_with_device

NOW = dt.datetime.now(dt.UTC)
# Dates the pipeline accepts: within the pregnancy of a patient due in 60 days, and not in the future.
RECENTLY = (NOW - dt.timedelta(hours=3)).isoformat().replace("+00:00", "Z")
RECENT_MS = int((NOW - dt.timedelta(hours=3)).timestamp() * 1000)
DEEP = 1_000  # nesting past Python's recursion limit once decoders and encoders add their frames
BIG = int("9" * 400)  # a 400-digit integer: no float holds it
FHIR_JSON = "application/fhir+json"


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def deep(depth: int = DEEP) -> str:
    return "[" * depth + "1" + "]" * depth


async def new_rejections(db: asyncpg.Pool, after: int) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT id, device_id, source, item_index, reason, raw FROM ingest_rejections WHERE id > $1 ORDER BY id", after
    )


async def last_rejection(db: asyncpg.Pool) -> int:
    return int(await db.fetchval("SELECT coalesce(max(id), 0) FROM ingest_rejections"))


def device_headers(setup: Setup) -> dict[str, str]:
    return {"Authorization": f"Bearer {setup.token}", "Content-Type": "application/json"}


def ns_headers(setup: Setup) -> dict[str, str]:
    return {"api-secret": nightscout_secret(setup.token), "Content-Type": "application/json"}


def reading(**fields: Any) -> dict[str, Any]:
    return {"measured_at": RECENTLY, "value": 100, "unit": "mg/dL", **fields}


def observation(patient_id: uuid.UUID, **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": RECENTLY,
        "valueQuantity": {"value": 101, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
        **fields,
    }


# --- the device wire format over POST /api/v1/readings ---------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (reading(note="before\x00after"), "note: contains a NUL character"),
        (reading(id="abc\x00"), "id: contains a NUL character"),
        (reading(note="\ud800"), "note: is not valid Unicode (a lone UTF-16 surrogate)"),
        (reading(id="x\udfff"), "id: is not valid Unicode (a lone UTF-16 surrogate)"),
        (reading(value=BIG), "value: an integer of 400 digits is out of range"),
        ("\ud800", "a reading must be an object, got str"),
        (reading(kind=[[["deep"]]]), "kind: an array of 1 items is not one of smbg, cgm"),
    ],
)
async def test_unstorable_items_are_refused_alone_and_recorded(
    client: httpx.AsyncClient, db: asyncpg.Pool, item: Any, reason: str
) -> None:
    setup = await patient_with_device(db)
    good = reading(measured_at=(NOW - dt.timedelta(hours=1)).isoformat())

    response = await client.post(
        "/api/v1/readings", content=dumps({"readings": [good, item]}), headers=device_headers(setup)
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": [{"index": 1, "reason": reason}]}
    [row] = await db.fetch(
        "SELECT item_index, reason, raw FROM ingest_rejections WHERE device_id = $1", setup.device_id
    )
    assert (row["item_index"], row["reason"]) == (1, reason)
    assert "\x00" not in row["raw"]
    assert row["raw"].encode()  # stored, and valid UTF-8 on the way back


async def test_a_clock_at_year_1_with_a_reading_at_year_9999_is_refused(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db)
    body = {"device_time": "0001-01-01T00:00:00Z", "readings": [reading(measured_at="9999-12-31T00:00:00Z")]}

    response = await client.post("/api/v1/readings", content=dumps(body), headers=device_headers(setup))

    assert response.status_code == 200, response.text
    [refused] = response.json()["rejected"]
    assert refused["index"] == 0
    assert "out of range after clock correction" in refused["reason"]
    assert await db.fetchval("SELECT count(*) FROM ingest_rejections WHERE device_id = $1", setup.device_id) == 1


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b'"\\ud800"', 422, "expected an object with a readings array"),
        (b"\xff\xfe\x00", 422, "body is not JSON: UnicodeDecodeError"),
        (("[" * 5 * DEEP + "]" * 5 * DEEP).encode(), 422, "RecursionError"),
        (b'{"readings": [{"value": ' + b"9" * 5000 + b"}]}", 422, "Exceeds the limit"),
        (b'{"readings": [' + deep().encode() + b"]}", 200, "a reading must be an object, got list"),
        (b'{"device_time": ' + deep().encode() + b', "readings": []}', 200, "device_time: expected an ISO 8601"),
    ],
)
async def test_hostile_bodies_are_a_4xx_or_refused_and_recorded(
    client: httpx.AsyncClient, db: asyncpg.Pool, body: bytes, status: int, reason: str
) -> None:
    setup = await patient_with_device(db)

    response = await client.post("/api/v1/readings", content=body, headers=device_headers(setup))

    assert response.status_code == status, response.text
    assert reason in response.text
    [row] = await db.fetch("SELECT reason, raw FROM ingest_rejections WHERE device_id = $1", setup.device_id)
    assert reason in row["reason"]
    assert "\x00" not in row["raw"]


async def test_a_content_length_that_is_not_ascii_digits_is_not_a_500(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """``"²".isdigit()`` is true, ``int("²")`` fails: the declared length is read only when it is ASCII digits."""
    setup = await patient_with_device(db)
    headers: list[tuple[str, str | bytes]] = [*device_headers(setup).items(), ("Content-Length", b"\xb2")]

    response = await client.post("/api/v1/readings", content=dumps({"readings": [reading()]}), headers=headers)

    assert response.status_code < 500
    assert response.json()["accepted"] == 1


# --- Nightscout -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"type": "sgv", "sgv": float("-inf"), "date": RECENT_MS}, "value: -inf is not a finite number"),
        ({"type": "sgv", "sgv": float("nan"), "date": RECENT_MS}, "value: nan is not a finite number"),
        ({"type": "sgv", "sgv": 120, "date": BIG}, "date: an integer of 400 digits is out of range"),
        ({"type": "mbg", "mbg": BIG, "date": RECENT_MS}, "value: an integer of 400 digits is out of range"),
        ({"type": "sgv", "sgv": 5, "date": RECENT_MS, "direction": "\ud800\x00"}, "direction \\ud800\\u0000"),
        ({"type": "sgv", "sgv": -1e300, "date": RECENT_MS}, "below 39: a Dexcom error code"),
        ({"type": "sgv", "sgv": 120, "dateString": "0001-01-01T00:00:00+14:00"}, "is out of range"),
    ],
)
async def test_nightscout_entries_refuse_hostile_values_and_record_them(
    client: httpx.AsyncClient, db: asyncpg.Pool, entry: dict[str, Any], reason: str
) -> None:
    setup = await patient_with_device(db, kind="cgm")
    good = {"type": "sgv", "sgv": 120, "date": RECENT_MS}

    response = await client.post("/ns/api/v1/entries", content=dumps([good, entry]), headers=ns_headers(setup))

    assert response.status_code == 200, response.text
    assert (response.headers["X-Telemon-Accepted"], response.headers["X-Telemon-Rejected"]) == ("1", "1")
    [row] = await db.fetch("SELECT item_index, reason FROM ingest_rejections WHERE device_id = $1", setup.device_id)
    assert row["item_index"] == 1
    assert reason in row["reason"]


async def test_nightscout_treatments_echo_what_json_can_carry_and_refuse_unstorable_notes(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db)
    treatments = [
        {"eventType": "Meal Bolus", "carbs": float("nan"), "insulin": float("inf"), "notes": "\ud800"},
        {"eventType": "Note", "carbs": float("nan"), "notes": "\ud800"},
        {"eventType": "BG Check", "glucose": 110, "created_at": RECENTLY, "notes": "fine\x00"},
        {"eventType": "BG Check", "glucose": 105, "date": BIG},
        {"eventType": "BG Check", "glucose": 99, "created_at": RECENTLY, "nested": json.loads(deep(90))},
    ]

    response = await client.post("/ns/api/v1/treatments", content=dumps(treatments), headers=ns_headers(setup))
    status = await client.post("/ns/api/v1/devicestatus", content=b'{"battery": NaN}', headers=ns_headers(setup))

    assert response.status_code == 200, response.text
    answer = response.json()
    # cleaned up as Nightscout does: the NaN numbers dropped, the surrogate escaped, time and id added
    assert answer[0] == {
        "eventType": "Note",
        "notes": "\\ud800",
        "_id": answer[0]["_id"],
        "created_at": answer[0]["created_at"],
        "utcOffset": 0,
    }
    assert [a.get("glucose") for a in answer] == [None, 99]  # the refused three are left out
    assert response.headers["X-Telemon-Rejected"] == "3"
    rows = await db.fetch(
        "SELECT item_index, reason FROM ingest_rejections WHERE device_id = $1 ORDER BY item_index", setup.device_id
    )
    assert [(r["item_index"], r["reason"]) for r in rows] == [
        (0, "insulin: inf is not a number of units"),  # a dose that is no number is refused, never guessed
        (2, "note: contains a NUL character"),
        (3, "date: an integer of 400 digits is out of range"),
    ]
    assert status.status_code == 200
    assert status.json() == [{"battery": None}]


# --- FHIR -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        ({"code": {"coding": [{"system": "http://loinc.org", "code": ["2339-0"]}]}}, "Observation.code.coding"),
        ({"code": {"coding": [{"system": "http://loinc.org", "code": {"a": 1}}]}}, "Observation.code.coding"),
        (
            {"valueQuantity": {"value": 101, "unit": "mg/dL", "comparator": ["<"]}},
            "Observation.valueQuantity.comparator",
        ),
        ({"valueQuantity": {"value": BIG, "unit": "mg/dL"}}, "Observation.valueQuantity.value"),
        ({"valueQuantity": {"value": float("-inf"), "unit": "mg/dL"}}, "Observation.valueQuantity.value"),
        ({"subject": {"identifier": {"value": "MRN\x00"}}}, "Observation.subject.identifier.value"),
        ({"subject": {"identifier": {"value": "MRN\ud800"}}}, "Observation.subject.identifier.value"),
        ({"id": "f\x00"}, "Observation.id"),
        ({"note": [{"text": "\udc00"}]}, "Observation.note"),
        ({"effectiveDateTime": "0001-01-01T00:00:00+14:00"}, "Observation.effectiveDateTime"),
    ],
)
async def test_fhir_observation_refuses_hostile_elements_with_a_4xx_and_records_them(
    client: httpx.AsyncClient, db: asyncpg.Pool, change: dict[str, Any], expression: str
) -> None:
    setup = await patient_with_device(db)
    key = await api_key(db, "readings:write")
    before = await last_rejection(db)

    response = await client.post(
        "/fhir/Observation",
        content=dumps(observation(setup.patient_id, **change)),
        headers={"Authorization": f"Bearer {key}", "Content-Type": FHIR_JSON},
    )

    assert response.status_code == 422, response.text
    [found] = response.json()["issue"]
    assert found["expression"] == [expression]
    [row] = await new_rejections(db, before)
    assert row["source"] == "fhir"
    assert row["reason"].startswith(expression)


async def test_fhir_echo_of_a_stored_observation_carries_what_json_can(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db)
    key = await api_key(db, "readings:write")
    extra = {"extension": [{"url": "x", "valueDecimal": float("nan"), "valueString": "\ud800"}]}

    response = await client.post(
        "/fhir/Observation",
        content=dumps(observation(setup.patient_id, **extra)),
        headers={"Authorization": f"Bearer {key}", "Content-Type": FHIR_JSON},
    )

    assert response.status_code == 201, response.text
    assert response.json()["extension"] == [{"url": "x", "valueDecimal": None, "valueString": "\\ud800"}]


async def test_fhir_batch_refuses_a_hostile_entry_alone(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db)
    key = await api_key(db, "readings:write")
    bad = observation(setup.patient_id, code={"coding": [{"system": "http://loinc.org", "code": {"x": [1]}}]})
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": observation(setup.patient_id), "request": {"method": "POST", "url": "Observation"}},
            {"resource": bad, "request": {"method": "POST", "url": "Observation"}},
            {"resource": observation(setup.patient_id), "request": {"method": ["POST"], "url": "Observation"}},
        ],
    }
    before = await last_rejection(db)

    response = await client.post(
        "/fhir", content=dumps(bundle), headers={"Authorization": f"Bearer {key}", "Content-Type": FHIR_JSON}
    )

    assert response.status_code == 200, response.text
    assert [e["response"]["status"][:3] for e in response.json()["entry"]] == ["201", "422", "422"]
    assert [r["item_index"] for r in await new_rejections(db, before)] == [1, 2]


# --- the read side: cursors, times and ids out of range ---------------------------------------------------------


def cursor(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "position",
    [
        '["2026-01-01T00:00:00+00:00", Infinity]',
        '["2026-01-01T00:00:00+00:00", NaN]',
        f'["2026-01-01T00:00:00+00:00", {2**64}]',
        f'["2026-01-01T00:00:00+00:00", {BIG}]',
        '["0001-01-01T00:00:00+14:00", 1]',
        '["2026-01-01T00:00:00", 1]',
        '["2026-01-01T00:00:00+00:00", 1, 2]',
        deep(),
    ],
)
async def test_readings_cursor_out_of_range_is_a_400(
    client: httpx.AsyncClient, db: asyncpg.Pool, position: str
) -> None:
    setup = await patient_with_device(db)
    key = await api_key(db, "readings:read", teams=[setup.team_id])

    response = await client.get(
        f"/api/v1/patients/{setup.patient_id}/readings", params={"cursor": cursor(position)}, headers={"X-API-Key": key}
    )

    assert response.status_code == 400, response.text
    assert response.json() == {"detail": "cursor: not a cursor this API returned"}


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"from": "0001-01-01T00:00:00+14:00"}, "from: 0001-01-01T00:00:00+14:00 is out of range"),
        ({"to": "9999-12-31T23:59:59-14:00"}, "to: 9999-12-31T23:59:59-14:00 is out of range"),
    ],
)
async def test_readings_times_out_of_range_are_a_422(
    client: httpx.AsyncClient, db: asyncpg.Pool, params: dict[str, str], reason: str
) -> None:
    setup = await patient_with_device(db)
    key = await api_key(db, "readings:read", teams=[setup.team_id])

    response = await client.get(
        f"/api/v1/patients/{setup.patient_id}/readings", params=params, headers={"X-API-Key": key}
    )

    assert response.status_code == 422, response.text
    assert response.json() == {"detail": reason}


@pytest.mark.parametrize(
    "position",
    [
        '[-3, "2026-01-01T00:00:00+00:00", Infinity]',
        f'[-3, "2026-01-01T00:00:00+00:00", {2**63}]',
        f'[{2**40}, "2026-01-01T00:00:00+00:00", 1]',
        '[-3, "9999-12-31T23:59:59-14:00", 1]',
        '[-3, "2026-01-01T00:00:00+00:00"]',
    ],
)
async def test_alerts_cursor_out_of_range_is_a_400(client: httpx.AsyncClient, db: asyncpg.Pool, position: str) -> None:
    key = await api_key(db, "alerts:read")

    response = await client.get("/api/v1/alerts", params={"cursor": cursor(position)}, headers={"X-API-Key": key})

    assert response.status_code == 400, response.text
    assert response.json() == {"detail": "cursor: not a cursor this API returned"}


async def test_alert_ids_beyond_64_bits_rules_with_nul_and_times_out_of_range_are_a_422(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    writer = {"X-API-Key": await api_key(db, "alerts:write", "alerts:read")}
    until = {"until": "9999-12-31T23:59:59-14:00"}

    answers = [
        await client.post(f"/api/v1/alerts/{2**63}/acknowledge", headers=writer),
        await client.post(f"/api/v1/alerts/{2**63}/resolve", headers=writer),
        await client.post(f"/api/v1/alerts/{BIG}/snooze", json={"until": RECENTLY}, headers=writer),
        await client.post("/api/v1/alerts/1/snooze", json=until, headers=writer),
        await client.get("/api/v1/alerts", params={"rule": "hypo\x00"}, headers=writer),
    ]

    assert [a.status_code for a in answers] == [422] * 5, [a.text for a in answers]
    assert answers[3].json() == {"detail": "until: 9999-12-31T23:59:59-14:00 is out of range"}
    assert (await client.post(f"/api/v1/alerts/{2**63 - 1}/resolve", headers=writer)).status_code == 404


# --- property: generated hostile bodies at every ingest endpoint ------------------------------------------------

DEEP_MARK = "@@deep@@"  # replaced by nesting a thousand deep in the body's text
TEXTS = ["\x00", "a\x00b", "\ud800", "x\udfff", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "", "Z"]
NUMBERS = [float("nan"), float("inf"), float("-inf"), 2**63, -(2**64), BIG, -BIG, 1e308]
ODD: list[Any] = [None, True, 0, -1, 39, 38.5, DEEP_MARK, [], {}]
# Each family of hostile values is drawn as often as generated text or numbers, which are seldom hostile alone.
LEAF = st.one_of(
    st.sampled_from(TEXTS),
    st.sampled_from(NUMBERS),
    st.sampled_from(ODD),
    st.text(max_size=8),
    st.integers(),
    st.floats(),
)
HOSTILE = st.one_of(
    LEAF,
    st.recursive(
        LEAF,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.sampled_from(["a", "\x00", "\ud800"]), children, max_size=2),
        ),
        max_leaves=5,
    ),
)


def _body_text(value: Any) -> bytes:
    """JSON text (NaN and Infinity as devices write them), with ``DEEP_MARK`` strings replaced by nesting deeper
    than any encoder could write."""
    return json.dumps(value).replace(f'"{DEEP_MARK}"', deep()).encode()


def _or_hostile(draw: st.DrawFn, document: Any) -> Any:
    """``document`` four times in five, else a hostile value in its place (the whole body refused)."""
    return draw(HOSTILE) if draw(st.integers(0, 4)) == 0 else document


def _fill(template: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    return {**template, **fields}


@st.composite
def readings_bodies(draw: st.DrawFn) -> bytes:
    keys = st.sampled_from(["measured_at", "value", "unit", "kind", "context", "meal", "id", "note", "flags"])
    items = draw(
        st.lists(
            st.dictionaries(keys, HOSTILE, min_size=1, max_size=3).map(lambda f: _fill(reading(), f)),
            min_size=1,
            max_size=5,
        )
    )
    items += draw(st.lists(HOSTILE, max_size=2))
    sync: dict[str, Any] = {"readings": items}
    if draw(st.booleans()):
        sync["device_time"] = draw(st.one_of(HOSTILE, st.just("0001-01-01T00:00:00Z"), st.just("9999-12-31T00:00Z")))
    return _body_text(_or_hostile(draw, sync))


@st.composite
def entries_bodies(draw: st.DrawFn) -> bytes:
    keys = st.sampled_from(["type", "sgv", "mbg", "date", "dateString", "_id", "direction"])
    template = {"type": "sgv", "sgv": 120, "date": RECENT_MS}
    docs = draw(
        st.lists(
            st.dictionaries(keys, HOSTILE, min_size=1, max_size=3).map(lambda f: _fill(template, f)),
            min_size=1,
            max_size=5,
        )
    )
    return _body_text(_or_hostile(draw, docs))


@st.composite
def treatments_bodies(draw: st.DrawFn) -> bytes:
    keys = st.sampled_from(["glucose", "units", "created_at", "date", "notes", "_id", "carbs"])
    template = {"eventType": "BG Check", "glucose": 110, "created_at": RECENTLY}
    docs = draw(
        st.lists(
            st.dictionaries(keys, HOSTILE, min_size=1, max_size=3).map(lambda f: _fill(template, f)),
            min_size=1,
            max_size=5,
        )
    )
    return _body_text(_or_hostile(draw, docs))


def _observation_strategy(patient_id: uuid.UUID) -> st.SearchStrategy[dict[str, Any]]:
    leaves = {
        "status": HOSTILE,
        "code": st.fixed_dictionaries({"coding": st.lists(st.fixed_dictionaries(
            {"system": st.just("http://loinc.org"), "code": HOSTILE}), max_size=2)}),
        "subject": st.fixed_dictionaries({"identifier": st.fixed_dictionaries({"value": HOSTILE})}),
        "effectiveDateTime": HOSTILE,
        "valueQuantity": st.fixed_dictionaries(
            {"value": HOSTILE, "unit": st.one_of(st.just("mg/dL"), HOSTILE)}, optional={"comparator": HOSTILE}
        ),
        "id": HOSTILE,
        "note": st.lists(st.fixed_dictionaries({"text": HOSTILE}), max_size=2),
        "extension": HOSTILE,
    }  # fmt: skip
    changes = st.dictionaries(st.sampled_from(sorted(leaves)), st.none(), max_size=3).flatmap(
        lambda chosen: st.fixed_dictionaries({key: leaves[key] for key in chosen})
    )
    return changes.map(lambda change: observation(patient_id, **change))


def _reported(path: str, response: httpx.Response) -> int:
    """How many refusals an answer reports: its receipt, or one for a refused body."""
    if response.status_code >= 400:
        issues = response.json().get("issue") if path.startswith("/fhir") else None
        if issues and issues[0]["code"] == "processing":  # a refused transaction: one issue per refused entry
            return len(issues) - 1
        return 1
    if path == "/api/v1/readings":
        return len(response.json()["rejected"])
    if path.startswith("/ns/"):
        return int(response.headers["X-Telemon-Rejected"])
    if path == "/fhir":
        return sum(1 for e in response.json()["entry"] if not e["response"]["status"].startswith("2"))
    return 0


SENDERS: list[tuple[Setup, str]] = []


@pytest.mark.slow
@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
async def test_generated_hostile_bodies_are_never_a_5xx_and_every_refusal_is_recorded(
    client: httpx.AsyncClient, db: asyncpg.Pool, data: st.DataObject
) -> None:
    if not SENDERS:  # one patient for every example: making her anew would take most of the time
        setup = await patient_with_device(db, kind="cgm")
        SENDERS.append((setup, await api_key(db, "readings:write", teams=[setup.team_id])))
    setup, key = SENDERS[0]
    fhir_headers = {"Authorization": f"Bearer {key}", "Content-Type": FHIR_JSON}
    entry = st.fixed_dictionaries(
        {"resource": _observation_strategy(setup.patient_id)},
        optional={"request": st.fixed_dictionaries({"method": st.one_of(st.just("POST"), HOSTILE)})},
    )
    bundle = st.fixed_dictionaries(
        {
            "resourceType": st.just("Bundle"),
            "type": st.sampled_from(["batch", "transaction"]),
            "entry": st.lists(st.one_of(entry, HOSTILE), max_size=3),
        }
    )
    requests = [
        ("/api/v1/readings", data.draw(readings_bodies()), device_headers(setup)),
        ("/ns/api/v1/entries", data.draw(entries_bodies()), ns_headers(setup)),
        ("/ns/api/v1/treatments", data.draw(treatments_bodies()), ns_headers(setup)),
        ("/fhir/Observation", _body_text(data.draw(_observation_strategy(setup.patient_id))), fhir_headers),
        ("/fhir", _body_text(_or_hostile(data.draw, data.draw(bundle))), fhir_headers),
    ]
    anywhere, _, its_headers = requests[data.draw(st.integers(0, len(requests) - 1))]
    requests.append((anywhere, data.draw(st.binary(max_size=64)), its_headers))  # bytes, seldom JSON at all
    for path, body, headers in requests:
        before = await last_rejection(db)
        response = await client.post(path, content=body, headers=headers)
        assert response.status_code < 500, (path, body[:300], response.text)
        recorded = await new_rejections(db, before)
        assert _reported(path, response) == len(recorded), (path, body[:300], response.text)
        assert all("\x00" not in r["raw"] and "\x00" not in r["reason"] for r in recorded)
