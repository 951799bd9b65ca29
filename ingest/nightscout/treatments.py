"""Nightscout treatments (``POST`` and ``GET /ns/api/v1/treatments``): every treatment is kept (insulin, carbs,
BG checks, notes, site changes …), normalised and deduplicated as Nightscout does (lib/server/treatments.js); one
carrying ``glucose`` is also a meter reading, and one carrying ``insulin`` (a bolus) an insulin dose
(``ingest.nightscout.doses``), each translated into a wire-format item and stored through the ingest service in the
same transaction as the treatments."""

from __future__ import annotations

import datetime as dt
import math
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
    OBJECT_ID,
    from_epoch_ms,
    js_iso,
    jsonb,
    parse_iso,
    zone_of,
)
from ingest.nightscout.doses import dose_items
from ingest.nightscout.markup import purified
from ingest.nightscout.router import SOURCE, UPLOAD_RESPONSES, read_docs, receive, route
from ingest.readings import DeviceContext, Rejection, Submission, brief, storable
from ingest.schemas import NightscoutDocument, answered_with
from ingest.service import IngestService, Receipt
from telemon import audit
from telemon.auth import pool
from telemon.db import Conn
from telemon.pagination import MAX_LIMIT

# Nightscout coerces these with JavaScript's Number() and drops the empty ones (lib/server/treatments.js).
TREATMENT_NUMBERS = (
    "glucose", "targetTop", "targetBottom", "carbs", "insulin", "duration", "percent", "absolute", "relative",
    "preBolus",
)  # fmt: skip
DROPPED_IF_EMPTY = ("targetTop", "targetBottom", "carbs", "insulin", "percent", "relative", "notes", "preBolus")
DROPPED_IF_NAN = ("absolute", "duration")


@route(
    "POST",
    "/treatments",
    summary="Upload treatments (Nightscout)",
    response_model=None,
    responses={**answered_with(list[NightscoutDocument], "every treatment kept, with its _id"), **UPLOAD_RESPONSES},
)
async def post_treatments(
    request: Request,
    response: Response,
    sender: Annotated[DeviceContext, Depends(uploader)],
    ingest: Annotated[IngestService, Depends(service)],
) -> list[dict[str, Any]]:
    """Body: one Nightscout treatment or an array. Every treatment is kept, normalised as Nightscout does: numeric
    strings become numbers (``"2.00"`` → 2), empty fields are dropped, ``created_at`` (else ``eventTime``, else
    ``date`` or ``mills`` in epoch ms, else now) is answered in UTC with its ``utcOffset``, HTML in text is sanitised,
    and a ``preBolus`` moves the carbs to a second treatment ``preBolus`` minutes later. Treatments with the same
    ``identifier`` (else 24-hex ``_id``, else ``created_at`` and ``eventType``) are one: the last sent replaces the
    others. A treatment with ``glucose`` (a "BG Check" …) is also a meter reading (``units`` ``mg/dl`` or ``mmol``;
    mg/dL when absent); when that reading is refused (before the pregnancy, a unit telemon does not know …) the
    treatment is refused with it. A treatment with ``insulin`` (a bolus: AndroidAPS, xDrip+ and the careportal send
    them so) is also an insulin dose, one per injection of xDrip+'s ``insulinInjections``; its units must be above 0
    and at most 160, else the treatment is refused; a Temp Basal, a priming and a deleted bolus (``isValid`` false)
    are no dose. A treatment re-sent with its ``identifier`` (or ``_id``) and another dose replaces its dose. Answer:
    every treatment kept, with its ``_id``."""
    docs = purified(await read_docs(request, sender, ingest))
    upload = _Upload(sender, docs, dt.datetime.now(dt.UTC))
    submission = Submission.translated(
        sender,
        SOURCE,
        upload.items,
        sent=[docs[p] for p in upload.positions],
        indices=upload.positions,
        origins=upload.origins,
    )
    await receive(ingest, submission, response, upload.keep)
    answer = upload.answer()
    response.headers.update(
        {
            "X-Telemon-Accepted": str(upload.new),
            "X-Telemon-Duplicates": str(len(answer) - upload.new),
            "X-Telemon-Rejected": str(len(upload.refused)),
        }
    )
    return answer


class _Upload:
    """One upload of treatments: each document normalised (or refused), the glucose readings and insulin doses
    among them translated into wire-format items (``items``, of the documents at ``positions``, with the field each
    item field came from in ``origins``), then, in the ingest transaction, the treatments kept (``keep``)."""

    def __init__(self, sender: DeviceContext, docs: list[Any], now: dt.datetime) -> None:
        self.sender = sender
        self.normalised: list[list[dict[str, Any]] | Rejection] = []
        for doc in docs:
            try:
                self.normalised.append(_normalise_treatment(doc, sender, now))
            except Rejection as exc:
                self.normalised.append(exc)
        self.glucose = {
            i for i, n in enumerate(self.normalised) if not isinstance(n, Rejection) and n[0].get("glucose") is not None
        }
        self.items: list[dict[str, Any] | Rejection] = []
        self.positions: list[int] = []
        self.origins: list[dict[str, str]] = []
        zone = sender.zone
        for index, n in enumerate(self.normalised):
            if isinstance(n, Rejection):
                self._add(index, n)
                continue
            if index in self.glucose:
                try:
                    self._add(index, _glucose_item(n[0], docs[index]))
                except Rejection as exc:
                    self._add(index, exc)
            try:
                for item, origins in dose_items(n[0], docs[index], zone):
                    self._add(index, item, origins)
            except Rejection as exc:
                self._add(index, exc)
        self.refused = {p for p, item in zip(self.positions, self.items, strict=True) if isinstance(item, Rejection)}
        self.order: list[tuple[int, list[str]]] = []  # each kept document's treatments, by their dedup keys
        self.ids: dict[str, str] = {}
        self.new = 0

    def _add(self, index: int, item: dict[str, Any] | Rejection, origins: dict[str, str] | None = None) -> None:
        self.items.append(item)
        self.positions.append(index)
        self.origins.append(origins or {})

    async def keep(self, conn: Conn, receipts: list[Receipt]) -> None:
        """The treatments, upserted in the transaction of their glucose readings: one row per dedup key, the last
        document sent with it (Nightscout replaces them in order); a treatment whose reading is refused is refused
        with it, and so is one whose dose is refused. A treatment kept with its identity replaces the dose of its
        earlier versions (``_replace_doses``)."""
        stored = {self.positions[i]: record for i, record in receipts[0].readings.items()}
        self.refused.update(p for p in self.glucose if p not in stored)
        self.refused.update(r["index"] for r in receipts[0].rejected if r["index"] is not None)
        kept: dict[str, tuple[dict[str, Any], int | None]] = {}
        for index, n in enumerate(self.normalised):
            if isinstance(n, Rejection) or index in self.refused:
                continue
            reading_id = stored[index]["id"] if index in stored else None
            keys = []
            for treatment in n:
                key = _treatment_key(treatment)
                kept[key] = (treatment, reading_id if treatment is n[0] else None)
                keys.append(key)
            self.order.append((index, keys))
        if not kept:
            return
        rows = await conn.fetch(
            queries.NS_UPSERT_TREATMENTS,
            self.sender.patient_id,
            self.sender.device_id,
            list(kept),
            [t.get("_id") for t, _ in kept.values()],
            [parse_iso(t["created_at"]) for t, _ in kept.values()],
            [storable(str(t["eventType"])) if t.get("eventType") is not None else None for t, _ in kept.values()],
            [_finite(t.get("insulin")) for t, _ in kept.values()],
            [_finite(t.get("carbs")) for t, _ in kept.values()],
            [reading_id for _, reading_id in kept.values()],
            [jsonb({k: v for k, v in t.items() if k != "_id"}) for t, _ in kept.values()],
        )
        self.ids = {r["dedup_key"]: r["ns_id"] or f"{r['id']:024x}" for r in rows}
        self.new = sum(1 for r in rows if r["inserted"])
        await self._replace_doses(conn, receipts[0])

    async def _replace_doses(self, conn: Conn, receipt: Receipt) -> None:
        """Nightscout replaces a treatment re-sent with the same identity (AndroidAPS's ``identifier``, xDrip+'s and
        Loop's ``_id``), and so its dose is replaced: a dose stored from an earlier version with that identity (its
        ``external_id``), and not sent again now, is deleted, audited with what it was. The last document sent with
        an identity is the version that stands (a deleted bolus, ``isValid`` false, leaves none)."""
        latest: dict[str, int] = {}
        for index, _ in self.order:
            n = self.normalised[index]
            assert not isinstance(n, Rejection)
            identity = n[0].get("identifier") or n[0].get("_id")
            if isinstance(identity, str) and identity:
                latest[identity] = index
        if not latest:
            return
        kept_ids = [
            record["id"]
            for position, record in receipt.measurements.items()
            if latest.get(str(record["external_id"])) == self.positions[position]
        ]
        dropped = await conn.fetch(
            queries.NS_DROP_REPLACED_DOSES,
            self.sender.patient_id,
            self.sender.device_id,
            SOURCE,
            list(latest),
            kept_ids,
        )
        for row in dropped:
            await audit.record(
                conn,
                actor=f"device:{self.sender.device_id}",
                action="measurements.replace",
                patient_id=self.sender.patient_id,
                detail={
                    "via": SOURCE,
                    "kind": "insulin",
                    "identity": row["external_id"],
                    "measured_at": row["measured_at"].isoformat(),
                    "units": row["value"],
                    "insulin": row["insulin"],
                    "product": row["product"],
                    "slot": row["slot"],
                },
            )

    def answer(self) -> list[dict[str, Any]]:
        """Every treatment kept, with its ``_id``, in the order sent."""
        answer: list[dict[str, Any]] = []
        for index, keys in self.order:
            n = self.normalised[index]
            assert not isinstance(n, Rejection)
            answer += [{**treatment, "_id": self.ids[key]} for treatment, key in zip(n, keys, strict=True)]
        return answer


@route(
    "GET",
    "/treatments",
    summary="The patient's treatments (Nightscout)",
    response_model=None,
    responses=answered_with(list[NightscoutDocument], "the treatments, newest first, as answered when uploaded"),
)
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
        parsed = parse_iso(value.replace(" ", "+"))
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
        if t.get("date") is not None:
            moment = from_epoch_ms(t["date"], "date")
        elif t.get("mills") is not None:  # Nightscout's own answers carry mills: a client re-posting one
            moment = from_epoch_ms(t["mills"], "mills")
        else:
            moment = now
    elif isinstance(when, str):
        parsed = parse_iso(when)
        if parsed is None:
            raise Rejection(f"created_at: {brief(when)} is not an ISO 8601 date")
        moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=zone_of(sender.time_zone))
    elif isinstance(when, int | float) and not isinstance(when, bool):
        moment = from_epoch_ms(when, "created_at")  # JavaScript's Date takes epoch milliseconds too
    else:
        raise Rejection(f"created_at: expected an ISO 8601 date, got {brief(when)}")
    offset = moment.utcoffset() or dt.timedelta()
    start = dt.datetime.combine(sender.pregnancy_start, dt.time(), zone_of(sender.time_zone))
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
    t["created_at"] = js_iso(moment)
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
            "created_at": js_iso(pre_bolus_end),
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
