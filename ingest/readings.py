"""The device wire format, ``{"device_time", "readings": [...]}``: Parse → Validate → Normalise, item by item.

``prepare`` turns one decoded sync (``{"device_time": ..., "readings": [...]}``) of one device into rows to
store and rejections with their index and a specific reason. It touches no database: the caller gives it the
device's patient and the server's clock, so the same code serves HTTP, MQTT, Nightscout and FHIR.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from ingest.measurements import Measurement, is_measurement, prepare_measurement
from ingest.wire import MAX_FUTURE as MAX_FUTURE
from ingest.wire import DeviceContext as DeviceContext
from ingest.wire import Rejection as Rejection
from ingest.wire import Sync as Sync
from ingest.wire import brief as brief
from ingest.wire import parse_instant as parse_instant
from ingest.wire import text_fault as text_fault
from telemon.meal_context import NO_MEAL, clock_context, day_contexts
from telemon.units import GL, MGDL, MMOLL, PLAUSIBLE_MGDL, TO_MGDL, canonical_unit, exact_mgdl

KINDS = ("smbg", "cgm")
CONTEXTS = ("fasting", "before_meal", "after_meal", "bedtime", "night", "unspecified")
MEALS = ("breakfast", "lunch", "dinner", "snack")
FLAGS = ("lo", "hi", "control_solution", "manual")

# A sync's device_time is trusted to correct the clock only past this skew: below it, network delay dominates.
CLOCK_TOLERANCE = dt.timedelta(minutes=2)
RAW_LIMIT = 4096  # characters of a refused item kept in ingest_rejections
_NUMBER = (int, float)


@dataclass(slots=True)
class Row:
    """One reading ready to store; the order of fields is the column order of ``queries.STAGING_COLUMNS``."""

    patient_id: uuid.UUID
    device_id: str
    kind: str
    device_time: dt.datetime
    value_raw: float
    unit_raw: str
    measured_at: dt.datetime
    value_mgdl: float
    clock_offset_s: int
    context: str
    context_inferred: bool
    meal: str | None
    minutes_after_meal: int | None
    flags: list[str]
    source: str
    external_id: str | None
    note: str | None

    def record(self) -> tuple[Any, ...]:
        """The staging columns (``queries.STAGING_COLUMNS`` after message and position), for COPY: the device time
        as microseconds since the Unix epoch and the flags as an array literal, which cost a fraction of what
        asyncpg's timestamptz and text[] encoders take; the INSERT turns them back (measured_at is device time
        plus the clock offset, as here)."""
        return (
            self.patient_id, self.device_id, self.kind, (self.device_time - EPOCH) // MICROSECOND, self.value_raw,
            self.unit_raw, self.value_mgdl, self.clock_offset_s, self.context, self.context_inferred, self.meal,
            self.minutes_after_meal, _flags_literal(self.flags), self.source, self.external_id, self.note,
        )  # fmt: skip


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICROSECOND = dt.timedelta(microseconds=1)


def _flags_literal(flags: list[str]) -> str:
    return "{" + ",".join(flags) + "}" if flags else "{}"


def storable(text: str) -> str:
    """``text`` as PostgreSQL can store it and JSON can carry it: a NUL character (refused in text) written as
    ``\\u0000``, a lone UTF-16 surrogate (not UTF-8, so neither asyncpg nor a JSON answer can encode it) as its
    ``\\udXXX`` escape. ASCII text without NUL, nearly every text, comes back as it is."""
    if "\x00" in text:
        text = text.replace("\x00", "\\u0000")
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


@dataclass
class RejectedItem:
    """One refusal as recorded in ``ingest_rejections`` and told to the sender. Its texts are made storable
    whenever they are set, whoever builds it (every transport does): a refusal must never fail to be recorded
    because of the very input it refuses."""

    index: int | None  # None: the whole message
    reason: str
    raw: str

    def __setattr__(self, name: str, value: Any) -> None:
        if type(value) is str:
            value = storable(value)
        object.__setattr__(self, name, value)


@dataclass
class Prepared:
    """One message of one device, parsed: what to store, what was refused, and whose readings they are.
    ``positions``: the position, among the message's items, of the item each row came from; ``measurements`` the
    items of the other kinds (``ingest.measurements``), from the items at ``measured_positions``."""

    device: DeviceContext
    source: str
    rows: list[Row] = field(default_factory=list)
    rejected: list[RejectedItem] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    measured_positions: list[int] = field(default_factory=list)


@dataclass(slots=True)  # not frozen: built once per message on the hot path, and a frozen init costs double
class Submission:
    """One message of one device in the device wire format, the one form every transport hands the ingest service.

    Device transports (HTTP, MQTT) pass what the device sent as it was decoded: ``payload`` is
    ``{"device_time": optional, "readings": [...]}``. Transports that translate another format (Nightscout
    documents, FHIR Observations) build it with ``translated``: each document becomes one wire-format item, or a
    ``Rejection`` when it is no reading at all (a Dexcom error code, an Observation without a value), so that the
    pipeline numbers every refusal in the sender's terms at once:

    - ``sent``: what the sender sent for each item (the document), recorded as a refusal's raw text instead of the
      translated item;
    - ``indices``: the index each item's refusal is given (the document's position), when it is not the item's
      own position (a Nightscout upload whose other treatments carry no glucose; a FHIR entry);
    - ``origins``: for each item, the element of the document each wire field came from: a reason the pipeline
      gives about ``value`` is told of ``Observation.valueQuantity.value``.
    """

    device: DeviceContext
    source: str
    payload: Any
    sent: Sequence[Any] | None = None
    indices: Sequence[int | None] | None = None
    origins: Sequence[Mapping[str, str]] | None = None

    @classmethod
    def translated(
        cls,
        device: DeviceContext,
        source: str,
        items: list[Any],
        *,
        sent: Sequence[Any],
        indices: Sequence[int | None] | None = None,
        origins: Sequence[Mapping[str, str]] | None = None,
    ) -> Submission:
        return cls(device, source, {"readings": items}, sent, indices, origins)


def raw_text(item: Any) -> str:
    """A bounded, storable text form of what was received, for the rejections table, whatever it is: bytes that
    are not UTF-8, text with NUL characters or lone surrogates, values nested too deep to print, integers too
    long to write."""
    if isinstance(item, bytes | bytearray):
        text = bytes(item[:RAW_LIMIT]).decode("utf-8", errors="replace")
    elif isinstance(item, str):
        text = item[:RAW_LIMIT]
    else:
        try:
            text = json.dumps(item, default=str)[:RAW_LIMIT]  # ASCII: surrogates and NUL come out escaped
        except (ValueError, TypeError, RecursionError) as exc:
            text = f"<{brief(item)} that cannot be written back: {type(exc).__name__}>"
    return storable(text)


def clock_offset(device_time: Any, zone: ZoneInfo, now: dt.datetime) -> dt.timedelta:
    """Server clock minus device clock at send time; zero when absent or within ``CLOCK_TOLERANCE``."""
    if device_time is None:
        return dt.timedelta(0)
    sent = parse_instant(device_time, zone, "device_time")
    offset = now - sent
    return offset if abs(offset) > CLOCK_TOLERANCE else dt.timedelta(0)


def infer_context(minutes: int, kind: str) -> tuple[str, str | None]:
    """The measurement context of one reading from its local time, ``minutes`` after local midnight, as the first
    reading of its window of the day (``telemon.meal_context``); ``place_sync`` then places the readings of a
    sync that share a day, and the engine and the logbook place them again among the whole day's readings."""
    return clock_context(minutes, kind)


def place_sync(rows: list[Row], zone: ZoneInfo) -> None:
    """Place the inferred readings of one sync among the sync's other readings of their local day (the one
    inference of ``telemon.meal_context``): a meter re-sending its memory gets the after-breakfast reading that
    follows a fasting one right, not only the first. Rows with a context of their own are left as sent. Columnar
    (numpy), as it runs on every sync of more than one reading."""
    if len(rows) < 2 or not any(r.context_inferred and r.kind == "smbg" for r in rows):
        return
    t = np.array([r.measured_at.timestamp() for r in rows], dtype=np.float64)
    order = np.argsort(t, kind="stable")
    first, last = rows[int(order[0])].measured_at, rows[int(order[-1])].measured_at
    offset = first.astimezone(zone).utcoffset()
    if offset is not None and offset == last.astimezone(zone).utcoffset():
        local = np.floor(t[order]).astype(np.int64) + int(offset.total_seconds())  # one offset for the whole sync
        day, minute = local // 86400, (local % 86400) // 60
    else:  # the sync spans a change of the zone's offset
        moments = [rows[int(k)].measured_at.astimezone(zone) for k in order]
        day = np.array([m.toordinal() for m in moments], dtype=np.int64)
        minute = np.array([m.hour * 60 + m.minute for m in moments], dtype=np.int64)
    ordered = [rows[int(k)] for k in order]
    context, meal = day_contexts(
        np.zeros(len(rows), dtype=np.int64),
        day,
        minute,
        np.array([r.kind == "smbg" and "control_solution" not in r.flags for r in ordered], dtype=np.bool_),
        np.array([r.context_inferred for r in ordered], dtype=np.bool_),
        np.array([_CONTEXT_CODE[r.context] for r in ordered], dtype=np.int8),
        np.array([_MEAL_CODE.get(r.meal, NO_MEAL) for r in ordered], dtype=np.int8),
    )
    for row, c, m in zip(ordered, context.tolist(), meal.tolist(), strict=True):
        if row.context_inferred:
            row.context, row.meal = CONTEXTS[c], MEALS[m] if m >= 0 else None


_CONTEXT_CODE = {name: code for code, name in enumerate(CONTEXTS)}
_MEAL_CODE: dict[str | None, int] = {name: code for code, name in enumerate(MEALS)}


def _refuse_choice(key: str, value: Any, choices: tuple[str, ...]) -> Rejection:
    return Rejection(f"{key}: {brief(value)} is not one of {', '.join(choices)}")


def _refuse_number(value: Any, where: str) -> Rejection:
    if type(value) is float:
        return Rejection(f"{where}: {value} is not a finite number")
    if type(value) is int:
        return Rejection(f"{where}: {brief(value)} is out of range")
    return Rejection(f"{where}: expected a number, got {type(value).__name__}")


# The exact spellings devices send; any other goes through canonical_unit (case, spaces, variants).
_UNIT_AS_SENT = {MGDL: MGDL, MMOLL: MMOLL, GL: GL}


def prepare_item(item: Any, sync: Sync) -> Row:
    """Validate and normalise one wire-format reading, or raise ``Rejection`` with the reason. The hot path of
    every transport: checks are written for speed (exact types first, one dictionary look-up per field)."""
    if not isinstance(item, dict):
        if isinstance(item, Rejection):
            raise item  # refused by the transport's translation (``Submission.translated``)
        raise Rejection(f"a reading must be an object, got {type(item).__name__}")
    get: Callable[[str], Any] = item.get

    flags = get("flags")
    if flags:
        if not isinstance(flags, list) or any(not isinstance(f, str) or f not in FLAGS for f in flags):
            raise Rejection(f"flags: each flag must be one of {', '.join(FLAGS)}")
        flags = sorted(set(flags))
        if "lo" in flags and "hi" in flags:
            raise Rejection("flags: a reading cannot be both lo and hi")
    else:
        flags = []

    unit_text = get("unit")
    if type(unit_text) is not str:
        raise Rejection("unit: required, one of mg/dL, mmol/L, g/L")
    unit = _UNIT_AS_SENT.get(unit_text) or canonical_unit(unit_text)
    if unit is None:
        raise Rejection(f"unit: {unit_text[:20]!r} is not one of mg/dL, mmol/L, g/L")

    low, high = PLAUSIBLE_MGDL
    factor = TO_MGDL[unit]
    value = get("value")
    kind_of_value = type(value)
    if kind_of_value is int:
        try:
            value = float(value)
        except OverflowError:
            raise _refuse_number(value, "value") from None
    elif kind_of_value is not float or not math.isfinite(value):
        if value is None and ("lo" in flags or "hi" in flags):
            value = (low if "lo" in flags else high) / factor  # a meter's LO / HI without a number: its bound
        elif isinstance(value, _NUMBER) and kind_of_value is not bool and _finite(value):
            value = float(value)  # a subclass of int or float
        else:
            raise _refuse_number(value, "value")
    # Exact, not rounded: a threshold stated in the reading's unit must compare as the guideline means it
    # (telemon.units.exact_mgdl; the column is double precision).
    value_mgdl = value if factor == 1.0 else exact_mgdl(value, unit)
    if flags and "lo" in flags:
        if not 0 < value_mgdl <= 70:
            raise Rejection(f"value: {value:g} {unit} flagged lo must be above 0 and at most 70 mg/dL")
    elif flags and "hi" in flags:
        if not 180 <= value_mgdl <= 1000:
            raise Rejection(f"value: {value:g} {unit} flagged hi must be between 180 and 1000 mg/dL")
    elif not low <= value_mgdl <= high:
        raise Rejection(
            f"value: {value:g} {unit} is outside the plausible range {low / factor:g}–{high / factor:g} {unit}"
            " (flag it lo or hi if the meter said so)"
        )

    device_time = parse_instant(get("measured_at"), sync.zone, "measured_at")
    try:
        measured_at = device_time + sync.offset if sync.offset_s else device_time
    except OverflowError:
        raise Rejection(
            f"measured_at: {device_time.isoformat()} is out of range after clock correction"
            f" ({sync.offset_s:+d} s, from device_time)"
        ) from None
    if measured_at > sync.latest:
        raise Rejection(f"measured_at: {measured_at.isoformat()} is in the future (after clock correction)")
    if measured_at < sync.earliest:
        raise Rejection(
            f"measured_at: {measured_at.date().isoformat()} is before this pregnancy began"
            f" ({sync.device.pregnancy_start.isoformat()})"
        )

    kind = get("kind")
    if kind is None:
        kind = sync.default_kind
    elif kind not in KINDS:
        raise _refuse_choice("kind", kind, KINDS)
    context = get("context")
    if context is not None and context not in CONTEXTS:
        raise _refuse_choice("context", context, CONTEXTS)
    meal = get("meal")
    if meal is not None and meal not in MEALS:
        raise _refuse_choice("meal", meal, MEALS)
    inferred = context is None
    if inferred:
        context, inferred_meal = infer_context(sync.local_minute(measured_at), kind)
        meal = meal or inferred_meal
    minutes = get("minutes_after_meal")
    if minutes is not None and (type(minutes) is not int or not 0 <= minutes <= 600):
        raise Rejection("minutes_after_meal: expected a whole number of minutes between 0 and 600")
    external_id = get("id")
    if external_id is not None:
        if type(external_id) is not str:
            if type(external_id) is not int:
                raise Rejection("id: expected a string of at most 128 characters")
            if external_id.bit_length() > 425:  # beyond 128 digits
                raise Rejection("id: expected a string of at most 128 characters")
            external_id = str(external_id)
        if len(external_id) > 128:
            raise Rejection("id: expected a string of at most 128 characters")
        if "\x00" in external_id or not external_id.isascii():
            fault = text_fault(external_id)
            if fault:
                raise Rejection(f"id: {fault}")
    note = get("note")
    if note is not None:
        if type(note) is not str:
            raise Rejection("note: expected a string")
        note = note[:1000] or None
        if note and ("\x00" in note or not note.isascii()):
            fault = text_fault(note)
            if fault:
                raise Rejection(f"note: {fault}")

    device = sync.device
    return Row(
        device.patient_id, device.device_id, kind, device_time, value, unit_text, measured_at, value_mgdl,
        sync.offset_s, context, inferred, meal, minutes, flags, sync.source, external_id, note,
    )  # fmt: skip


def prepare(payload: Any, device: DeviceContext, *, now: dt.datetime, source: str, max_readings: int) -> Prepared:
    """One decoded sync of ``device``: rows to store and rejections (``prepare_submission``)."""
    return prepare_submission(Submission(device, source, payload), now=now, max_readings=max_readings)


def prepare_submission(submission: Submission, *, now: dt.datetime, max_readings: int) -> Prepared:
    """One message of one device: rows to store and rejections. A message of the wrong shape is one
    message-level rejection (index None); a bad item never fails the good items beside it. A translated
    submission's refusals are told in the sender's terms (``Submission``)."""
    payload, device = submission.payload, submission.device
    prepared = Prepared(device, submission.source)
    if not isinstance(payload, dict) or not isinstance(payload.get("readings"), list):
        prepared.rejected.append(
            RejectedItem(None, 'expected an object {"readings": [...], "device_time": optional}', raw_text(payload))
        )
        return prepared
    items = payload["readings"]
    if len(items) > max_readings:
        prepared.rejected.append(
            RejectedItem(None, f"too many readings: {len(items)} in one message, at most {max_readings}", "")
        )
        return prepared
    try:
        offset = clock_offset(payload.get("device_time"), device.zone, now)
    except Rejection as exc:
        prepared.rejected.append(RejectedItem(None, str(exc), raw_text(payload.get("device_time"))))
        return prepared
    except Exception as exc:  # noqa: BLE001 - whatever the input makes fail is bad input, never a crash
        prepared.rejected.append(
            RejectedItem(None, _unreadable("device_time", exc), raw_text(payload.get("device_time")))
        )
        return prepared
    sync = Sync.of(device, offset, now, submission.source)
    rows, positions, rejected = prepared.rows, prepared.positions, prepared.rejected
    if submission.sent is None and submission.indices is None and submission.origins is None:
        for index, item in enumerate(items):  # the device transports: the hot path
            try:
                rows.append(prepare_item(item, sync))
                positions.append(index)
            except Rejection as exc:
                if is_measurement(item):
                    _measure(item, sync, prepared, index, None)
                else:
                    rejected.append(RejectedItem(index, str(exc), raw_text(item)))
            except Exception as exc:  # noqa: BLE001 - a check that missed a case still refuses the item alone
                if is_measurement(item):
                    _measure(item, sync, prepared, index, None)
                else:
                    rejected.append(RejectedItem(index, _unreadable("reading", exc), raw_text(item)))
    else:
        for position, item in enumerate(items):
            try:
                rows.append(prepare_item(item, sync))
                positions.append(position)
                continue
            except Rejection as exc:
                reason = str(exc)
            except Exception as exc:  # noqa: BLE001 - as above
                reason = _unreadable("reading", exc)
            if is_measurement(item):
                _measure(item, sync, prepared, position, submission)
            else:
                rejected.append(_told_to_sender(submission, position, reason, item))
    place_sync(rows, sync.zone)
    return prepared


def _measure(item: Any, sync: Sync, prepared: Prepared, position: int, submission: Submission | None) -> None:
    """An item of another kind than glucose (``ingest.measurements``): stored beside the readings, or refused.

    Every item is first read as a glucose reading, which refuses any other kind; only then is it read as its
    own kind. So glucose readings, the stream (a CGM sends one every five minutes), pay nothing for the other
    kinds, which come a few times a day and pay one refused parse each."""
    try:
        prepared.measurements.append(prepare_measurement(item, sync))
        prepared.measured_positions.append(position)
        return
    except Rejection as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - a check that missed a case still refuses the item alone
        reason = _unreadable("measurement", exc)
    if submission is None:
        prepared.rejected.append(RejectedItem(position, reason, raw_text(item)))
    else:
        prepared.rejected.append(_told_to_sender(submission, position, reason, item))


def _told_to_sender(submission: Submission, position: int, reason: str, item: Any) -> RejectedItem:
    """The refusal of a translated submission's item at ``position``, with the sender's index, element names and
    document."""
    if submission.origins is not None:
        field, colon, rest = reason.partition(": ")
        origin = submission.origins[position].get(field) if colon else None
        if origin is not None:
            reason = f"{origin}: {rest}"
    index = submission.indices[position] if submission.indices is not None else position
    raw = raw_text(submission.sent[position] if submission.sent is not None else item)
    return RejectedItem(index, reason, raw)


def _unreadable(what: str, exc: Exception) -> str:
    """The reason for input that failed in a way no check foresaw (too deep, too large, not encodable): the
    sender learns which kind of failure, the item is refused like any other bad item."""
    return f"{what}: cannot be read ({type(exc).__name__}: {storable(str(exc))[:120]})"


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
