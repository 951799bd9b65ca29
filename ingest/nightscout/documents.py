"""The forms of Nightscout documents: MongoDB ids, ISO 8601 and epoch-millisecond times, numbers that may come as
text, and what JSON, jsonb and response headers can carry of them."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ingest.readings import Rejection, brief

OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
EARLIEST = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 12, 30, tzinfo=dt.UTC)
MICROSECOND = dt.timedelta(microseconds=1)


def parse_iso(text: str) -> dt.datetime | None:
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


def zone_of(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return dt.UTC


def numeric(value: Any) -> Any:
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


def from_epoch_ms(value: Any, where: str = "date") -> dt.datetime:
    number = numeric(value)
    if type(number) is int:
        raise Rejection(f"{where}: {brief(value)} is out of range")
    if not isinstance(number, float) or not math.isfinite(number):
        raise Rejection(f"{where}: expected epoch milliseconds, got {brief(value)}")
    try:
        return EPOCH + dt.timedelta(milliseconds=number)
    except OverflowError:
        raise Rejection(f"{where}: {value} is out of range") from None


# --- answers ----------------------------------------------------------------------------------------------------


def jsonb(value: Any) -> Any:
    """A document as jsonb can hold it: integers beyond 64 bits as text (no JSON writer here takes them)."""
    if type(value) is int and not -(2**63) <= value < 2**63:
        return str(value)[:64]
    if type(value) is dict:
        return {k: jsonb(v) for k, v in value.items()}
    if type(value) is list:
        return [jsonb(v) for v in value]
    return value


def header_text(text: str) -> str:
    """Text a response header can carry: printable ASCII, bounded."""
    return text.encode("ascii", "backslashreplace").decode("ascii").replace("\r", " ").replace("\n", " ")[:1000]


def epoch_ms(moment: dt.datetime) -> int:
    return (moment - EPOCH) // dt.timedelta(milliseconds=1)


def js_iso(moment: dt.datetime) -> str:
    """As JavaScript's ``toISOString``: UTC, milliseconds, ``Z``."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
