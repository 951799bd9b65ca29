"""The one meal-context inference (telemon.meal_context): readings sent without a context are placed among the
readings of their local day, the same way by ingest, the alert engine and the dashboard's logbook; an urgent
alert never rests on an inferred context."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from alerts import rules
from alerts.cohort import CONTEXT
from clinician_ui import glycaemia as G
from ingest.readings import infer_context
from telemon import meal_context
from tests.support.cohorts import DAY, NOW, Patient, R, build

YESTERDAY = NOW // DAY - 1


def at(hour: int, minute: int) -> int:
    """Epoch seconds of yesterday's local (UTC) time ``hour:minute``."""
    return YESTERDAY * DAY + hour * 3600 + minute * 60


def inferred(hour: int, minute: int, value: float) -> R:
    """A meter reading sent without a context, as ingest stores it: its clock guess, marked inferred."""
    context, meal = infer_context(hour * 60 + minute, "smbg")
    return R(t=at(hour, minute), value=value, context=context, meal=meal, flags=["context_inferred"])


def fired(patients: list[Patient]) -> dict[str, list[tuple[str, tuple[int, ...]]]]:
    """Per rule, the (severity, reading ids) of its candidates."""
    out: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
    for cands in rules.evaluate(build(patients)):
        for k in range(len(cands)):
            out.setdefault(cands.rule, []).append((cands.severity[k], tuple(cands.evidence[k]["reading_ids"])))
    return out


def test_a_single_reading_is_placed_by_its_clock_as_the_first_of_its_window() -> None:
    assert infer_context(6 * 60 + 25, "smbg") == ("fasting", None)
    assert infer_context(9 * 60 + 29, "smbg") == ("fasting", None)
    assert infer_context(9 * 60 + 30, "smbg") == ("after_meal", "breakfast")
    assert infer_context(12 * 60 + 30, "smbg") == ("before_meal", "lunch")
    assert infer_context(14 * 60, "smbg") == ("after_meal", "lunch")
    assert infer_context(18 * 60, "smbg") == ("before_meal", "dinner")
    assert infer_context(21 * 60, "smbg") == ("after_meal", "dinner")
    assert infer_context(23 * 60 + 30, "smbg") == ("bedtime", None)
    assert infer_context(3 * 60, "smbg") == ("night", None)
    assert infer_context(7 * 60, "cgm") == ("unspecified", None)


def test_a_later_reading_of_a_window_is_after_the_meal() -> None:
    rows = [
        {"kind": "smbg", "context": "fasting", "meal": None, "context_inferred": True},
        {"kind": "smbg", "context": "fasting", "meal": None, "context_inferred": True},
        {"kind": "smbg", "context": "before_meal", "meal": "lunch", "context_inferred": True},
        {"kind": "smbg", "context": "before_meal", "meal": "lunch", "context_inferred": True},
        {"kind": "smbg", "context": "before_meal", "meal": "dinner", "context_inferred": False},
        {"kind": "smbg", "context": "before_meal", "meal": "dinner", "context_inferred": True},
    ]
    minutes = [385, 547, 735, 770, 1100, 1160]
    placed = meal_context.place_rows(rows, [(1, m) for m in minutes])
    assert placed == [
        ("fasting", None),
        ("after_meal", "breakfast"),  # 09:07, after the fasting reading of 06:25
        ("before_meal", "lunch"),
        ("after_meal", "lunch"),
        ("before_meal", "dinner"),  # sent with its context: kept
        ("after_meal", "dinner"),
    ]


def test_fasting_84_then_159_without_context_raises_no_severe_fasting_alert() -> None:
    """The demo's false urgent alert: 159 mg/dL at 09:07, two and a half hours after that morning's fasting 84,
    is after breakfast."""
    got = fired([Patient(readings=[inferred(6, 25, 84), inferred(9, 7, 159)])])
    assert "fasting_severe" not in got
    assert "fasting_above_target" not in got
    assert [s for s, _ in got["postprandial_above_target"]] == ["info"]  # 159 ≥ 120, the FR 2 h target


def test_an_inferred_fasting_reading_is_never_urgent() -> None:
    """Not even the first reading of the morning: a patient who skipped her waking test sends her after-breakfast
    one first (the demo's 141 mg/dL at 09:28)."""
    first = fired([Patient(readings=[inferred(7, 0, 140)])])
    assert [s for s, _ in first["fasting_severe"]] == ["warning"]  # the first reading of the day, inferred
    after_night = fired([Patient(readings=[inferred(3, 0, 100), inferred(7, 0, 140)])])
    assert [s for s, _ in after_night["fasting_severe"]] == ["warning"]  # a reading at 03:00 came first
    explicit = fired([Patient(readings=[inferred(3, 0, 100), R(t=at(7, 0), value=140, context="fasting")])])
    assert [s for s, _ in explicit["fasting_severe"]] == ["urgent"]  # said fasting by the patient: no doubt
    c = build([Patient(readings=[inferred(3, 0, 100), inferred(7, 0, 140)])])
    severe = next(r for r in rules.evaluate(c) if r.rule == "fasting_severe")
    assert severe.evidence[0]["context_inferred"] is True
    assert severe.evidence[0]["downgraded"] == "context_inferred"


def _logbook_rows(readings: list[R]) -> list[dict[str, Any]]:
    return [
        {
            "id": k + 1,
            "kind": "smbg",
            "measured_at": dt.datetime.fromtimestamp(r.t, dt.UTC),
            "value_mgdl": r.value,
            "context": r.context,
            "context_inferred": "context_inferred" in r.flags,
            "meal": r.meal,
            "minutes_after_meal": None,
            "flags": [f for f in r.flags if f != "context_inferred"],
        }
        for k, r in enumerate(readings)
    ]


def test_the_logbook_places_readings_as_the_engine_does() -> None:
    readings = [
        inferred(3, 10, 80),
        inferred(6, 25, 84),
        inferred(9, 7, 159),
        inferred(10, 40, 110),
        inferred(12, 20, 90),
        inferred(14, 0, 125),
        inferred(15, 10, 118),
        inferred(19, 0, 95),
        inferred(21, 15, 130),
        inferred(23, 30, 100),
    ]
    for k, r in enumerate(readings):
        r.reading_id = k + 1
    c = build([Patient(readings=readings)])
    engine_context = rules._derived(c).context  # the engine's placement
    day = dt.date(1970, 1, 1) + dt.timedelta(days=YESTERDAY)
    book = G.logbook(_logbook_rows(readings), G.targets_for("FR", "diet", None), dt.UTC, [day])
    slot_of = {e.reading_id: slot for slot, cell in book[0].cells.items() for e in cell.entries}
    engine_fasting = {int(i) for i in c.reading_id[engine_context == CONTEXT["fasting"]]}
    engine_after = {int(i) for i in c.reading_id[engine_context == CONTEXT["after_meal"]]}
    assert {i for i, s in slot_of.items() if s == "fasting"} == engine_fasting == {2}
    assert {i for i, s in slot_of.items() if s in ("breakfast", "lunch", "dinner")} == engine_after
    assert [slot_of[i] for i in (3, 4, 6, 7, 9)] == ["breakfast", "breakfast", "lunch", "lunch", "dinner"]
    assert np.count_nonzero(engine_context == CONTEXT["before_meal"]) == 2  # 12:20 and 19:00
