"""The wire format's parse → validate → normalise, without a database: the fast paths agree with the plain
definitions (time zone conversion, ISO 8601 forms) and bad items get their specific reason."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.readings import EPOCH, MICROSECOND, DeviceContext, Sync, infer_context, parse_instant, prepare

PARIS = ZoneInfo("Europe/Paris")
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def device(kind: str = "meter", zone: str = "Europe/Paris") -> DeviceContext:
    return DeviceContext("dev-1", kind, uuid.uuid4(), zone, dt.date(2026, 1, 1))


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]),
    start=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 11, 1)),
    steps=st.lists(st.integers(min_value=-3 * 86400, max_value=3 * 86400), min_size=1, max_size=40),
)
def test_local_minute_agrees_with_the_zone_conversion(zone: str, start: dt.datetime, steps: list[int]) -> None:
    """Around daylight-saving changes too: the offset a sync reuses is the zone's own at every instant."""
    sync = Sync.of(device(zone=zone), dt.timedelta(0), NOW, "test")
    base = start.replace(tzinfo=dt.UTC)
    for step in steps:
        instant = base + dt.timedelta(seconds=step)
        local = instant.astimezone(ZoneInfo(zone))
        assert sync.local_minute(instant) == local.hour * 60 + local.minute, instant


def test_a_sync_across_the_autumn_change_infers_each_reading_in_its_own_offset() -> None:
    # 2026-10-25 03:00 CEST → 02:00 CET in Paris: 05:30 local is 03:30 UTC before, 04:30 UTC after the change
    readings = [
        {"measured_at": "2026-10-24T03:45:00Z", "value": 95, "unit": "mg/dL"},  # 05:45 CEST: fasting
        {"measured_at": "2026-10-25T03:45:00Z", "value": 95, "unit": "mg/dL"},  # 04:45 CET: night
        {"measured_at": "2026-10-26T04:15:00Z", "value": 95, "unit": "mg/dL"},  # 05:15 CET: fasting
    ]
    prepared = prepare({"readings": readings}, device(), now=NOW, source="test", max_readings=10)
    assert [r.context for r in prepared.rows] == ["fasting", "night", "fasting"]
    assert all(r.context_inferred for r in prepared.rows)


def test_infer_context_by_local_minute() -> None:
    assert infer_context(4 * 60 + 59, "smbg") == ("night", None)
    assert infer_context(7 * 60, "smbg") == ("fasting", None)
    assert infer_context(7 * 60, "cgm") == ("unspecified", None)
    assert infer_context(14 * 60, "smbg") == ("after_meal", "lunch")
    assert infer_context(23 * 60 + 30, "smbg") == ("bedtime", None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T08:30:00Z", dt.datetime(2026, 11, 20, 8, 30, tzinfo=dt.UTC)),
        ("2026-11-20T08:30:00.123456+01:00", dt.datetime(2026, 11, 20, 7, 30, 0, 123456, tzinfo=dt.UTC)),
        (" 2026-11-20T08:30:00z ", dt.datetime(2026, 11, 20, 8, 30, tzinfo=dt.UTC)),
        ("2026-11-20T08:30:00", dt.datetime(2026, 11, 20, 7, 30, tzinfo=dt.UTC)),  # local time in Paris (CET)
        ("2026-07-20 08:30", dt.datetime(2026, 7, 20, 6, 30, tzinfo=dt.UTC)),  # CEST
    ],
)
def test_parse_instant_forms(text: str, expected: dt.datetime) -> None:
    assert parse_instant(text, PARIS, "measured_at") == expected


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"measured_at": "", "value": 90, "unit": "mg/dL"}, "measured_at: expected an ISO 8601 date-time string"),
        ({"measured_at": 1700000000, "value": 90, "unit": "mg/dL"}, "measured_at: expected an ISO 8601"),
        ({"measured_at": "yesterday", "value": 90, "unit": "mg/dL"}, "measured_at: 'yesterday' is not an ISO 8601"),
        ({"measured_at": "2026-11-20T08:30:00Z", "value": True, "unit": "mg/dL"}, "expected a number, got bool"),
        ({"measured_at": "2026-11-20T08:30:00Z", "value": float("nan"), "unit": "mg/dL"}, "nan is not a finite"),
        ({"measured_at": "2026-11-20T08:30:00Z", "value": 90, "unit": ["mg/dL"]}, "unit: required"),
        ({"measured_at": "2026-11-20T08:30:00Z", "value": 90, "unit": "mg/dL", "kind": 3}, "kind: '3' is not one"),
        ({"measured_at": "2026-11-20T08:30:00Z", "value": 90, "unit": "mg/dL", "context": []}, "context: '[]' is"),
        ({"measured_at": "2026-11-20T08:30:00Z", "value": 90, "unit": "mg/dL", "id": True}, "id: expected a string"),
        ({"measured_at": "2026-11-20T08:30:00Z", "value": 90, "unit": "mg/dL", "id": "x" * 129}, "id: expected"),
        ({"measured_at": "2026-11-20T08:30:00Z", "value": 90, "unit": "mg/dL", "note": 5}, "note: expected a string"),
        ({"measured_at": "9999-12-31T23:59:59Z", "value": 90, "unit": "mg/dL"}, "is in the future"),
        ({"measured_at": "2025-06-01T08:00:00Z", "value": 90, "unit": "mg/dL"}, "before this pregnancy began"),
    ],
)
def test_bad_items_get_their_reason(item: dict[str, object], reason: str) -> None:
    prepared = prepare({"readings": [item]}, device(), now=NOW, source="test", max_readings=10)
    assert not prepared.rows
    assert reason in prepared.rejected[0].reason


def test_normalised_row_and_its_copy_record() -> None:
    item = {"measured_at": "2026-11-20T08:30:00.5Z", "value": 5.5, "unit": "mmol/L", "flags": ["manual"], "id": 7}
    sent_at = "2026-11-22T14:00:00Z"  # the meter's clock is 2 h ahead of the server's
    prepared = prepare({"device_time": sent_at, "readings": [item]}, device(), now=NOW, source="t", max_readings=10)
    (row,) = prepared.rows
    assert row.device_time == dt.datetime(2026, 11, 20, 8, 30, 0, 500000, tzinfo=dt.UTC)
    assert row.measured_at == row.device_time - dt.timedelta(hours=2)
    assert row.clock_offset_s == -7200
    assert row.value_mgdl == round(5.5 * 18.01559, 3)
    assert row.external_id == "7"
    record = row.record()
    assert record[3] == (row.device_time - EPOCH) // MICROSECOND
    assert record[12] == "{manual}"
