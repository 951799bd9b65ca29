"""The FHIR read side for hospitals: ``GET /fhir/metadata``, ``GET /fhir/Patient/{id}``,
``GET /fhir/Patient?identifier=``, ``GET /fhir/Observation?patient=&code=&category=&date=&_count=`` (a ``searchset``
Bundle with keyset paging), ``GET /fhir/Observation/{id}``, and
``GET /api/v1/patients/{id}/cgm-summary?from=&to=`` (the HL7 CGM IG summary, a ``collection`` Bundle; its errors
are the hospital API's JSON, like every ``/api/v1`` route).

An API key reads the patients of its care teams only: another team's patient is a 404 exactly like a missing one.
Observations and the summary need ``readings:read``, Patient ``patients:read``. Every read of patient data is
audited as the key, one row per request. Every error under ``/fhir``, authentication included, is an
OperationOutcome (the core's ``telemon.fhir_json``, shared with the import). A search parameter telemon does not
know is refused (400) rather than ignored: a hospital that misspells ``patient`` must not receive a wider answer
than it asked for."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import asyncpg
import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response

from clinician_ui.glycaemia import SUFFICIENT_DAYS, time_in_ranges
from records import fhir_queries as queries
from records.cgm_summary import summary_bundle
from records.fhir_capability import capability_statement
from records.fhir_resources import (
    CATEGORIES,
    CATEGORY,
    CODE_UNITS,
    FHIR_UNITS,
    KINDS,
    SEARCH_CODES,
    observation,
    patient_resource,
)
from records.fhir_schemas import FhirBundle, FhirResource, answered_with
from telemon import audit
from telemon.api_keys import ApiKey
from telemon.auth import api_key, pool
from telemon.fhir_json import LOINC, FhirJSONResponse, FhirRoute, fhir_response
from telemon.pagination import cursor_instant, cursor_int, decode_cursor, encode_cursor
from telemon.periods import END, EPOCH, bound_instant, parse_bound
from telemon.units import MGDL, canonical_unit

router = APIRouter(prefix="/fhir", tags=["fhir"], route_class=FhirRoute, default_response_class=FhirJSONResponse)
# The summary is a FHIR Bundle under the hospital API's prefix: its errors are the API's (``{"detail": ...}``, as
# every /api/v1 route and its 503), its answer FHIR JSON.
summary_router = APIRouter(prefix="/api/v1", tags=["fhir"], default_response_class=FhirJSONResponse)

ReadingsKey = Annotated[ApiKey, Depends(api_key("readings:read"))]
PatientsKey = Annotated[ApiKey, Depends(api_key("patients:read"))]
Pool = Annotated[asyncpg.Pool, Depends(pool)]

DEFAULT_COUNT = 100
MAX_COUNT = 1000
MAX_SUMMARY_DAYS = 366  # a summary spans at most a year (a pregnancy's monitoring fits)
DATE_PREFIXES = ("eq", "ge", "gt", "le", "lt")
UNSUPPORTED_PREFIXES = ("ne", "sa", "eb", "ap")
JSON_FORMATS = ("json", "application/json", "application/fhir+json")
OBSERVATION_PARAMS = {"patient", "subject", "code", "category", "date", "_count", "_cursor", "unit", "_format"}
PATIENT_PARAMS = {"identifier", "_id", "_format"}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "a search parameter telemon does not know, or one it cannot read (OperationOutcome)"},
    401: {"description": "missing or unknown API key (OperationOutcome)"},
    403: {"description": "the API key lacks the scope (OperationOutcome)"},
    404: {"description": "no such patient among the key's care teams (OperationOutcome)"},
    422: {"description": "a date that is not a date or a timestamp with its offset (OperationOutcome)"},
}


def fhir_base(request: Request) -> str:
    """The FHIR base URL, for Bundle links and full URLs: TELEMON_PUBLIC_URL when set, else where the caller came."""
    base = request.app.state.services.settings.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/fhir"


def device_system(base: str) -> str:
    """The identifier system of telemon's device ids (Observation.device)."""
    return f"{base}/sid/device-id"


def bad_request(detail: str) -> HTTPException:
    return HTTPException(status_code=400, detail=detail)


def _check_params(request: Request, known: set[str]) -> None:
    unknown = sorted({name for name in request.query_params if name not in known})
    if unknown:
        raise bad_request(f"unknown search parameter {', '.join(unknown)}; telemon knows {', '.join(sorted(known))}")
    for value in request.query_params.getlist("_format"):
        if value not in JSON_FORMATS:
            raise HTTPException(status_code=406, detail=f"_format {value[:40]!r}: telemon answers JSON only")


def patient_id_of(text: str, name: str) -> uuid.UUID | None:
    """A patient id as a reference gives it (``Patient/<id>``, absolute or not, or the bare id); None when it is no
    telemon id (such a patient does not exist)."""
    parts = text.strip().rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] != "Patient":
        raise bad_request(f"{name}: {text[:80]!r} does not refer to a Patient")
    try:
        return uuid.UUID(parts[-1])
    except ValueError:
        return None


def no_patient(text: object) -> HTTPException:
    return HTTPException(status_code=404, detail=f"no patient {str(text)[:80]}")


@router.get(
    "/metadata",
    summary="The CapabilityStatement: what telemon's FHIR server reads, searches and imports",
    responses=answered_with(FhirResource, "the CapabilityStatement"),
)
async def metadata(request: Request) -> Response:
    """No API key needed (FHIR clients read it first to learn how to call)."""
    return fhir_response(capability_statement(fhir_base(request)), 200)


@router.get(
    "/Patient/{patient_id}",
    summary="A patient (FHIR Patient)",
    responses={**answered_with(FhirResource, "the Patient"), **ERRORS},
)
async def read_patient(
    patient_id: Annotated[str, Path(max_length=200, description="The patient's telemon id.")],
    key: PatientsKey,
    db: Pool,
) -> Response:
    wanted = patient_id_of(patient_id, "id")
    row = await db.fetchrow(queries.FHIR_PATIENT, wanted, list(key.team_ids)) if wanted else None
    if row is None:
        raise no_patient(patient_id)
    await audit.record(db, actor=f"api_key:{key.id}", action="patient.read", patient_id=row["id"], detail=_by(key))
    return fhir_response(patient_resource(row), 200)


def _by(key: ApiKey) -> dict[str, Any]:
    return {"api_key": key.label, "via": "fhir"}


@router.get(
    "/Patient",
    summary="Find a patient by hospital number (FHIR search)",
    responses={**answered_with(FhirBundle, "a searchset Bundle of Patients"), **ERRORS},
)
async def search_patients(
    request: Request,
    key: PatientsKey,
    db: Pool,
    identifier: Annotated[
        str | None, Query(max_length=300, description="the hospital number: system|value, |value or value")
    ] = None,
    _id: Annotated[str | None, Query(alias="_id", max_length=200, description="telemon's patient id")] = None,
) -> Response:
    """A ``searchset`` Bundle of the key's patients with this hospital number (one per care team that has it)."""
    _check_params(request, PATIENT_PARAMS)
    if identifier is None and _id is None:
        raise bad_request("give identifier=<system>|<hospital number> (or _id=<telemon id>)")
    teams = list(key.team_ids)
    rows: list[asyncpg.Record] = []
    if identifier is not None:
        value = identifier.rpartition("|")[2].strip()
        if not value:
            raise bad_request("identifier: give the hospital number, as system|value or value")
        rows = list(await db.fetch(queries.FHIR_PATIENTS_BY_EXTERNAL_ID, value, teams))
    if _id is not None:
        wanted = patient_id_of(_id, "_id")
        row = await db.fetchrow(queries.FHIR_PATIENT, wanted, teams) if wanted else None
        by_id = [row] if row is not None else []
        rows = [r for r in rows if by_id and r["id"] == by_id[0]["id"]] if identifier is not None else by_id
    await audit.record(
        db,
        actor=f"api_key:{key.id}",
        action="patients.read",
        patient_ids=[r["id"] for r in rows],
        detail={**_by(key), "count": len(rows)},
    )
    base = fhir_base(request)
    return fhir_response(
        searchset(
            [patient_resource(r) for r in rows],
            total=len(rows),
            links=[("self", f"{base}/Patient?{request.url.query}")],
            base=base,
        ),
        200,
    )


def searchset(
    resources: list[dict[str, Any]], *, total: int, links: list[tuple[str, str]], base: str
) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": _now_instant()},
        "type": "searchset",
        "total": total,
        "link": [{"relation": relation, "url": url} for relation, url in links],
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def _now_instant() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- Observation search -----------------------------------------------------------------------------------------


def _direction(value: Any) -> str:
    if value not in ("n", "p"):
        raise ValueError("not a direction")
    return str(value)


def _src(value: Any) -> int:
    if value not in (0, 1) or type(value) is not int:
        raise ValueError("not a source")
    return int(value)


def _tokens(request: Request, name: str) -> list[str]:
    """A token parameter's values: repeated parameters AND, commas OR; here every value narrows to its kinds."""
    return [t.strip() for value in request.query_params.getlist(name) for t in value.split(",") if t.strip()]


def _kinds(request: Request) -> tuple[set[str], set[str]]:
    """The stored kinds the code and category filters leave, and the glucose units the codes named."""
    kinds = set(KINDS)
    units: set[str] = set()
    codes = _tokens(request, "code")
    if codes:
        named = set()
        for token in codes:
            system, bar, code = token.rpartition("|")
            if bar and system and system != LOINC:
                continue  # a code of another system names nothing telemon stores
            if code in SEARCH_CODES:
                named.add(SEARCH_CODES[code])
                if code in CODE_UNITS:
                    units.add(CODE_UNITS[code])
        kinds &= named
    categories = _tokens(request, "category")
    if categories:
        chosen = set()
        for token in categories:
            system, bar, code = token.rpartition("|")
            if bar and system and system != CATEGORY:
                continue
            chosen |= set(CATEGORIES.get(code, ()))
        kinds &= chosen
    return kinds, units


def _day_start(day: dt.date, zone: str) -> dt.datetime:
    found = bound_instant(day, "date", zone)
    assert found is not None
    return found


def _period(request: Request, zone: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the ``date`` parameters (ANDed): a date is the patient's local day, from her local midnight
    to the next; a dateTime (with its offset) the instant."""
    start, end = EPOCH, END
    for text in request.query_params.getlist("date"):
        prefix = text[:2] if text[:2].isalpha() else "eq"
        if prefix in UNSUPPORTED_PREFIXES:
            raise bad_request(f"date: the prefix {prefix} is not supported; use one of {', '.join(DATE_PREFIXES)}")
        if prefix not in DATE_PREFIXES:
            raise bad_request(f"date: {text[:40]!r} does not start with a date or a prefix {', '.join(DATE_PREFIXES)}")
        value = parse_bound(text[2:] if text[:2].isalpha() else text, "date")
        if value is None:
            raise bad_request("date: give a date or a dateTime after the prefix")
        try:
            if isinstance(value, dt.datetime):
                low = value.astimezone(dt.UTC)
                high = low + dt.timedelta(microseconds=1)
            else:
                low, high = _day_start(value, zone), _day_start(value + dt.timedelta(days=1), zone)
        except OverflowError:
            raise HTTPException(status_code=422, detail=f"date: {text[:40]!r} is out of range") from None
        if prefix in ("eq", "ge"):
            start = max(start, low)
        if prefix == "gt":
            start = max(start, high)
        if prefix in ("eq", "le"):
            end = min(end, high)
        if prefix == "lt":
            end = min(end, low)
    return start, end


def _count(request: Request) -> int:
    text = request.query_params.get("_count")
    if text is None:
        return DEFAULT_COUNT
    try:
        count = int(text)
    except ValueError:
        raise bad_request(f"_count: {text[:20]!r} is not a whole number") from None
    if not 1 <= count <= MAX_COUNT:
        raise bad_request(f"_count: {count} is not between 1 and {MAX_COUNT}")
    return count


def _unit(request: Request, implied: set[str]) -> str:
    text = request.query_params.get("unit")
    if text is None:
        return implied.pop() if len(implied) == 1 else MGDL
    unit = canonical_unit(text)
    if unit not in FHIR_UNITS:
        raise bad_request(f"unit: {text[:20]!r} is not one of {', '.join(FHIR_UNITS)}")
    return unit


@router.get(
    "/Observation",
    summary="Search a patient's Observations (readings and measurements): a searchset Bundle, keyset paging",
    responses={**answered_with(FhirBundle, "a searchset Bundle of Observations, one page"), **ERRORS},
)
async def search_observations(
    request: Request,
    key: ReadingsKey,
    db: Pool,
    patient: Annotated[str | None, Query(description="Patient/<telemon id>, or the id (required)")] = None,
    subject: Annotated[str | None, Query(description="the same as patient")] = None,
    code: Annotated[list[str] | None, Query(description="LOINC codes (system|code or code), commas OR")] = None,
    category: Annotated[list[str] | None, Query(description="laboratory or vital-signs")] = None,
    date: Annotated[
        list[str] | None,
        Query(description="eq|ge|gt|le|lt + a date (the patient's local day) or a dateTime with offset; repeatable"),
    ] = None,
    unit: Annotated[Literal["mg/dL", "mmol/L"] | None, Query(description="glucose unit (default mg/dL)")] = None,
    count: Annotated[int | None, Query(alias="_count", description=f"per page, 1–{MAX_COUNT}")] = None,
    cursor: Annotated[str | None, Query(alias="_cursor", max_length=512, description="from a link")] = None,
) -> Response:
    """Each reading is an Observation with the LOINC code of its kind and unit (meter 41653-7 mg/dL, 14743-9
    mmol/L; CGM 99504-3, 105272-9 with the HL7 CGM IG's sensor-reading profiles), its UCUM quantity, its time
    (effectiveDateTime), the device that measured; weight and blood pressure are vital signs. Oldest first."""
    _check_params(request, OBSERVATION_PARAMS)
    reference = patient or subject
    if not reference:
        raise bad_request("patient: required (patient=Patient/<telemon id>)")
    wanted = patient_id_of(reference, "patient" if patient else "subject")
    zone = await db.fetchval(queries.FHIR_PATIENT_ZONE, wanted, list(key.team_ids)) if wanted else None
    if zone is None:
        raise no_patient(reference)
    start, end = _period(request, zone)
    kinds, implied = _kinds(request)
    chosen_unit = _unit(request, implied)
    size = _count(request)
    position = decode_cursor(cursor, _direction, cursor_instant, _src, cursor_int)
    direction, after = ("n", [EPOCH - dt.timedelta(days=1), 0, 0]) if position is None else (position[0], position[1:])
    query = queries.OBSERVATIONS_AFTER if direction == "n" else queries.OBSERVATIONS_BEFORE
    args = (wanted, start, end, sorted(kinds))
    async with db.acquire() as conn:
        rows = list(await conn.fetch(query, *args, *after, size + 1))
        total = await conn.fetchval(queries.OBSERVATIONS_TOTAL, *args)
        await audit.record(
            conn,
            actor=f"api_key:{key.id}",
            action="readings.read",
            patient_id=wanted,
            detail={
                **_by(key),
                "from": start.isoformat(),
                "to": end.isoformat(),
                "kinds": sorted(kinds),
                "count": min(len(rows), size),
            },
        )
    more = len(rows) > size
    rows = rows[:size]
    if direction == "p":
        rows.reverse()
    base = fhir_base(request)
    system = device_system(base)
    kept = [(name, value) for name, value in request.query_params.multi_items() if name != "_cursor"]

    def link(relation: str, row: asyncpg.Record, towards: str) -> tuple[str, str]:
        token = encode_cursor([towards, row["measured_at"].isoformat(), row["src"], row["id"]])
        return relation, f"{base}/Observation?{urlencode([*kept, ('_cursor', token)])}"

    links = [("self", f"{base}/Observation?{request.url.query}")]
    if rows:
        if more if direction == "n" else position is not None:
            links.append(link("next", rows[-1], "n"))
        if position is not None if direction == "n" else more:
            links.append(link("previous", rows[0], "p"))
    resources = [observation(r, wanted, chosen_unit, system) for r in rows]
    return fhir_response(searchset(resources, total=total, links=links, base=base), 200)


@router.get(
    "/Observation/{observation_id}",
    summary="One Observation (a reading or a measurement)",
    responses={**answered_with(FhirResource, "the Observation"), **ERRORS},
)
async def read_observation(
    request: Request,
    observation_id: Annotated[str, Path(max_length=64, description="The id a search or an import gave.")],
    key: ReadingsKey,
    db: Pool,
    unit: Annotated[Literal["mg/dL", "mmol/L"], Query(description="glucose unit")] = "mg/dL",
) -> Response:
    """The Observation an import's ``Location`` names (a reading's id) or a search returned (``m<id>`` for a
    measurement); another team's is a 404 like a missing one."""
    measurement = observation_id.startswith("m")
    digits = observation_id.removeprefix("m")
    number = int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 18 else None
    query = queries.OBSERVATION_MEASUREMENT if measurement else queries.OBSERVATION_READING
    row = await db.fetchrow(query, number, list(key.team_ids)) if number is not None else None
    if row is None:
        raise HTTPException(status_code=404, detail=f"no Observation {observation_id[:64]}")
    await audit.record(
        db,
        actor=f"api_key:{key.id}",
        action="readings.read",
        patient_id=row["patient_id"],
        detail={**_by(key), "observation": observation_id, "count": 1},
    )
    base = fhir_base(request)
    return fhir_response(observation(row, row["patient_id"], unit, device_system(base)), 200)


# --- CGM summary ------------------------------------------------------------------------------------------------

BOUND = "a date (YYYY-MM-DD, the patient's local midnight) or an ISO 8601 timestamp with its offset"


@summary_router.get(
    "/patients/{patient_id}/cgm-summary",
    summary="The HL7 CGM IG summary of a period of sensor readings (FHIR collection Bundle)",
    responses={
        **answered_with(FhirBundle, "a collection Bundle: the CGM Summary Observation and its members"),
        403: {"description": "the API key lacks readings:read"},
        404: {"description": "no such patient among the key's care teams, or no sensor reading in the period"},
        422: {"description": "from or to is not a date or a timestamp with its offset, or the period is refused"},
    },
)
async def cgm_summary(
    request: Request,
    patient_id: Annotated[uuid.UUID, Path(description="The patient's telemon id.")],
    key: ReadingsKey,
    db: Pool,
    from_: Annotated[str | None, Query(alias="from", description=f"inclusive: {BOUND}")] = None,
    to: Annotated[str | None, Query(description=f"exclusive: {BOUND}")] = None,
    unit: Annotated[Literal["mg/dL", "mmol/L"], Query(description="the unit of the mean glucose")] = "mg/dL",
    bundle: Annotated[
        Literal["collection", "transaction"],
        Query(description="transaction: the IG's CGM Data Submission Bundle, the input of $submit-cgm-bundle"),
    ] = "collection",
) -> Response:
    """The CGM Summary Observation (LOINC 107931-8) and its members: mean glucose, times in the pregnancy ranges
    (< 54, 54–62, 63–140, 141–250, > 250 mg/dL; Battelino 2019), GMI, CV, days of wear, sensor active percentage —
    the dashboard's own figures for the same period. Default period: the last 14 local days, today included (the
    dashboard's). ``from`` and ``to`` given as dates are the effective period's dates (``to`` exclusive, so the
    period ends the day before)."""
    first, last = parse_bound(from_, "from"), parse_bound(to, "to")
    zone = await db.fetchval(queries.FHIR_PATIENT_ZONE, patient_id, list(key.team_ids))
    if zone is None:
        raise no_patient(patient_id)
    now = dt.datetime.now(dt.UTC)
    today = now.astimezone(ZoneInfo(zone)).date()
    if last is None:
        last = today + dt.timedelta(days=1)
    if first is None:
        end_day = last.date() if isinstance(last, dt.datetime) else last
        first = end_day - dt.timedelta(days=SUFFICIENT_DAYS)
    start, end = bound_instant(first, "from", zone), bound_instant(last, "to", zone)
    assert start is not None and end is not None
    if end <= start:
        raise HTTPException(status_code=422, detail="to: must come after from")
    if end - start > dt.timedelta(days=MAX_SUMMARY_DAYS):
        raise HTTPException(status_code=422, detail=f"from, to: a summary spans at most {MAX_SUMMARY_DAYS} days")
    async with db.acquire() as conn:
        row = await conn.fetchrow(queries.CGM_VALUES, patient_id, start, end, zone)
        assert row is not None
        values = np.asarray(row["v"], dtype=np.float64)
        await audit.record(
            conn,
            actor=f"api_key:{key.id}",
            action="cgm_summary.read",
            patient_id=patient_id,
            detail={**_by(key), "from": start.isoformat(), "to": end.isoformat(), "count": len(values)},
        )
    # the dashboard's period: from the start to the end, or to now when the end is still to come
    figures = time_in_ranges(values, (min(end, now) - start).total_seconds())
    if figures is None:
        raise HTTPException(
            status_code=404,
            detail=f"no sensor readings of patient {patient_id} in [{start.isoformat()}, {end.isoformat()})",
        )
    return fhir_response(
        summary_bundle(
            patient_id=patient_id,
            start=_period_bound(first, zone, start, inclusive_end=False),
            end=_period_bound(last, zone, end, inclusive_end=True),
            figures=figures,
            days_of_wear=len(row["local_days"]),
            unit=unit,
            now=now,
            submission=bundle == "transaction",
        ),
        200,
    )


def _period_bound(value: dt.date, zone: str, instant_value: dt.datetime, *, inclusive_end: bool) -> str:
    """effectivePeriod's start or end as the IG writes it (YYYY-MM-DD) when the bound was a date (an exclusive
    ``to`` date is the day before, the period's last day), else the instant with the patient's offset."""
    if not isinstance(value, dt.datetime):
        return (value - dt.timedelta(days=1) if inclusive_end else value).isoformat()
    return instant_value.astimezone(ZoneInfo(zone)).isoformat()
