"""Nightscout entries: ``sgv`` (CGM, kind ``cgm``) and ``mbg`` (meter, kind ``smbg``) readings in mg/dL, uploaded
(``POST /ns/api/v1/entries``), checked (``/entries/preview``) and read back (``GET /entries``, ``/entries/sgv``,
``/entries/mbg``, ``/entries/current``, ``/entries/<24 hex id>``, with Nightscout's ``find`` filters).

Each entry is translated once into a wire-format item (or refused: a Dexcom error code, a type telemon does not
keep, a missing date) and the upload goes through the ingest service as one submission; the entry's document is
kept beside its reading, in the same transaction, and answered as Nightscout does.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, HTTPException, Query, Request, Response

from ingest.body import json_safe
from ingest.http import service
from ingest.nightscout import queries
from ingest.nightscout.auth import uploader
from ingest.nightscout.documents import (
    EARLIEST,
    LATEST,
    MICROSECOND,
    OBJECT_ID,
    epoch_ms,
    from_epoch_ms,
    js_iso,
    jsonb,
    numeric,
    parse_iso,
)
from ingest.nightscout.markup import purified
from ingest.nightscout.router import SOURCE, UPLOAD_RESPONSES, read_docs, reasons_header, receive, route, router
from ingest.readings import DeviceContext, Rejection, Submission, brief, storable
from ingest.schemas import NightscoutDocument, answered_with
from ingest.service import IngestService, Receipt
from telemon import audit
from telemon.auth import pool
from telemon.db import Conn
from telemon.pagination import MAX_LIMIT

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


@route(
    "POST",
    "/entries",
    summary="Upload CGM and meter entries (Nightscout)",
    response_model=None,
    responses={**answered_with(list[NightscoutDocument], "the entries as stored"), **UPLOAD_RESPONSES},
)
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
    docs = purified(await read_docs(request, sender, ingest))
    converted = [_convert_entry(doc) for doc in docs]
    items = [c if isinstance(c, Rejection) else c[0] for c in converted]
    answer: list[dict[str, Any]] = []

    async def keep_documents(conn: Conn, receipts: list[Receipt]) -> None:
        """Each stored reading's document, kept beside it (the first upload's), and the answer made of them."""
        keys: list[tuple[Any, ...]] = []
        readings = receipts[0].readings
        for index in sorted(readings):
            record, found = readings[index], converted[index]
            assert not isinstance(found, Rejection)
            keys.append((record["patient_id"], record["device_id"], record["kind"], record["device_time"],
                         record["value_raw"], jsonb(found[1])))  # fmt: skip
            answer.append(_entry_answer(found[1], record))
        if keys:
            await conn.execute(queries.NS_INSERT_ENTRY_DOCS, *(list(column) for column in zip(*keys, strict=True)))

    await receive(ingest, Submission.translated(sender, SOURCE, items, sent=docs), response, keep_documents)
    return answer


@route(
    "POST",
    "/entries/preview",
    summary="Check entries without storing them (Nightscout)",
    response_model=None,
    responses=answered_with(list[dict[str, Any]], "every document, normalised as an upload would be"),
)
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
    docs = purified(await read_docs(request, sender, ingest, record=False))
    converted = [_convert_entry(doc) for doc in docs]
    items = [c if isinstance(c, Rejection) else c[0] for c in converted]
    prepared = ingest.validate(Submission.translated(sender, SOURCE, items, sent=docs), dt.datetime.now(dt.UTC))
    response.headers["X-Telemon-Accepted"] = str(len(prepared.rows))
    response.headers["X-Telemon-Rejected"] = str(len(prepared.rejected))
    if prepared.rejected:
        response.headers["X-Telemon-Reasons"] = reasons_header(
            [{"index": r.index, "reason": r.reason} for r in prepared.rejected]
        )
    return [c[1] if not isinstance(c, Rejection) else _normalised(doc) for c, doc in zip(converted, docs, strict=True)]


@route(
    "GET",
    "/entries",
    summary="The patient's latest readings (Nightscout)",
    response_model=None,
    responses={
        **answered_with(list[NightscoutDocument], "the readings as Nightscout entries, newest first"),
        401: {"description": "missing or wrong api-secret, or a disabled device"},
    },
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


@route(
    "GET",
    "/entries/current",
    summary="The patient's latest reading (Nightscout)",
    response_model=None,
    responses=answered_with(list[NightscoutDocument], "a list of one entry, or none"),
)
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
        return from_epoch_ms(float(value))
    except ValueError:
        pass
    parsed = parse_iso(value.replace(" ", "+"))
    if parsed is None:
        raise Rejection(f"cannot parse {brief(value)} as epoch milliseconds or an ISO 8601 date")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


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
    value = numeric(doc.get(entry_type))
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
        answered["sysTime"] = js_iso(sys_time)
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
            answered["sysTime"] = js_iso(sys_time)
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
    parsed = parse_iso(date_string) if isinstance(date_string, str) else None
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
        moment = from_epoch_ms(doc["date"], "date")
        return moment.isoformat(), moment, 0
    if date_string is not None:
        return date_string, None, 0  # the pipeline parses and judges it
    raise Rejection("date: required (epoch milliseconds), or dateString (ISO 8601)")


def _dexcom_error(value: float, direction: Any) -> str:
    code = int(value)
    if value != code or code < 0:
        return f"sgv: {value:g} is below {DEXCOM_LOW}: a Dexcom error code, not a glucose value"
    name = DEXCOM_ERRORS.get(code, "unknown")
    said = storable(direction[:30]) if isinstance(direction, str) else brief(direction, 30)
    shown = f", direction {said}" if direction else ""
    return f"sgv: {code} is Dexcom error code {code} ({name}{shown}), not a glucose value"


def _entry_id(record: asyncpg.Record) -> str:
    """The uploader's own ``_id`` when it sent one; else telemon's reading id as 24 hex digits, the shape of a
    Nightscout (MongoDB) id."""
    return record["external_id"] or f"{record['id']:024x}"


def _entry_out(record: asyncpg.Record) -> dict[str, Any]:
    """A stored reading as a Nightscout entry: the document it was uploaded with, else one made from it."""
    when = record["measured_at"]
    doc = record["doc"]
    if doc is not None:
        return {"_id": _entry_id(record), **doc, "date": doc.get("date", epoch_ms(when))}
    entry_type = ENTRY_TYPE_OF_KIND[record["kind"]]
    return {
        "_id": _entry_id(record),
        "type": entry_type,
        entry_type: round(record["value_mgdl"]),
        "date": epoch_ms(when),
        "dateString": js_iso(when),
        "sysTime": js_iso(when),
        "utcOffset": 0,
        "device": record["device_id"],
    }


def _entry_answer(doc: dict[str, Any], record: asyncpg.Record) -> dict[str, Any]:
    """The answer to an uploaded entry: as sent, normalised, with the id of its reading (and ``date`` and
    ``device`` when it had none)."""
    answered = {"_id": _entry_id(record), **doc}
    answered.setdefault("date", epoch_ms(record["measured_at"]))
    answered.setdefault("device", record["device_id"])
    if "sysTime" not in answered:
        answered["sysTime"] = js_iso(record["measured_at"])
        answered["utcOffset"] = 0
    return answered
