"""A Nightscout-compatible upload API under ``/ns``, so that the CGM apps patients already use (xDrip+, Juggluco,
AndroidAPS, which upload to Nightscout) can send to telemon unchanged: the app's Nightscout URL is
``https://<telemon>/ns`` and its API secret is the device token.

Endpoints (Nightscout API v1). Every path answers the same with or without a trailing slash and with a ``.json``
suffix (``/entries``, ``/entries/``, ``/entries.json``): Nightscout's own clients write the slash, and an OkHttp
uploader does not follow a redirect on POST.

- ``POST /ns/api/v1/entries``: ``sgv`` (CGM, kind ``cgm``) and ``mbg`` (meter, kind ``smbg``) entries, in mg/dL.
  The document is kept beside the reading and answered as Nightscout does (``sgv`` as sent, ``direction``,
  ``noise``, ``filtered``, ``unfiltered``, ``rssi``, ``utcOffset`` of ``dateString``).
- ``POST /ns/api/v1/entries/preview``: the same checks and answer, nothing stored or recorded.
- ``GET /ns/api/v1/entries``, ``/entries/sgv``, ``/entries/mbg``, ``/entries/current``, ``/entries/<24 hex id>``:
  the patient's latest readings, with ``count`` and the ``find`` forms of ``date``, ``dateString``, ``sysTime``,
  ``type``, ``sgv``, ``mbg``, ``_id``.
- ``POST /ns/api/v1/treatments``: every treatment is kept (insulin, carbs, BG checks, notes, site changes …),
  normalised and deduplicated as Nightscout does; one carrying ``glucose`` is also a meter reading.
  ``GET /ns/api/v1/treatments`` reads them back.
- ``POST /ns/api/v1/devicestatus``: answered 200 and not kept.
- ``GET /ns/api/v1/status``: server status, readable without a secret as in Nightscout (it tells nothing about
  any patient), so that apps can check the URL before the secret is set.
- ``GET /ns/api/v1/verifyauth``: whether the credentials are valid, as apps check them when set up.

Authentication, as Nightscout's: ``api-secret`` header or ``?secret=`` holding the SHA-1 or SHA-512 hex of the
device token; or the device token itself (Nightscout's access token) as ``?token=``, a bearer token or the
``api-secret``. A missing, wrong or disabled device's credential is answered 401 with Nightscout's own body; each
failed attempt delays the next requests from that address by 5 s more (Nightscout's ``authFailDelay``), a success
clears the delay.

Every entry goes through the one ingest pipeline (``IngestService.prepare`` / ``store``) as a wire-format item;
what cannot even be converted (a Dexcom error code, an unknown entry type, a missing date) is recorded as a
rejection with its index beside the pipeline's own. The answer is Nightscout's: the array of the entries as stored
(just inserted or already there); refused entries are left out of it, and the ``X-Telemon-*`` headers carry the
receipt (accepted, duplicates, rejected).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import importlib.metadata
import math
import re
import time
from collections.abc import Callable, Coroutine
from html.parser import HTMLParser
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from ingest import queries
from ingest.body import BodyError, json_safe, parse_json, read_body, refusal_reason
from ingest.http import service
from ingest.readings import DeviceContext, RejectedItem, Rejection, brief, raw_text, storable
from ingest.service import IngestService, device_by_nightscout_secret, device_by_token
from telemon import audit
from telemon.auth import pool
from telemon.devices import nightscout_secret_512
from telemon.pagination import MAX_LIMIT
from telemon.security import secret_hash

SOURCE = "nightscout"
UNAUTHORIZED = {"status": 401, "message": "Unauthorized", "description": "Invalid/Missing"}
AUTH_FAIL_DELAY_S = 5.0  # Nightscout's authFailDelay default (5000 ms)
AUTH_FAIL_AGE_S = 60.0  # a delay older than this is forgotten, as Nightscout does

# Dexcom receivers report sensor states as sgv values below 39; 39 itself is Dexcom's "LOW" (below 40 mg/dL),
# shown as LOW by Nightscout (lib/sandbox.js displayBg) while its errorcodes plugin alarms on mgdl < 39. Names from
# Nightscout's lib/plugins/errorcodes.js.
DEXCOM_LOW = 39
DEXCOM_ERRORS = {
    1: "SENSOR_NOT_ACTIVE",
    2: "MINIMAL_DEVIATION",
    3: "NO_ANTENNA",
    5: "SENSOR_NOT_CALIBRATED",
    6: "COUNTS_DEVIATION",
    9: "ABSOLUTE_DEVIATION",
    10: "POWER_DEVIATION",
    12: "BAD_RF",
}
ENTRY_TYPES = {"sgv": "cgm", "mbg": "smbg"}  # Nightscout entry type → telemon kind
ENTRY_TYPE_OF_KIND = {kind: entry_type for entry_type, kind in ENTRY_TYPES.items()}
OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
EARLIEST = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 12, 30, tzinfo=dt.UTC)
MICROSECOND = dt.timedelta(microseconds=1)


class _Unauthorized(Exception):
    """Answered as Nightscout does: 401 with its own body (the app's exception handlers are not ours to change)."""


class _NightscoutRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except _Unauthorized:
                return JSONResponse(UNAUTHORIZED, status_code=401)

        return route


router = APIRouter(prefix="/ns/api/v1", tags=["nightscout"], route_class=_NightscoutRoute)


def _route(method: str, path: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``path`` and its Nightscout spellings: with a trailing slash and with ``.json`` (the documented
    one is ``path``). FastAPI would answer the slashed form with a 307 redirect, which OkHttp-based uploaders do
    not follow on a POST: the upload would fail."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        router.add_api_route(path, endpoint, methods=[method], **options)
        hidden = {k: v for k, v in options.items() if k not in ("summary", "responses")}
        for alias in (f"{path}/", f"{path}.json"):
            router.add_api_route(alias, endpoint, methods=[method], include_in_schema=False, **hidden)
        return endpoint

    return register


class FailedAuthDelays:
    """Nightscout's ``authFailDelay``, per process as in Nightscout: each failed attempt from an address pushes
    that address's next requests back by ``delay`` seconds more (from now, or from the end of the delay still
    running); a request with valid credentials clears it. Guessing a secret from one address gets slower and
    slower, while an uploader set up with the right secret is never delayed by others."""

    def __init__(self, delay: float = AUTH_FAIL_DELAY_S) -> None:
        self.delay = delay
        self._until: dict[str, float] = {}

    def remaining(self, address: str) -> float:
        until = self._until.get(address)
        return max(0.0, until - time.monotonic()) if until is not None else 0.0

    def failed(self, address: str) -> None:
        now = time.monotonic()
        if len(self._until) > 10_000:  # forget delays long over, as Nightscout's periodic sweep does
            self._until = {a: u for a, u in self._until.items() if u + AUTH_FAIL_AGE_S > now}
        self._until[address] = max(self._until.get(address, now), now) + self.delay

    def succeeded(self, address: str) -> None:
        self._until.pop(address, None)


def auth_delays(request: Request) -> FailedAuthDelays:
    """The process's delays, kept on the application (created with Nightscout's default on first use)."""
    delays: FailedAuthDelays | None = getattr(request.app.state, "nightscout_auth_delays", None)
    if delays is None:
        delays = request.app.state.nightscout_auth_delays = FailedAuthDelays()
    return delays


def _credentials(request: Request) -> tuple[str, str]:
    """(api secret, token) as Nightscout reads them: ``?secret=`` before the ``api-secret`` header; a bearer token
    before ``?token=``. The string "null" is no secret (some clients send it)."""
    secret = (request.query_params.get("secret") or request.headers.get("api-secret") or "").strip()
    if secret == "null":  # noqa: S105 - a value some clients send, not a secret
        secret = ""
    token = ""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme == "Bearer" and value.strip():
        token = value.strip()
    if not token:
        token = (request.query_params.get("token") or "").strip()
    return secret, token


async def _device_of(request: Request, db: asyncpg.Pool) -> DeviceContext | None:
    """The active device the request's credentials name, or None. Waits out the address's failure delay first;
    a wrong credential (not a missing one) adds to it."""
    address = request.client.host if request.client else ""
    delays = auth_delays(request)
    wait = delays.remaining(address)
    if wait:
        await asyncio.sleep(wait)
    secret, token = _credentials(request)
    if not secret and not token:
        return None
    found = await device_by_nightscout_secret(db, secret) if secret else None
    for plain in (token, secret):  # the token itself: Nightscout's access token, also accepted as api-secret
        if found is None and plain:
            found = await device_by_token(db, plain)
            if found is not None:
                await db.execute(
                    queries.FILL_DEVICE_NS_SHA512,
                    found.device_id,
                    secret_hash(nightscout_secret_512(plain)),
                )
    if found is None or not found.active:
        delays.failed(address)
        return None
    delays.succeeded(address)
    return found


async def uploader(request: Request, db: Annotated[asyncpg.Pool, Depends(pool)]) -> DeviceContext:
    """The active device the credentials name; a disabled device is 401 too (Nightscout has no 403 there)."""
    found = await _device_of(request, db)
    if found is None:
        raise _Unauthorized
    return found


UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or wrong api-secret, or a disabled device"},
    413: {"description": "body too large"},
    422: {"description": "body is not JSON, or neither an object nor an array"},
}


# --- entries ----------------------------------------------------------------------------------------------------


@_route("POST", "/entries", summary="Upload CGM and meter entries (Nightscout)", responses=UPLOAD_RESPONSES)
async def post_entries(
    request: Request,
    response: Response,
    sender: Annotated[DeviceContext, Depends(uploader)],
    ingest: Annotated[IngestService, Depends(service)],
) -> list[dict[str, Any]]:
    """Body: one Nightscout entry or an array of them, optionally gzip-encoded. ``sgv`` entries are CGM readings,
    ``mbg`` meter readings, both in mg/dL (numeric strings accepted); the time is ``dateString`` (ISO 8601 with its
    offset, as Nightscout takes it), else ``date`` (epoch milliseconds). ``sgv`` values below 39 are Dexcom error
    codes and are refused; 39 is Dexcom's LOW and is stored as 39 mg/dL flagged ``lo``. Other types (``cal`` …)
    are refused. Answer: the entries as stored (inserted now or before), in Nightscout's shape: as sent, with
    ``_id``, ``sysTime``, ``utcOffset`` and ``dateString`` in UTC."""
    docs = _purified(await _read_docs(request, sender, ingest))
    converted = [_convert_entry(doc) for doc in docs]
    items: list[dict[str, Any] | Rejection] = [c if isinstance(c, Rejection) else c[0] for c in converted]
    stored = await _store(ingest, sender, docs, items, response)
    answer: list[dict[str, Any]] = []
    keys: list[tuple[Any, ...]] = []
    for index, record in stored.items():
        converted_item = converted[index]
        assert not isinstance(converted_item, Rejection)
        doc = converted_item[1]
        keys.append((record["patient_id"], record["device_id"], record["kind"], record["device_time"],
                     record["value_raw"], _jsonb(doc)))  # fmt: skip
        answer.append(_entry_answer(doc, record))
    if keys:
        await ingest.pool.execute(queries.NS_INSERT_ENTRY_DOCS, *(list(column) for column in zip(*keys, strict=True)))
    return answer


@_route("POST", "/entries/preview", summary="Check entries without storing them (Nightscout)")
async def preview_entries(
    request: Request,
    response: Response,
    sender: Annotated[DeviceContext, Depends(uploader)],
    ingest: Annotated[IngestService, Depends(service)],
) -> list[Any]:
    """Nightscout's preview: every document normalised as an upload would be (``sysTime``, ``utcOffset``,
    ``dateString`` in UTC), nothing stored or recorded. The ``X-Telemon-Accepted`` and ``X-Telemon-Rejected``
    headers tell what an upload of the same body would store and refuse (``X-Telemon-Reasons``: the first
    refusals, ``index: reason``)."""
    docs = _purified(await _read_docs(request, sender, ingest, record=False))
    converted = [_convert_entry(doc) for doc in docs]
    wire = [c[0] for c in converted if not isinstance(c, Rejection)]
    prepared = ingest.prepare({"readings": wire}, sender, SOURCE)
    refusals = [(i, str(c)) for i, c in enumerate(converted) if isinstance(c, Rejection)]
    positions = [i for i, c in enumerate(converted) if not isinstance(c, Rejection)]
    refusals += [(positions[r.index] if r.index is not None else -1, r.reason) for r in prepared.rejected]
    refusals.sort()
    response.headers["X-Telemon-Accepted"] = str(len(prepared.rows))
    response.headers["X-Telemon-Rejected"] = str(len(refusals))
    if refusals:
        response.headers["X-Telemon-Reasons"] = _header_text("; ".join(f"{i}: {r}" for i, r in refusals[:5]))
    return [c[1] if not isinstance(c, Rejection) else _normalised(doc) for c, doc in zip(converted, docs, strict=True)]


@_route(
    "GET",
    "/entries",
    summary="The patient's latest readings (Nightscout)",
    responses={401: {"description": "missing or wrong api-secret, or a disabled device"}},
)
async def get_entries(
    request: Request,
    sender: Annotated[DeviceContext, Depends(uploader)],
    db: Annotated[asyncpg.Pool, Depends(pool)],
    count: Annotated[int, Query(ge=1, description=f"how many, newest first (at most {MAX_LIMIT})")] = 10,
) -> list[dict[str, Any]]:
    """The readings of the device's patient (from all her devices), newest first, as Nightscout entries: ``sgv``
    for CGM readings, ``mbg`` for meter readings, as uploaded (readings from other transports: whole mg/dL).
    Filters, as Nightscout's ``find``: ``find[date][$gte|$gt|$lte|$lt]`` (epoch ms or ISO 8601),
    ``find[dateString]`` and ``find[sysTime]`` (compared as text with the UTC form, as Nightscout does, so
    ``find[dateString][$gte]=2014-07-19`` works), ``find[type]``, ``find[sgv]``/``find[mbg]`` (mg/dL),
    ``find[_id]``; a bare ``find[field]=value`` is equality."""
    return await _entries(request, sender, db, count)


@_route("GET", "/entries/current", summary="The patient's latest reading (Nightscout)")
async def get_current_entry(
    request: Request,
    sender: Annotated[DeviceContext, Depends(uploader)],
    db: Annotated[asyncpg.Pool, Depends(pool)],
) -> list[dict[str, Any]]:
    """A list of one: the newest reading (``[]`` when there is none)."""
    return await _entries(request, sender, db, 1)


@router.get("/entries/{spec}", include_in_schema=False)
@router.get("/entries/{spec}/", include_in_schema=False)
@router.get("/entries/{spec}/.json", include_in_schema=False)
async def get_entries_by_spec(
    spec: str,
    request: Request,
    sender: Annotated[DeviceContext, Depends(uploader)],
    db: Annotated[asyncpg.Pool, Depends(pool)],
    count: Annotated[int, Query(ge=1)] = 10,
) -> list[dict[str, Any]]:
    """``/entries/sgv.json``, ``/entries/mbg`` (the type), or ``/entries/<24 hex id>`` (one entry), as Nightscout
    reads the path."""
    spec = spec.removesuffix(".json")
    if OBJECT_ID.match(spec):
        return await _entries(request, sender, db, 1, entry_id=spec.lower())
    return await _entries(request, sender, db, count, entry_type=spec)


async def _entries(
    request: Request,
    sender: DeviceContext,
    db: asyncpg.Pool,
    count: int,
    *,
    entry_type: str | None = None,
    entry_id: str | None = None,
) -> list[dict[str, Any]]:
    lower, upper = EARLIEST, LATEST
    text_ops: list[str] = []
    text_values: list[str] = []
    value_ops: list[str] = []
    value_values: list[float] = []
    for key, value in request.query_params.multi_items():
        if not key.startswith("find["):
            continue
        match = re.fullmatch(r"find\[([A-Za-z_]+)\](?:\[(\$(?:gte|gt|lte|lt|eq))\])?", key)
        if match is None:
            raise HTTPException(status_code=400, detail=f"{key}: not a filter telemon reads")
        field, op = match[1], match[2] or "$eq"
        try:
            if field == "date":
                moment = _date_bound(value)
                if op in ("$gte", "$eq"):
                    lower = max(lower, moment)
                if op == "$gt":
                    lower = max(lower, moment + MICROSECOND)
                if op in ("$lte", "$eq"):
                    upper = min(upper, moment)
                if op == "$lt":
                    upper = min(upper, moment - MICROSECOND)
            elif field in ("dateString", "sysTime"):
                text_ops.append(op)
                text_values.append(value.replace(" ", "+"))  # some clients do not escape the +
                lower, upper = _day_bounds(value, op, lower, upper)
            elif field in ("sgv", "mbg"):
                value_ops.append(op)
                number = float(int(float(value)))  # Nightscout reads these with parseInt
                value_values.append(number)
                entry_type = entry_type or field
            elif field == "type" and op == "$eq":
                entry_type = value
            elif field == "_id" and op == "$eq":
                entry_id = value
            else:
                raise Rejection(
                    "telemon filters on date, dateString, sysTime, type, sgv, mbg and _id (with $gte, $gt, $lte, $lt)"
                )
        except (Rejection, ValueError, OverflowError) as exc:
            raise HTTPException(status_code=400, detail=f"{key}: {exc}") from None
    kind = None
    if entry_type is not None:
        kind = ENTRY_TYPES.get(entry_type)
        if kind is None:
            return []  # Nightscout answers an empty list for a type it holds none of (telemon keeps sgv and mbg)
    rows = await db.fetch(
        queries.NS_ENTRIES,
        sender.patient_id,
        lower,
        upper,
        kind,
        min(count, MAX_LIMIT),
        text_ops,
        text_values,
        value_ops,
        value_values,
        entry_id,
    )
    await audit.record(
        db,
        actor=f"device:{sender.device_id}",
        action="readings.read",
        patient_id=sender.patient_id,
        detail={"via": SOURCE, "count": len(rows)},
    )
    return [_entry_out(row) for row in rows]


def _day_bounds(value: str, op: str, lower: dt.datetime, upper: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Time bounds implied by a text bound on the UTC ISO form, so that the readings' time index narrows what the
    text comparison reads: a form at or after "2014-07-19…" is on 19 July 2014 or later, and so on."""
    try:
        day = dt.date.fromisoformat(value[:10])
    except ValueError:
        return lower, upper
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    if op in ("$gte", "$gt", "$eq"):
        lower = max(lower, start)
    if op in ("$lte", "$lt", "$eq") and day < dt.date.max:
        upper = min(upper, start + dt.timedelta(days=1))
    return lower, upper


def _date_bound(value: str) -> dt.datetime:
    """A ``find[date]`` operand: epoch milliseconds, or an ISO 8601 date as Nightscout also takes."""
    try:
        return _from_epoch_ms(float(value))
    except ValueError:
        pass
    parsed = _parse_iso(value.replace(" ", "+"))
    if parsed is None:
        raise Rejection(f"cannot parse {brief(value)} as epoch milliseconds or an ISO 8601 date")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


# --- treatments -------------------------------------------------------------------------------------------------

# Nightscout coerces these with JavaScript's Number() and drops the empty ones (lib/server/treatments.js).
TREATMENT_NUMBERS = (
    "glucose", "targetTop", "targetBottom", "carbs", "insulin", "duration", "percent", "absolute", "relative",
    "preBolus",
)  # fmt: skip
DROPPED_IF_EMPTY = ("targetTop", "targetBottom", "carbs", "insulin", "percent", "relative", "notes", "preBolus")
DROPPED_IF_NAN = ("absolute", "duration")


@_route("POST", "/treatments", summary="Upload treatments (Nightscout)", responses=UPLOAD_RESPONSES)
async def post_treatments(
    request: Request,
    response: Response,
    sender: Annotated[DeviceContext, Depends(uploader)],
    ingest: Annotated[IngestService, Depends(service)],
) -> list[dict[str, Any]]:
    """Body: one Nightscout treatment or an array. Every treatment is kept, normalised as Nightscout does:
    numeric strings become numbers (``"2.00"`` → 2), empty fields are dropped, ``created_at`` (else ``eventTime``,
    else ``date`` in epoch ms, else now) is answered in UTC with its ``utcOffset``, HTML in text is sanitised, and
    a ``preBolus`` moves the carbs to a second treatment ``preBolus`` minutes later. Treatments with the same
    ``identifier`` (else 24-hex ``_id``, else ``created_at`` and ``eventType``) are one: the last sent replaces the
    others. A treatment with ``glucose`` (a "BG Check" …) is also a meter reading (``units`` ``mg/dl`` or
    ``mmol``; mg/dL when absent); when that reading is refused (before the pregnancy, a unit telemon does not
    know …) the treatment is refused with it. Answer: every treatment kept, with its ``_id``."""
    docs = _purified(await _read_docs(request, sender, ingest))
    now = dt.datetime.now(dt.UTC)
    normalised: list[list[dict[str, Any]] | Rejection] = []
    for doc in docs:
        try:
            normalised.append(_normalise_treatment(doc, sender, now))
        except Rejection as exc:
            normalised.append(exc)
    glucose_positions = {
        i for i, n in enumerate(normalised) if not isinstance(n, Rejection) and n[0].get("glucose") is not None
    }
    items: list[dict[str, Any] | Rejection] = []
    positions: list[int] = []
    for index, n in enumerate(normalised):
        if isinstance(n, Rejection):
            items.append(n)
            positions.append(index)
        elif index in glucose_positions:
            try:
                items.append(_glucose_item(n[0], docs[index]))
            except Rejection as exc:
                items.append(exc)
            positions.append(index)
    stored = await _store(ingest, sender, docs, items, response, positions=positions) if items else {}
    refused = {p for p, item in zip(positions, items, strict=True) if isinstance(item, Rejection)}
    refused |= {p for p in glucose_positions if p not in stored}

    # One row per dedup key, the last document sent with it (Nightscout replaces them in order).
    kept: dict[str, tuple[dict[str, Any], int | None]] = {}
    order: list[tuple[int, list[str]]] = []
    for index, n in enumerate(normalised):
        if isinstance(n, Rejection) or index in refused:
            continue
        reading_id = stored[index]["id"] if index in stored else None
        keys = []
        for treatment in n:
            key = _treatment_key(treatment)
            kept[key] = (treatment, reading_id if treatment is n[0] else None)
            keys.append(key)
        order.append((index, keys))
    ids: dict[str, str] = {}
    new = 0
    if kept:
        rows = await ingest.pool.fetch(
            queries.NS_UPSERT_TREATMENTS,
            sender.patient_id,
            sender.device_id,
            list(kept),
            [t.get("_id") for t, _ in kept.values()],
            [_parse_iso(t["created_at"]) for t, _ in kept.values()],
            [storable(str(t["eventType"])) if t.get("eventType") is not None else None for t, _ in kept.values()],
            [_finite(t.get("insulin")) for t, _ in kept.values()],
            [_finite(t.get("carbs")) for t, _ in kept.values()],
            [reading_id for _, reading_id in kept.values()],
            [_jsonb({k: v for k, v in t.items() if k != "_id"}) for t, _ in kept.values()],
        )
        ids = {r["dedup_key"]: r["ns_id"] or f"{r['id']:024x}" for r in rows}
        new = sum(1 for r in rows if r["inserted"])
    answer: list[dict[str, Any]] = []
    for index, keys in order:
        n = normalised[index]
        assert not isinstance(n, Rejection)
        answer += [{**treatment, "_id": ids[key]} for treatment, key in zip(n, keys, strict=True)]
    response.headers.update(
        {
            "X-Telemon-Accepted": str(new),
            "X-Telemon-Duplicates": str(len(answer) - new),
            "X-Telemon-Rejected": str(len(refused)),
        }
    )
    return answer


@_route("GET", "/treatments", summary="The patient's treatments (Nightscout)")
async def get_treatments(
    sender: Annotated[DeviceContext, Depends(uploader)],
    db: Annotated[asyncpg.Pool, Depends(pool)],
    count: Annotated[int, Query(ge=1, description=f"how many, newest first (at most {MAX_LIMIT})")] = 100,
    created_gte: Annotated[str | None, Query(alias="find[created_at][$gte]", description="ISO 8601")] = None,
    created_lte: Annotated[str | None, Query(alias="find[created_at][$lte]", description="ISO 8601")] = None,
) -> list[dict[str, Any]]:
    """The treatments uploaded for the device's patient, newest first, as they were answered when uploaded."""
    bounds = []
    for name, value, default in (("$gte", created_gte, EARLIEST), ("$lte", created_lte, LATEST)):
        if value is None:
            bounds.append(default)
            continue
        parsed = _parse_iso(value.replace(" ", "+"))
        if parsed is None:
            raise HTTPException(status_code=400, detail=f"find[created_at][{name}]: {brief(value)} is not ISO 8601")
        bounds.append(parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC))
    rows = await db.fetch(queries.NS_TREATMENTS, sender.patient_id, bounds[0], bounds[1], min(count, MAX_LIMIT))
    await audit.record(
        db,
        actor=f"device:{sender.device_id}",
        action="treatments.read",
        patient_id=sender.patient_id,
        detail={"via": SOURCE, "count": len(rows)},
    )
    return [{**row["doc"], "_id": row["ns_id"] or f"{row['id']:024x}"} for row in rows]


def _normalise_treatment(doc: Any, sender: DeviceContext, now: dt.datetime) -> list[dict[str, Any]]:
    """A treatment as Nightscout stores it (lib/server/treatments.js prepareData), and the carbs treatment its
    ``preBolus`` makes; ``Rejection`` for what is not one. Its time must be within the pregnancy, as readings'."""
    if not isinstance(doc, dict):
        raise Rejection(f"a treatment must be an object, got {type(doc).__name__}")
    t: dict[str, Any] = json_safe(doc)
    raw_id = t.pop("_id", None)
    if isinstance(raw_id, str) and OBJECT_ID.match(raw_id):
        t["_id"] = raw_id.lower()
    elif isinstance(raw_id, str) and raw_id and not t.get("identifier"):
        t["identifier"] = raw_id  # a client's UUID (Loop, Trio) identifies the treatment, as Nightscout keeps it
    when = t.pop("eventTime", None) or t.get("created_at")
    if when in (None, ""):
        moment = _from_epoch_ms(t["date"], "date") if t.get("date") is not None else now
    elif isinstance(when, str):
        parsed = _parse_iso(when)
        if parsed is None:
            raise Rejection(f"created_at: {brief(when)} is not an ISO 8601 date")
        moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=_zone(sender.time_zone))
    elif isinstance(when, int | float) and not isinstance(when, bool):
        moment = _from_epoch_ms(when, "created_at")  # JavaScript's Date takes epoch milliseconds too
    else:
        raise Rejection(f"created_at: expected an ISO 8601 date, got {brief(when)}")
    offset = moment.utcoffset() or dt.timedelta()
    start = dt.datetime.combine(sender.pregnancy_start, dt.time(), _zone(sender.time_zone))
    try:
        pre_bolus_end = moment + dt.timedelta(
            minutes=_js_number(t.get("preBolus")) if _truthy(_js_number(t.get("preBolus"))) else 0
        )
    except OverflowError:
        raise Rejection(f"preBolus: {brief(t.get('preBolus'))} is out of range") from None
    if moment < start:
        raise Rejection(
            f"created_at: {moment.date().isoformat()} is before this pregnancy began"
            f" ({sender.pregnancy_start.isoformat()})"
        )
    t["created_at"] = _js_iso(moment)
    t["utcOffset"] = int(offset.total_seconds() // 60)
    numbers = {name: _js_number(t[name]) if name in t else math.nan for name in TREATMENT_NUMBERS}
    for name, number in numbers.items():
        if name in t or not math.isnan(number):
            t[name] = _js_out(number)
    pre_bolus_carbs = None
    if _truthy(numbers["preBolus"]) and _truthy(numbers["carbs"]):
        pre_bolus_carbs = t.pop("carbs")
    if t.get("eventType") == "Announcement":
        t["isAnnouncement"] = True
    for name in DROPPED_IF_EMPTY:
        if name in t and (not t[name] or (isinstance(t[name], float) and math.isnan(t[name]))):
            del t[name]
    for name in DROPPED_IF_NAN:
        if name in t and t[name] is None:
            del t[name]
    if not numbers["glucose"] or math.isnan(numbers["glucose"]):
        for name in ("glucose", "glucoseType", "units"):
            t.pop(name, None)
    treatments = [t]
    if pre_bolus_carbs is not None:
        carbs: dict[str, Any] = {
            "created_at": _js_iso(pre_bolus_end),
            "eventType": t.get("eventType"),
            "carbs": pre_bolus_carbs,
        }
        if t.get("notes"):
            carbs["notes"] = t["notes"]
        treatments.append(carbs)
    return treatments


def _treatment_key(treatment: dict[str, Any]) -> str:
    """Nightscout's upsert key: ``identifier``, else the 24-hex ``_id``, else ``created_at`` and ``eventType``."""
    if treatment.get("identifier"):
        return storable(f"identifier:{treatment['identifier']}")
    if treatment.get("_id"):
        return f"_id:{treatment['_id']}"
    return storable(f"created_at:{treatment['created_at']}|eventType:{treatment.get('eventType')}")


def _glucose_item(treatment: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """The meter reading a treatment's glucose is (a "BG Check", or any other event carrying one); its note is the
    text sent, for the pipeline to judge (a NUL character refuses it, as in every other transport)."""
    units = treatment.get("units")
    if units is None:
        units = "mg/dL"  # Nightscout reads a treatment without units in the server's units: mg/dl here
    item: dict[str, Any] = {
        "measured_at": treatment["created_at"],
        "value": float(treatment["glucose"]),
        "unit": units,
        "kind": "smbg",
    }
    if treatment.get("notes") and isinstance(sent.get("notes"), str) and sent["notes"].strip():
        item["note"] = sent["notes"].strip()
    identity = treatment.get("identifier") or treatment.get("_id")
    if isinstance(identity, str | int) and not isinstance(identity, bool):
        item["id"] = identity
    return item


def _js_number(value: Any) -> float:
    """JavaScript's ``Number(value)``: "" and null are 0, numeric text its number, anything else NaN."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            return math.nan
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0.0
        try:
            number = float(text)
        except ValueError:
            return math.nan
        return number if math.isfinite(number) else math.nan
    return math.nan


def _js_out(number: float) -> Any:
    """A number as JSON writes a JavaScript number: 2 rather than 2.0; NaN as null (JSON has no NaN)."""
    if math.isnan(number):
        return None
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _truthy(number: float) -> bool:
    """JavaScript's truthiness of a number: neither 0 nor NaN."""
    return bool(number) and not math.isnan(number)


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@_route("POST", "/devicestatus", summary="Uploader and pump status; answered, not kept (Nightscout)")
async def post_devicestatus(
    request: Request,
    sender: Annotated[DeviceContext, Depends(uploader)],
    ingest: Annotated[IngestService, Depends(service)],
) -> list[Any]:
    """Uploaders send their battery and loop state beside the glucose; telemon stores glucose only, so this is
    answered 200 (an error would make some apps retry the upload forever) and not kept; the echo is what JSON can
    carry back of it (NaN and Infinity as null)."""
    docs: list[Any] = json_safe(await _read_docs(request, sender, ingest))
    return docs


# --- status -----------------------------------------------------------------------------------------------------


@_route("GET", "/status", summary="Server status (Nightscout); no secret needed")
async def status() -> dict[str, Any]:
    """What Nightscout apps read to check the server: name, version, clock and units (telemon answers mg/dL)."""
    now = dt.datetime.now(dt.UTC)
    return {
        "status": "ok",
        "name": "telemon",
        "version": _version(),
        "serverTime": _js_iso(now),
        "serverTimeEpoch": _epoch_ms(now),
        "apiEnabled": True,
        "careportalEnabled": False,
        "settings": {"units": "mg/dl"},
    }


@_route("GET", "/verifyauth", summary="Whether the api-secret is valid (Nightscout)")
async def verifyauth(request: Request, db: Annotated[asyncpg.Pool, Depends(pool)]) -> dict[str, Any]:
    """Always 200, as in Nightscout: ``message.message`` is ``OK`` for an active device's secret, else
    ``UNAUTHORIZED``. A device may upload and read its patient's readings; it is never an admin."""
    ok = await _device_of(request, db) is not None
    return {
        "status": 200,
        "message": {
            "canRead": ok,
            "canWrite": ok,
            "isAdmin": False,
            "message": "OK" if ok else "UNAUTHORIZED",
            "rolefound": "FOUND" if ok else "NOTFOUND",
            "permissions": "ROLE" if ok else "DEFAULT",
        },
    }


# --- the pipeline -----------------------------------------------------------------------------------------------


async def _read_docs(
    request: Request, sender: DeviceContext, ingest: IngestService, *, record: bool = True
) -> list[Any]:
    """The uploaded documents: a JSON object is one, an array many. A refused body is recorded (unless
    ``record`` is false: a preview), then raised."""
    settings = request.app.state.services.settings
    try:
        body = await read_body(request, settings.max_body_bytes)
        payload = parse_json(body)
        if isinstance(payload, dict):
            return [payload]
        if not isinstance(payload, list):
            raise BodyError(
                422,
                [{"loc": ["body"], "msg": "expected a Nightscout document or an array of them", "type": "model_type"}],
                body,
            )
        if len(payload) > settings.max_batch_readings:
            raise BodyError(
                413, f"{len(payload)} documents in one request; at most {settings.max_batch_readings}", body[:256]
            )
        return payload
    except BodyError as exc:
        if record:
            await ingest.reject(SOURCE, sender.device_id, refusal_reason(exc), exc.raw)
        raise


async def _store(
    ingest: IngestService,
    sender: DeviceContext,
    docs: list[Any],
    items: list[dict[str, Any] | Rejection],
    response: Response,
    positions: list[int] | None = None,
) -> dict[int, asyncpg.Record]:
    """Prepare and store the converted items (``items[i]`` came from ``docs[positions[i]]``) as one message;
    return the stored reading of each document that has one, by document index."""
    positions = positions if positions is not None else list(range(len(items)))
    wire = [(position, item) for position, item in zip(positions, items, strict=True) if isinstance(item, dict)]
    prepared = ingest.prepare({"readings": [item for _, item in wire]}, sender, SOURCE)

    # The pipeline numbers its rejections within the wire items; give them the index of the document the sender
    # sent (and the document itself as the raw text), beside the rejections of the conversion.
    refused_wire = {r.index for r in prepared.rejected if r.index is not None}
    rejected = [
        RejectedItem(position, str(item), raw_text(docs[position]))
        for position, item in zip(positions, items, strict=True)
        if isinstance(item, Rejection)
    ]
    for refusal in prepared.rejected:
        position = wire[refusal.index][0] if refusal.index is not None else None
        rejected.append(
            RejectedItem(position, refusal.reason, raw_text(docs[position]) if position is not None else refusal.raw)
        )
    prepared.rejected = sorted(rejected, key=lambda r: -1 if r.index is None else r.index)
    # prepare() turns each item into one row or one rejection, in order: the rows belong to the other items.
    row_positions = [position for number, (position, _) in enumerate(wire) if number not in refused_wire]

    if not prepared.rows and not prepared.rejected:
        response.headers.update({"X-Telemon-Accepted": "0", "X-Telemon-Duplicates": "0", "X-Telemon-Rejected": "0"})
        return {}
    answer = (await ingest.store([prepared]))[0]
    response.headers.update(
        {
            "X-Telemon-Accepted": str(answer.accepted),
            "X-Telemon-Duplicates": str(answer.duplicates),
            "X-Telemon-Rejected": str(len(answer.rejected)),
        }
    )
    if prepared.rejected:  # Nightscout's answer has no room for them: the first reasons, for whoever looks
        response.headers["X-Telemon-Reasons"] = _header_text(
            "; ".join(f"{r.index if r.index is not None else '-'}: {r.reason}" for r in prepared.rejected[:5])
        )
    rows = prepared.rows
    if not rows or len(row_positions) != len(rows):  # no rows, or a message-level refusal (then none either)
        return {}
    records = await ingest.stored(rows)
    return {position: record for position, record in zip(row_positions, records, strict=True) if record is not None}


# --- conversion: Nightscout documents → wire-format items -------------------------------------------------------


def _convert_entry(doc: Any) -> tuple[dict[str, Any], dict[str, Any]] | Rejection:
    """One Nightscout entry as (wire-format item, the document as Nightscout answers it), or the ``Rejection``
    of what is not a glucose reading."""
    try:
        return _entry_item(doc)
    except Rejection as exc:
        return exc


def _entry_item(doc: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(doc, dict):
        raise Rejection(f"an entry must be an object, got {type(doc).__name__}")
    entry_type = doc.get("type")
    kind = ENTRY_TYPES.get(entry_type) if isinstance(entry_type, str) else None
    if kind is None:
        raise Rejection(f"type: {brief(entry_type)} is not kept; telemon stores sgv (CGM) and mbg (meter) entries")
    value = _numeric(doc.get(entry_type))
    flags: list[str] = []
    if entry_type == "sgv" and isinstance(value, float) and math.isfinite(value):
        if value < DEXCOM_LOW:
            raise Rejection(_dexcom_error(value, doc.get("direction")))
        if value == DEXCOM_LOW:
            flags = ["lo"]
    measured_at, sys_time, offset = _entry_time(doc)
    item: dict[str, Any] = {"measured_at": measured_at, "value": value, "unit": "mg/dL", "kind": kind}
    if flags:
        item["flags"] = flags
    if isinstance(doc.get("_id"), str | int) and not isinstance(doc.get("_id"), bool):
        item["id"] = doc["_id"]
    answered: dict[str, Any] = {k: v for k, v in json_safe(doc).items() if k != "_id"}
    if sys_time is not None:
        answered["sysTime"] = _js_iso(sys_time)
        answered["utcOffset"] = offset
        if "dateString" in answered:
            answered["dateString"] = answered["sysTime"]
    return item, answered


def _normalised(doc: Any) -> Any:
    """A document telemon refuses, with the time fields Nightscout would add (for the preview)."""
    answered = json_safe(doc)
    if isinstance(answered, dict):
        try:
            _, sys_time, offset = _entry_time(doc)
        except Rejection:
            return answered
        if sys_time is not None:
            answered["sysTime"] = _js_iso(sys_time)
            answered["utcOffset"] = offset
            if "dateString" in answered:
                answered["dateString"] = answered["sysTime"]
    return answered


def _entry_time(doc: dict[str, Any]) -> tuple[str, dt.datetime | None, int]:
    """(time for the pipeline, the instant when known here, utcOffset in minutes). As Nightscout: ``dateString``
    with its offset first (its offset is the ``utcOffset``), else ``date`` (epoch milliseconds). A ``dateString``
    without an offset is the patient's local time (telemon's rule for every time without one) unless ``date``
    gives the instant."""
    date_string = doc.get("dateString")
    parsed = _parse_iso(date_string) if isinstance(date_string, str) else None
    if parsed is None and isinstance(date_string, str) and doc.get("date") is None:
        try:
            dt.datetime.fromisoformat(date_string.strip()).astimezone(dt.UTC)
        except OverflowError:
            raise Rejection(f"dateString: {brief(date_string)} is out of range") from None
        except ValueError:
            pass
    if parsed is not None and parsed.tzinfo is not None:
        offset = parsed.utcoffset() or dt.timedelta()
        return parsed.isoformat(), parsed, int(offset.total_seconds() // 60)
    if doc.get("date") is not None:
        moment = _from_epoch_ms(doc["date"], "date")
        return moment.isoformat(), moment, 0
    if date_string is not None:
        return date_string, None, 0  # the pipeline parses and judges it
    raise Rejection("date: required (epoch milliseconds), or dateString (ISO 8601)")


def _parse_iso(text: str) -> dt.datetime | None:
    """An ISO 8601 date and time (``Z``, ``+07:00`` or ``+0700``), or None; also None for one whose instant is
    outside the years 1–9999 in UTC (``0001-01-01T00:00:00+14:00``)."""
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
        if parsed.tzinfo is not None:
            parsed.astimezone(dt.UTC)
        elif not EARLIEST.replace(tzinfo=None) <= parsed <= LATEST.replace(tzinfo=None):
            return None
    except (ValueError, OverflowError):
        return None
    return parsed


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return dt.UTC


def _numeric(value: Any) -> Any:
    """Nightscout values may be numeric strings ("176"); anything else goes on as sent, for the pipeline to judge."""
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return value  # beyond any float: the pipeline refuses it as out of range
    return value


def _dexcom_error(value: float, direction: Any) -> str:
    code = int(value)
    if value != code or code < 0:
        return f"sgv: {value:g} is below {DEXCOM_LOW}: a Dexcom error code, not a glucose value"
    name = DEXCOM_ERRORS.get(code, "unknown")
    said = storable(direction[:30]) if isinstance(direction, str) else brief(direction, 30)
    shown = f", direction {said}" if direction else ""
    return f"sgv: {code} is Dexcom error code {code} ({name}{shown}), not a glucose value"


def _from_epoch_ms(value: Any, where: str = "date") -> dt.datetime:
    number = _numeric(value)
    if type(number) is int:
        raise Rejection(f"{where}: {brief(value)} is out of range")
    if not isinstance(number, float) or not math.isfinite(number):
        raise Rejection(f"{where}: expected epoch milliseconds, got {brief(value)}")
    try:
        return EPOCH + dt.timedelta(milliseconds=number)
    except OverflowError:
        raise Rejection(f"{where}: {value} is out of range") from None


# --- answers ----------------------------------------------------------------------------------------------------


def _entry_id(record: asyncpg.Record) -> str:
    """The uploader's own ``_id`` when it sent one; else telemon's reading id as 24 hex digits, the shape of a
    Nightscout (MongoDB) id."""
    return record["external_id"] or f"{record['id']:024x}"


def _entry_out(record: asyncpg.Record) -> dict[str, Any]:
    """A stored reading as a Nightscout entry: the document it was uploaded with, else one made from it."""
    when = record["measured_at"]
    doc = record["doc"]
    if doc is not None:
        return {"_id": _entry_id(record), **doc, "date": doc.get("date", _epoch_ms(when))}
    entry_type = ENTRY_TYPE_OF_KIND[record["kind"]]
    return {
        "_id": _entry_id(record),
        "type": entry_type,
        entry_type: round(record["value_mgdl"]),
        "date": _epoch_ms(when),
        "dateString": _js_iso(when),
        "sysTime": _js_iso(when),
        "utcOffset": 0,
        "device": record["device_id"],
    }


def _entry_answer(doc: dict[str, Any], record: asyncpg.Record) -> dict[str, Any]:
    """The answer to an uploaded entry: as sent, normalised, with the id of its reading (and ``date`` and
    ``device`` when it had none)."""
    answered = {"_id": _entry_id(record), **doc}
    answered.setdefault("date", _epoch_ms(record["measured_at"]))
    answered.setdefault("device", record["device_id"])
    if "sysTime" not in answered:
        answered["sysTime"] = _js_iso(record["measured_at"])
        answered["utcOffset"] = 0
    return answered


def _jsonb(value: Any) -> Any:
    """A document as jsonb can hold it: integers beyond 64 bits as text (no JSON writer here takes them)."""
    if type(value) is int and not -(2**63) <= value < 2**63:
        return str(value)[:64]
    if type(value) is dict:
        return {k: _jsonb(v) for k, v in value.items()}
    if type(value) is list:
        return [_jsonb(v) for v in value]
    return value


def _header_text(text: str) -> str:
    """Text a response header can carry: printable ASCII, bounded."""
    return text.encode("ascii", "backslashreplace").decode("ascii").replace("\r", " ").replace("\n", " ")[:1000]


# --- sanitising text, as Nightscout's purifier (DOMPurify) does --------------------------------------------------

SAFE_TAGS = frozenset(
    [
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "code",
        "div",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tr",
        "u",
        "ul",
    ]
)
DROPPED_WITH_CONTENT = frozenset(
    ["script", "style", "iframe", "object", "embed", "noscript", "template", "title", "textarea", "select"]
)
SAFE_ATTRIBUTES = frozenset(["alt", "class", "href", "src", "title", "width", "height", "colspan", "rowspan"])
VOID_TAGS = frozenset({"br", "hr", "img"})


class _Purifier(HTMLParser):
    """Keeps harmless markup (tags and attributes of a short list, links only to http, https and mailto) and the
    text, as DOMPurify does with Nightscout's treatments and entries: ``<IMG SRC="javascript:…">`` → ``<img>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.skipping += 1
        if self.skipping or tag not in SAFE_TAGS:
            return
        kept = ""
        for name, value in attrs:
            if name not in SAFE_ATTRIBUTES or value is None:
                continue
            if name in ("href", "src") and not re.match(r"^\s*(https?:|mailto:|[^:]*$)", value, re.IGNORECASE):
                continue
            kept += f' {name}="{html.escape(value, quote=True)}"'
        self.out.append(f"<{tag}{kept}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.skipping = max(0, self.skipping - 1)
            return
        if not self.skipping and tag in SAFE_TAGS and tag not in VOID_TAGS:
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(html.escape(data, quote=False))


def purify(text: str) -> str:
    """``text`` without markup that could run in a browser; text without ``<``, ``>`` or ``&`` as it is."""
    if "<" not in text and ">" not in text and "&" not in text:
        return text
    parser = _Purifier()
    parser.feed(text)
    parser.close()
    return "".join(parser.out)


def _purified(value: Any, depth: int = 0) -> Any:
    """Every text value of the documents purified, as Nightscout purifies every non-numeric string it is sent."""
    if type(value) is str:
        return purify(value)
    if type(value) is dict and depth < 64:
        return {k: _purified(v, depth + 1) for k, v in value.items()}
    if type(value) is list and depth < 64:
        return [_purified(v, depth + 1) for v in value]
    return value


def _epoch_ms(moment: dt.datetime) -> int:
    return (moment - EPOCH) // dt.timedelta(milliseconds=1)


def _js_iso(moment: dt.datetime) -> str:
    """As JavaScript's ``toISOString``: UTC, milliseconds, ``Z``."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _version() -> str:
    try:
        return importlib.metadata.version("telemon")
    except importlib.metadata.PackageNotFoundError:
        return "0"
