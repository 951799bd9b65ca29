"""The wire format's parse → validate → normalise, without a database: the fast paths agree with the plain
definitions (time zone conversion, ISO 8601 forms) and bad items get their specific reason."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.readings import (
    EPOCH,
    MICROSECOND,
    RAW_LIMIT,
    DeviceContext,
    RejectedItem,
    Rejection,
    Submission,
    Sync,
    infer_context,
    parse_instant,
    prepare,
    prepare_submission,
    raw_text,
)

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
        ({"measured_at": "2026-11-20T08:30:00Z", "value": 90, "unit": "mg/dL", "kind": 3}, "kind: 3 is not one"),
        ({"measured_at": "2026-11-20T08:30:00Z", "value": 90, "unit": "mg/dL", "context": []}, "context: [] is"),
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
    assert row.value_mgdl == 99.085745  # 5.5 × 18.01559 exactly (not rounded: thresholds compare exactly)
    assert row.external_id == "7"
    record = row.record()
    assert record[3] == (row.device_time - EPOCH) // MICROSECOND
    assert record[12] == "{manual}"


# --- input PostgreSQL or asyncpg cannot store: refused item by item, and what is kept of it is storable ---------

GOOD = {"measured_at": "2026-11-20T08:30:00Z", "value": 90, "unit": "mg/dL"}


def nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


def storable_in_postgres(text: str) -> bool:
    """Text PostgreSQL takes: UTF-8 encodable (no lone surrogate) and without NUL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({**GOOD, "note": "a\x00b"}, "note: contains a NUL character"),
        ({**GOOD, "id": "\x00"}, "id: contains a NUL character"),
        ({**GOOD, "note": "é\ud800"}, "note: is not valid Unicode (a lone UTF-16 surrogate)"),
        ({**GOOD, "id": "\udfff"}, "id: is not valid Unicode (a lone UTF-16 surrogate)"),
        ({**GOOD, "value": int("9" * 400)}, "value: an integer of 400 digits is out of range"),
        ({**GOOD, "value": -(10**5000)}, "value: an integer of over 4,000 digits is out of range"),
        ({**GOOD, "id": 10**200}, "id: expected a string of at most 128 characters"),
        ({**GOOD, "kind": nested(5000)}, "kind: an array of 1 items is not one of smbg, cgm"),
        ("\ud800", "a reading must be an object, got str"),
        (nested(5000), "a reading must be an object, got list"),
    ],
)
def test_unstorable_items_are_refused_and_kept_as_storable_text(item: object, reason: str) -> None:
    prepared = prepare({"readings": [GOOD, item]}, device(), now=NOW, source="test", max_readings=10)
    assert len(prepared.rows) == 1
    [refused] = prepared.rejected
    assert (refused.index, refused.reason) == (1, reason)
    assert storable_in_postgres(refused.raw)
    assert len(refused.raw) <= RAW_LIMIT + 6 * 5  # a few escapes beyond the limit at most


@pytest.mark.parametrize(
    ("device_time", "measured_at"),
    [("0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z"), ("9999-12-31T00:00:00Z", "0001-01-02T00:00:00Z")],
)
def test_a_clock_offset_beyond_the_calendar_refuses_the_item(device_time: str, measured_at: str) -> None:
    sync = {"device_time": device_time, "readings": [{**GOOD, "measured_at": measured_at}]}
    prepared = prepare(sync, device(), now=NOW, source="test", max_readings=10)
    [refused] = prepared.rejected
    assert refused.index == 0
    assert "out of range after clock correction" in refused.reason


@pytest.mark.parametrize(
    "payload", ["\ud800", "\x00", nested(5000), {"readings": "\ud800"}, {"readings": [], "device_time": nested(5000)}]
)
def test_a_message_of_the_wrong_shape_is_one_storable_refusal(payload: object) -> None:
    prepared = prepare(payload, device(), now=NOW, source="test", max_readings=10)
    [refused] = prepared.rejected
    assert refused.index is None
    assert storable_in_postgres(refused.raw) and storable_in_postgres(refused.reason)


def test_raw_text_is_storable_whatever_it_is_given() -> None:
    assert raw_text("a\x00\ud800b") == "a\\u0000\\ud800b"
    assert raw_text(b"\xff\x00ok") == "\ufffd\\u0000ok"
    assert raw_text({"\ud800": "\x00"}) == '{"\\ud800": "\\u0000"}'
    assert raw_text(nested(5000)).startswith("<an array of 1 items that cannot be written back: RecursionError")
    assert raw_text([10**5000]).startswith("<an array of 1 items that cannot be written back: ValueError")
    assert raw_text("x" * 10_000) == "x" * RAW_LIMIT


def test_a_rejection_is_storable_however_it_is_built() -> None:
    """Transports build rejections too (and change their reason afterwards): their texts are made storable."""
    refused = RejectedItem(None, "reason \x00", "raw \ud800")
    refused.reason = "said of \udc00"
    assert (refused.reason, refused.raw) == ("said of \\udc00", "raw \\ud800")


JSONISH = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([10**400, -(2**64), float("inf"), float("nan")]),
        st.floats(),
        st.text(),
        st.sampled_from(["\x00", "\ud800", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["measured_at", "value", "unit", "kind", "context", "meal", "minutes_after_meal", "flags", "id", "note"]


@settings(max_examples=300, deadline=None)
@given(
    device_time=st.one_of(st.none(), JSONISH, st.sampled_from(["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])),
    items=st.lists(
        st.one_of(JSONISH, st.dictionaries(st.sampled_from(FIELDS), JSONISH).map(lambda f: {**GOOD, **f})), max_size=6
    ),
)
def test_prepare_never_raises_and_keeps_only_storable_text(device_time: object, items: list[object]) -> None:
    """What the MQTT consumer relies on: whatever a message holds, ``prepare`` answers rows and refusals, each
    item one or the other, and nothing it keeps or stores is text PostgreSQL refuses."""
    prepared = prepare({"device_time": device_time, "readings": items}, device(), now=NOW, source="t", max_readings=10)
    if any(r.index is None for r in prepared.rejected):
        assert len(prepared.rejected) == 1 and not prepared.rows
    else:
        assert len(prepared.rows) + len(prepared.rejected) == len(items)
    for refused in prepared.rejected:
        assert storable_in_postgres(refused.reason) and storable_in_postgres(refused.raw)
    for row in prepared.rows:
        assert all(storable_in_postgres(t) for t in (row.unit_raw, row.external_id or "", row.note or ""))
        assert EPOCH < row.measured_at < NOW + dt.timedelta(minutes=10)


def test_a_translated_submission_is_refused_in_the_senders_terms() -> None:
    """A transport that translates documents (Nightscout, FHIR) hands over one item per document, or the
    document's refusal: every refusal carries the document's index, the document as raw text, and the element the
    refused field came from; the rows remember the item they came from."""
    good = {"measured_at": "2026-11-20T07:00:00Z", "value": 101, "unit": "mg/dL"}
    documents = [{"doc": 0}, {"doc": 1}, {"doc": 2}, {"doc": 3}]
    items = [good, Rejection("type: 'cal' is not kept"), {**good, "value": 9000}, {**good, "value": 110}]
    origins = [{}, {}, {"value": "Observation.valueQuantity.value"}, {}]
    submission = Submission.translated(
        device(), "test", items, sent=documents, indices=[10, 11, 12, 13], origins=origins
    )
    prepared = prepare_submission(submission, now=NOW, max_readings=10)
    assert prepared.positions == [0, 3]
    assert [(r.index, r.raw) for r in prepared.rejected] == [(11, '{"doc": 1}'), (12, '{"doc": 2}')]
    assert prepared.rejected[0].reason == "type: 'cal' is not kept"
    assert prepared.rejected[1].reason.startswith("Observation.valueQuantity.value: 9000 mg/dL is outside")
