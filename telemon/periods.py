"""``?from=`` / ``?to=`` of every read of a patient's data over a period (readings, CSV, PDF report, FHIR search,
CGM summary): a date (YYYY-MM-DD, the patient's local midnight) or an ISO 8601 timestamp with its offset. One
parser, so that a bound means the same instant on every route."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from fastapi import HTTPException

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
ACCEPTED = "a date (YYYY-MM-DD, the patient's local midnight) or a timestamp with its offset (2026-11-01T06:00Z)"

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*")


def parse_bound(text: str | None, name: str) -> dt.datetime | dt.date | None:
    """``from`` or ``to`` as written: a date (YYYY-MM-DD) or an ISO 8601 timestamp with its offset; anything else
    (a naive timestamp, a Unix time, a week date …) is a 422 that says what is accepted."""
    if text is None or text == "":
        return None
    shown = text[:40]
    if _DATE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise HTTPException(status_code=422, detail=f"{name}: {shown} is not a date of the calendar") from None
    if not _TIMESTAMP.fullmatch(text):
        raise HTTPException(status_code=422, detail=f"{name}: {shown!r} is not {ACCEPTED}")
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise HTTPException(status_code=422, detail=f"{name}: {shown!r} is not {ACCEPTED}") from None
    if value.tzinfo is None:
        raise HTTPException(status_code=422, detail=f"{name}: give a time zone offset (for example Z)")
    return value


def bound_instant(value: dt.datetime | dt.date | None, name: str, time_zone: str) -> dt.datetime | None:
    """The UTC instant of a bound: a date is the first instant of that day in the patient's zone (midnight, or the
    end of the gap when a daylight-saving change skips midnight: the earlier offset applies, as fold=0 says)."""
    if value is None:
        return None
    try:
        if not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time(), ZoneInfo(time_zone))
        return value.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is in year 0 in UTC
        raise HTTPException(status_code=422, detail=f"{name}: {value.isoformat()} is out of range") from None
