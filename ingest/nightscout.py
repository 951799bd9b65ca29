"""A Nightscout-compatible upload API under ``/ns``, so that the CGM apps patients already use (xDrip+, Juggluco,
AndroidAPS, which upload to Nightscout) can send to telemon unchanged: the app's Nightscout URL is
``https://<telemon>/ns`` and its API secret is the device token.

Endpoints (Nightscout API v1, each also with a ``.json`` suffix):

- ``POST /ns/api/v1/entries``: ``sgv`` (CGM, kind ``cgm``) and ``mbg`` (meter, kind ``smbg``) entries, in mg/dL.
- ``GET /ns/api/v1/entries``: the patient's latest readings, ``count`` and ``find[date][$gte|$gt|$lte|$lt]``.
- ``POST /ns/api/v1/treatments``: treatments carrying ``glucose`` become meter readings; the others are
  answered 200 and not kept (telemon stores glucose only, not insulin, carbs or notes without a glucose value).
- ``POST /ns/api/v1/devicestatus``: answered 200 and not kept, like treatments without glucose.
- ``GET /ns/api/v1/status``: server status, readable without a secret as in Nightscout (it tells nothing about
  any patient), so that apps can check the URL before the secret is set.
- ``GET /ns/api/v1/verifyauth``: whether the ``api-secret`` is valid, as apps check it when set up.

Authentication: only the ``api-secret`` header, the SHA-1 hex of the device token, as Nightscout uploaders send
it. A ``?token=`` or ``?secret=`` query parameter is not accepted (it would end up in access logs). A missing,
wrong or disabled device's secret is answered 401 with Nightscout's own body, and nothing is recorded.

Every entry goes through the one ingest pipeline (``IngestService.prepare`` / ``store``) as a wire-format item;
what cannot even be converted (a Dexcom error code, an unknown entry type, a missing date) is recorded as a
rejection with its index beside the pipeline's own. The answer is Nightscout's: the array of the entries as stored
(just inserted or already there); refused entries are left out of it, and the ``X-Telemon-*`` headers carry the
receipt (accepted, duplicates, rejected).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import math
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from ingest import queries
from ingest.body import BodyError, parse_json, read_body, refusal_reason
from ingest.http import service
from ingest.readings import DeviceContext, RejectedItem, Rejection, raw_text
from ingest.service import IngestService, device_by_nightscout_secret
from telemon import audit
from telemon.auth import pool
from telemon.pagination import MAX_LIMIT

SOURCE = "nightscout"
UNAUTHORIZED = {"status": 401, "message": "Unauthorized", "description": "Invalid/Missing"}

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


async def _device_of(request: Request, db: asyncpg.Pool) -> DeviceContext | None:
    secret = request.headers.get("api-secret", "").strip()
    if not secret:
        return None
    found = await device_by_nightscout_secret(db, secret)
    return found if found is not None and found.active else None


async def uploader(request: Request, db: Annotated[asyncpg.Pool, Depends(pool)]) -> DeviceContext:
    """The active device whose token's SHA-1 hex is the ``api-secret`` header; a disabled device is 401 too
    (Nightscout has no 403 there)."""
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


@router.post("/entries", summary="Upload CGM and meter entries (Nightscout)", responses=UPLOAD_RESPONSES)
@router.post("/entries.json", include_in_schema=False)
async def post_entries(
    request: Request,
    response: Response,
    sender: Annotated[DeviceContext, Depends(uploader)],
    ingest: Annotated[IngestService, Depends(service)],
) -> list[dict[str, Any]]:
    """Body: one Nightscout entry or an array of them, optionally gzip-encoded. ``sgv`` entries are CGM readings,
    ``mbg`` meter readings, both in mg/dL (numeric strings accepted); the time is ``date`` (epoch milliseconds),
    else ``dateString`` (ISO 8601). ``sgv`` values below 39 are Dexcom error codes and are refused; 39 is Dexcom's
    LOW and is stored as 39 mg/dL flagged ``lo``. Other types (``cal``, ``mbg`` without a value …) are refused.
    Answer: the entries as stored (inserted now or before), in Nightscout's shape."""
    docs = await _read_docs(request, sender, ingest)
    items: list[dict[str, Any] | Rejection] = []
    for doc in docs:
        try:
            items.append(_entry_item(doc))
        except Rejection as exc:
            items.append(exc)
    stored = await _store(ingest, sender, docs, items, response)
    return [_entry_out(record) for record in stored.values()]


@router.get(
    "/entries",
    summary="The patient's latest readings (Nightscout)",
    responses={401: {"description": "missing or wrong api-secret, or a disabled device"}},
)
@router.get("/entries.json", include_in_schema=False)
async def get_entries(
    sender: Annotated[DeviceContext, Depends(uploader)],
    db: Annotated[asyncpg.Pool, Depends(pool)],
    count: Annotated[int, Query(ge=1, description=f"how many, newest first (at most {MAX_LIMIT})")] = 10,
    date_gte: Annotated[float | None, Query(alias="find[date][$gte]", description="epoch ms, inclusive")] = None,
    date_gt: Annotated[float | None, Query(alias="find[date][$gt]", description="epoch ms, exclusive")] = None,
    date_lte: Annotated[float | None, Query(alias="find[date][$lte]", description="epoch ms, inclusive")] = None,
    date_lt: Annotated[float | None, Query(alias="find[date][$lt]", description="epoch ms, exclusive")] = None,
    entry_type: Annotated[str | None, Query(alias="find[type]", description="sgv (CGM) or mbg (meter)")] = None,
) -> list[dict[str, Any]]:
    """The readings of the device's patient (from all her devices), newest first, as Nightscout entries: ``sgv``
    for CGM readings, ``mbg`` for meter readings, in whole mg/dL."""
    lower, upper = EARLIEST, LATEST
    try:
        if date_gte is not None:
            lower = max(lower, _from_epoch_ms(date_gte))
        if date_gt is not None:
            lower = max(lower, _from_epoch_ms(date_gt) + MICROSECOND)
        if date_lte is not None:
            upper = min(upper, _from_epoch_ms(date_lte))
        if date_lt is not None:
            upper = min(upper, _from_epoch_ms(date_lt) - MICROSECOND)
    except Rejection as exc:
        raise HTTPException(status_code=400, detail=f"find[date]: {exc}") from None
    kind = None
    if entry_type is not None:
        kind = ENTRY_TYPES.get(entry_type)
        if kind is None:
            return []  # Nightscout answers an empty list for a type it holds none of (telemon keeps sgv and mbg)
    rows = await db.fetch(queries.NS_ENTRIES, sender.patient_id, lower, upper, kind, min(count, MAX_LIMIT))
    await audit.record(
        db,
        actor=f"device:{sender.device_id}",
        action="readings.read",
        patient_id=sender.patient_id,
        detail={"via": SOURCE, "count": len(rows)},
    )
    return [_entry_out(row) for row in rows]


# --- treatments -------------------------------------------------------------------------------------------------


@router.post("/treatments", summary="Upload treatments; BG checks are kept (Nightscout)", responses=UPLOAD_RESPONSES)
@router.post("/treatments.json", include_in_schema=False)
async def post_treatments(
    request: Request,
    response: Response,
    sender: Annotated[DeviceContext, Depends(uploader)],
    ingest: Annotated[IngestService, Depends(service)],
) -> list[dict[str, Any]]:
    """Body: one Nightscout treatment or an array. A treatment with ``glucose`` (a "BG Check", or any other
    event carrying one) is a meter reading: ``units`` ``mg/dl`` or ``mmol`` (mg/dL when absent, the unit this
    server announces in its status), time ``created_at`` (else ``date`` in epoch milliseconds), ``notes`` kept as
    the reading's note. Treatments without glucose (insulin, carbs, site changes …) are answered 200 but not kept:
    telemon stores glucose only. Answer: the treatments, those stored with the ``_id`` of their reading; refused
    ones are left out."""
    docs = await _read_docs(request, sender, ingest)
    items: list[dict[str, Any] | Rejection | None] = []
    for doc in docs:
        try:
            items.append(_treatment_item(doc))
        except Rejection as exc:
            items.append(exc)
    stored = await _store(
        ingest,
        sender,
        docs,
        [item for item in items if item is not None],
        response,
        positions=[index for index, item in enumerate(items) if item is not None],
    )
    answer: list[dict[str, Any]] = []
    for index, (doc, item) in enumerate(zip(docs, items, strict=True)):
        if item is None:
            answer.append(doc)  # not glucose: answered as received, not kept
        elif index in stored:
            answer.append({**doc, "_id": _entry_id(stored[index])})
    return answer


@router.post("/devicestatus", summary="Uploader and pump status; answered, not kept (Nightscout)")
@router.post("/devicestatus.json", include_in_schema=False)
async def post_devicestatus(
    request: Request,
    sender: Annotated[DeviceContext, Depends(uploader)],
    ingest: Annotated[IngestService, Depends(service)],
) -> list[Any]:
    """Uploaders send their battery and loop state beside the glucose; telemon stores glucose only, so this is
    answered 200 (an error would make some apps retry the upload forever) and not kept."""
    return await _read_docs(request, sender, ingest)


# --- status -----------------------------------------------------------------------------------------------------


@router.get("/status.json", summary="Server status (Nightscout); no secret needed")
@router.get("/status", include_in_schema=False)
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


@router.get("/verifyauth", summary="Whether the api-secret is valid (Nightscout)")
@router.get("/verifyauth.json", include_in_schema=False)
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


async def _read_docs(request: Request, sender: DeviceContext, ingest: IngestService) -> list[Any]:
    """The uploaded documents: a JSON object is one, an array many. A refused body is recorded, then raised."""
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
    rows = prepared.rows
    if not rows or len(row_positions) != len(rows):  # no rows, or a message-level refusal (then none either)
        return {}
    records = await ingest.stored(rows)
    return {position: record for position, record in zip(row_positions, records, strict=True) if record is not None}


# --- conversion: Nightscout documents → wire-format items -------------------------------------------------------


def _entry_item(doc: Any) -> dict[str, Any]:
    """One Nightscout entry as a wire-format item, or ``Rejection`` for what is not a glucose reading."""
    if not isinstance(doc, dict):
        raise Rejection(f"an entry must be an object, got {type(doc).__name__}")
    entry_type = doc.get("type")
    kind = ENTRY_TYPES.get(entry_type) if isinstance(entry_type, str) else None
    if kind is None:
        raise Rejection(f"type: {str(entry_type)[:40]!r} is not kept; telemon stores sgv (CGM) and mbg (meter) entries")
    value = _numeric(doc.get(entry_type))
    flags: list[str] = []
    if entry_type == "sgv" and isinstance(value, float):
        if value < DEXCOM_LOW:
            raise Rejection(_dexcom_error(value, doc.get("direction")))
        if value == DEXCOM_LOW:
            flags = ["lo"]
    item: dict[str, Any] = {"measured_at": _entry_time(doc), "value": value, "unit": "mg/dL", "kind": kind}
    if flags:
        item["flags"] = flags
    if isinstance(doc.get("_id"), str | int) and not isinstance(doc.get("_id"), bool):
        item["id"] = doc["_id"]
    return item


def _treatment_item(doc: Any) -> dict[str, Any] | None:
    """A treatment carrying glucose as a meter reading; None for a treatment without glucose (not kept)."""
    if not isinstance(doc, dict):
        raise Rejection(f"a treatment must be an object, got {type(doc).__name__}")
    glucose = doc.get("glucose")
    if glucose is None or glucose == "":
        return None
    units = doc.get("units")
    if units is None:
        units = "mg/dL"  # Nightscout reads a treatment without units in the server's units: mg/dl here
    if doc.get("created_at") is not None:
        measured_at = doc["created_at"]
    elif doc.get("date") is not None:
        measured_at = _from_epoch_ms(doc["date"], "date").isoformat()
    else:
        raise Rejection("created_at: required (ISO 8601), or date in epoch milliseconds")
    item: dict[str, Any] = {"measured_at": measured_at, "value": _numeric(glucose), "unit": units, "kind": "smbg"}
    if isinstance(doc.get("notes"), str) and doc["notes"].strip():
        item["note"] = doc["notes"].strip()
    if isinstance(doc.get("_id"), str | int) and not isinstance(doc.get("_id"), bool):
        item["id"] = doc["_id"]
    return item


def _numeric(value: Any) -> Any:
    """Nightscout values may be numeric strings ("176"); anything else goes on as sent, for the pipeline to judge."""
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _dexcom_error(value: float, direction: Any) -> str:
    code = int(value)
    if value != code:
        return f"sgv: {value:g} is below {DEXCOM_LOW}: a Dexcom error code, not a glucose value"
    name = DEXCOM_ERRORS.get(code, "unknown")
    shown = f", direction {direction!s:.30}" if direction else ""
    return f"sgv: {code} is Dexcom error code {code} ({name}{shown}), not a glucose value"


def _entry_time(doc: dict[str, Any]) -> Any:
    """``date`` (epoch milliseconds) as an ISO 8601 instant, else ``dateString`` as sent (the pipeline parses and
    judges it)."""
    if doc.get("date") is not None:
        return _from_epoch_ms(doc["date"], "date").isoformat()
    if doc.get("dateString") is not None:
        return doc["dateString"]
    raise Rejection("date: required (epoch milliseconds), or dateString (ISO 8601)")


def _from_epoch_ms(value: Any, where: str = "date") -> dt.datetime:
    number = _numeric(value)
    if not isinstance(number, float) or not math.isfinite(number):
        raise Rejection(f"{where}: expected epoch milliseconds, got {str(value)[:40]!r}")
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
    entry_type = ENTRY_TYPE_OF_KIND[record["kind"]]
    when = record["measured_at"]
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
