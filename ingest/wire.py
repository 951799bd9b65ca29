"""What every item kind of the device wire format shares: the sending device (``DeviceContext``), what one sync
shares (``Sync``: the clock correction, the acceptable instants), refusals (``Rejection``) and the reading of
instants and texts. Glucose readings (``ingest.readings``) and the other measurements (``ingest.measurements``)
both build on it.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

MAX_FUTURE = dt.timedelta(minutes=10)


class Rejection(ValueError):
    """One item cannot be stored; ``str()`` is the reason given back to the sender."""


@dataclass(frozen=True)
class DeviceContext:
    """What validation needs to know of the sending device and its patient."""

    device_id: str
    device_kind: str  # meter | app | cgm
    patient_id: uuid.UUID
    time_zone: str
    pregnancy_start: dt.date
    active: bool = True

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


def text_fault(text: str) -> str | None:
    """Why ``text`` cannot be stored as it is (a NUL character, a lone surrogate), or None when it can."""
    if "\x00" in text:
        return "contains a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode (a lone UTF-16 surrogate)"
    return None


def brief(value: Any, length: int = 40) -> str:
    """A short, printable, storable mention of a received value in a reason: the start of a string (quoted and
    escaped), a scalar as written, else only its type (a nested value could be huge or too deep to print)."""
    if type(value) is str:
        return repr(value[:length])
    if value is None or type(value) in (bool, float) or (type(value) is int and value.bit_length() < 128):
        return repr(value)
    if type(value) is int:
        return f"an integer of {len(str(value)) if value.bit_length() < 14_000 else 'over 4,000'} digits"
    if type(value) is list:
        return f"an array of {len(value)} items" if value else "[]"
    if type(value) is dict:
        return f"an object of {len(value)} members" if value else "{}"
    return f"a {type(value).__name__}"


def parse_instant(value: Any, zone: ZoneInfo, where: str) -> dt.datetime:
    """An ISO 8601 instant; a time without offset is the patient's local wall-clock time."""
    if type(value) is not str:
        raise Rejection(f"{where}: expected an ISO 8601 date-time string")
    try:
        instant = dt.datetime.fromisoformat(value)  # the usual form first: no stripping, "Z" read as UTC
    except ValueError:
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        try:
            instant = dt.datetime.fromisoformat(text)
        except ValueError:
            if not text:
                raise Rejection(f"{where}: expected an ISO 8601 date-time string") from None
            raise Rejection(f"{where}: {value[:40]!r} is not an ISO 8601 date-time") from None
    if instant.tzinfo is dt.UTC:
        return instant
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=zone)
    try:
        return instant.astimezone(dt.UTC)
    except OverflowError:
        raise Rejection(f"{where}: {value[:40]!r} is out of range") from None


def item_instant(value: Any, sync: Sync) -> tuple[dt.datetime, dt.datetime]:
    """An item's ``measured_at`` as the device said it and as corrected by the sync's clock offset, refused when
    it is in the future or before this pregnancy began. (Glucose readings check the same inline, for speed.)"""
    device_time = parse_instant(value, sync.zone, "measured_at")
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
    return device_time, measured_at


_HALF_DAY = dt.timedelta(hours=12)
# Per time zone, an interval of UTC instants over which its UTC offset is known to be constant, and that offset
# (see Sync.local_minute). Shared by every sync: a single-reading message would otherwise find it anew each time.
_STEADY: dict[ZoneInfo, tuple[dt.datetime, dt.datetime, dt.timedelta]] = {}


@functools.lru_cache(maxsize=4096)
def _window_start(time_zone: str, pregnancy_start: dt.date) -> dt.datetime:
    """The first instant of the pregnancy window (local midnight of its first day), in UTC."""
    return dt.datetime.combine(pregnancy_start, dt.time(), ZoneInfo(time_zone)).astimezone(dt.UTC)


@dataclass(slots=True)
class Sync:
    """What every item of one sync shares, computed once per message."""

    device: DeviceContext
    zone: ZoneInfo
    offset: dt.timedelta
    latest: dt.datetime  # the latest acceptable measured_at (now + MAX_FUTURE)
    earliest: dt.datetime  # the first instant of the pregnancy window, in the patient's zone
    default_kind: str
    source: str
    offset_s: int  # ``offset`` in whole seconds (the column clock_offset_s), kept for the hot path

    @classmethod
    def of(cls, device: DeviceContext, offset: dt.timedelta, now: dt.datetime, source: str) -> Sync:
        earliest = _window_start(device.time_zone, device.pregnancy_start)
        kind = "cgm" if device.device_kind == "cgm" else "smbg"
        return cls(device, device.zone, offset, now + MAX_FUTURE, earliest, kind, source, int(offset.total_seconds()))

    def local_minute(self, instant: dt.datetime) -> int:
        """Minutes after local midnight of a UTC ``instant`` in the patient's zone. Converting through the zone
        costs a microsecond; readings come hours or minutes apart, so the offset found for one reading is reused
        for the others within 12 h of it when the offset 12 h before and after is the same (time zones change
        offset at most a few times a year, never twice within a day)."""
        zone = self.zone
        known = _STEADY.get(zone)
        if known is not None and known[0] <= instant < known[1]:
            local = instant + known[2]
        else:
            local = instant.astimezone(zone)
            offset = local.utcoffset()
            try:
                before, after = instant - _HALF_DAY, instant + _HALF_DAY
                steady = before.astimezone(zone).utcoffset() == offset == after.astimezone(zone).utcoffset()
            except OverflowError:
                steady = False
            if steady and offset is not None:
                _STEADY[zone] = (before, after, offset)
        return local.hour * 60 + local.minute
