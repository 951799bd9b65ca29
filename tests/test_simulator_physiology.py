"""The simulated cohort: deterministic with its seed, plausible, and holding every feature it promises."""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
from collections import Counter

import pytest

from telemon.units import GL, MGDL, MMOLL, TO_MGDL
from tools.simulator.clients import app_payload, cgm_entries, meter_payload
from tools.simulator.measures import BP_NORMAL_CEILING, KETONE_RAISED, Measure
from tools.simulator.physiology import (
    HYPO_L1,
    HYPO_L2,
    SAFE_FLOOR,
    CohortSpec,
    DeviceTimeline,
    PatientPlan,
    Reading,
    Sync,
    all_syncs,
    excursion,
    make_cohort,
    quantize,
)

CREATED = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)  # spans the change to summer time in Europe and America


def spec(seed: int = 3, patients: int = 12, cgm: int = 2, days: int = 21) -> CohortSpec:
    return CohortSpec(seed, patients, cgm, CREATED, CREATED - dt.timedelta(days=days))


def readings_of(s: CohortSpec) -> dict[str, list[Reading]]:
    """Every distinct reading each patient's device sent over the history."""
    found: dict[str, dict[tuple[str, dt.datetime, float], Reading]] = {}
    for sync in all_syncs([DeviceTimeline(s, p) for p in make_cohort(s)], s.start, s.created):
        for r in sync.readings:
            found.setdefault(sync.patient.external_id, {})[r.key] = r
    return {k: sorted(v.values(), key=lambda r: r.taken_at) for k, v in found.items()}


def by_role(cohort: list[PatientPlan], role: str) -> PatientPlan:
    return next(p for p in cohort if role in p.roles)


def test_the_same_seed_makes_the_same_cohort_and_readings() -> None:
    assert make_cohort(spec(seed=5)) == make_cohort(spec(seed=5))
    assert readings_of(spec(seed=5)) == readings_of(spec(seed=5))
    assert make_cohort(spec(seed=5)) != make_cohort(spec(seed=6))
    assert readings_of(spec(seed=5)) != readings_of(spec(seed=6))


def test_syncs_do_not_depend_on_how_time_is_cut() -> None:
    """A backfill then a live run send exactly what one long backfill sends: a second run repeats nothing."""
    s = spec(seed=9)
    cohort = make_cohort(s)
    whole = all_syncs([DeviceTimeline(s, p) for p in cohort], s.start, s.created)
    timelines = [DeviceTimeline(s, p) for p in cohort]
    cuts = [s.start + dt.timedelta(hours=h) for h in range(0, 21 * 24 + 1, 7)] + [s.created]
    pieces = [sync for a, b in itertools.pairwise(cuts) for sync in all_syncs(timelines, a, b)]

    def keys(syncs: list[Sync]) -> list[tuple[object, ...]]:
        return sorted((x.patient.index, x.at, x.full_memory, tuple(r.key for r in x.readings)) for x in syncs)

    assert keys(pieces) == keys(whole)


def test_small_cohorts_hold_every_feature() -> None:
    s = spec(seed=4, patients=6, cgm=1, days=5)
    cohort = make_cohort(s)
    assert Counter(p.device_kind for p in cohort)["cgm"] == 1
    assert {r for p in cohort for r in p.roles} == {
        "hypos", "stops", "wrong-clock", "delivers", "drifts", "cgm-hypos",
        "ketones", "bp-rising", "bp-urgent", "basal-prandial",
    }  # fmt: skip
    # the measurement roles stack on the others when the cohort is this small
    assert by_role(cohort, "ketones") is by_role(cohort, "hypos") is by_role(cohort, "basal-prandial")
    assert by_role(cohort, "bp-rising") is by_role(cohort, "drifts")
    assert by_role(cohort, "hypos").care.regimen == "basal_prandial"
    assert by_role(cohort, "hypos").treatment == "insulin"
    assert by_role(cohort, "cgm-hypos").device_kind == "cgm"
    stops = by_role(cohort, "stops")
    assert stops.stop_at is not None and s.created - stops.stop_at > dt.timedelta(hours=48)
    clock = by_role(cohort, "wrong-clock")
    assert clock.clock_skew_s and clock.clock_fixed_at is not None and clock.resyncs
    delivers = by_role(cohort, "delivers")
    assert s.start < delivers.delivery_at < s.created
    readings = readings_of(s)
    assert any(r.event == "hypo_l1" or r.event == "hypo_l2" for r in readings[by_role(cohort, "hypos").external_id])
    assert any(r.event for r in readings[by_role(cohort, "cgm-hypos").external_id])
    assert max(r.taken_at for r in readings[stops.external_id]) < stops.stop_at
    assert any(r.event == "typo" for r in readings[delivers.external_id])


@pytest.mark.parametrize("day", range(8))
def test_every_feature_falls_inside_a_five_day_history_whatever_the_date(day: int) -> None:
    """The integration test simulates the five days before today: its hypos, typo and stop must be there."""
    created = CREATED + dt.timedelta(days=day, hours=5 * day)
    s = CohortSpec(11, 8, 2, created, created - dt.timedelta(days=5))
    cohort = make_cohort(s)
    readings = readings_of(s)
    assert any(r.event for r in readings[by_role(cohort, "hypos").external_id])
    assert any(r.event for r in readings[by_role(cohort, "cgm-hypos").external_id])
    assert any(r.event == "typo" for r in readings[by_role(cohort, "delivers").external_id])


def test_values_are_plausible_and_every_low_is_planned() -> None:
    s = spec(seed=21, patients=30, cgm=4)
    cohort = {p.external_id: p for p in make_cohort(s)}
    readings = readings_of(s)
    fasting: list[float] = []
    for external_id, rs in readings.items():
        p = cohort[external_id]
        for r in rs:
            if r.event in ("hypo_l1", "hypo_l2"):
                assert r.value_mgdl < HYPO_L1
                assert (r.value_mgdl < HYPO_L2) == (r.event == "hypo_l2")
                assert p.treatment == "insulin"
                assert r.taken_at.astimezone(p.zone).date() < p.delivery_date
            elif r.event == "typo":
                assert r.value_mgdl > 600 and r.flags == ("manual",)
            elif r.kind == "cgm":
                assert 40 <= r.value_mgdl <= 400
                assert r.value_mgdl >= HYPO_L1 or r.event  # a CGM low only inside a planned dip
            else:
                assert SAFE_FLOOR - 1 <= r.value_mgdl <= 350, r
            if r.context == "fasting" and r.event is None and r.taken_at < p.delivery_at:
                fasting.append(r.value_mgdl)
    assert 84 <= statistics.median(fasting) <= 100  # GDM on follow-up: around 85–90, some drifting up
    cgm = [p for p in cohort.values() if p.device_kind == "cgm"]
    for p in cgm:
        rs = readings[p.external_id]
        steps = Counter(round((b.taken_at - a.taken_at).total_seconds()) for a, b in itertools.pairwise(rs))
        assert steps.most_common(1)[0][0] == 300  # every 5 minutes, with gaps
        assert any(step > 300 for step in steps)
        values = [r.value_mgdl for r in rs]
        assert 85 <= statistics.mean(values) <= 140
        assert statistics.stdev(values) > 10  # meal excursions


def test_post_meal_peaks_depend_on_the_meal_and_come_back_down() -> None:
    assert excursion(0, 55) == 0 and excursion(55, 55) == pytest.approx(1.0)
    assert excursion(120, 55) < excursion(60, 55) < 1.0
    assert excursion(300, 55) < 0.1
    s = spec(seed=8, patients=30, cgm=0)
    cohort = {p.external_id: p for p in make_cohort(s)}
    after: dict[str, list[float]] = {"breakfast": [], "lunch": [], "dinner": []}
    fasting = []
    for external_id, rs in readings_of(s).items():
        if cohort[external_id].post_meal_minutes != 120 or not cohort[external_id].tags_context:
            continue
        for r in rs:
            if r.context == "after_meal" and r.meal and r.event is None:
                after[r.meal].append(r.value_mgdl)
            elif r.context == "fasting" and r.event is None:
                fasting.append(r.value_mgdl)
    assert statistics.mean(after["breakfast"]) > statistics.mean(after["lunch"]) > statistics.mean(fasting)


def test_most_patients_are_in_target_and_a_few_are_not() -> None:
    """A well-controlled GDM population, whatever the date: the ordinary patients' fasting and after-meal tests are
    mostly in target (95 mg/dL fasting, 120 at 2 h, 140 at 1 h) and hardly one reaches the 30 % above target that
    asks for a change of treatment; the few whose fasting drifts up or whose post-meal peaks are high are well above
    target, and they are a minority."""
    ordinary: list[float] = []
    problem: list[float] = []
    patients = 0
    for k, seed in enumerate((3, 8, 21, 2026)):
        created = CREATED + dt.timedelta(days=11 * k, hours=7 * k)
        s = CohortSpec(seed, 40, 0, created, created - dt.timedelta(days=21))
        cohort = {p.external_id: p for p in make_cohort(s)}
        patients += len(cohort)
        for external_id, rs in readings_of(s).items():
            p = cohort[external_id]
            tests = [
                r
                for r in rs
                if r.event is None and r.context in ("fasting", "after_meal") and r.taken_at < p.delivery_at
            ]
            if not tests:
                continue
            above = [
                r.value_mgdl >= (95 if r.context == "fasting" else 120 if r.minutes_after_meal == 120 else 140)
                for r in tests
            ]
            share = sum(above) / len(above)
            (problem if {"fasting drifts up", "high post-meal peaks"} & set(p.features()) else ordinary).append(share)
    assert statistics.mean(ordinary) < 0.12
    assert sum(share >= 0.3 for share in ordinary) <= 0.05 * len(ordinary)
    assert statistics.mean(problem) > 0.3
    assert 1 <= len(problem) <= patients / 4


def test_a_wrong_clock_stamps_readings_until_fixed_then_the_meter_resends_its_memory() -> None:
    s = spec(seed=4, patients=6, cgm=1, days=5)
    p = by_role(make_cohort(s), "wrong-clock")
    assert p.clock_fixed_at is not None
    syncs = DeviceTimeline(s, p).syncs(s.start, s.created)
    skew = dt.timedelta(seconds=p.clock_skew_s)
    for sync in syncs:
        for r in sync.readings:
            assert r.stamp - r.taken_at == (skew if r.taken_at < p.clock_fixed_at else dt.timedelta(0))
        assert sync.clock_skew_s == (p.clock_skew_s if sync.at < p.clock_fixed_at else 0)
    memory = [x for x in syncs if x.full_memory]
    ordinary = {r.key for x in syncs if not x.full_memory and x.at < memory[0].at for r in x.readings}
    assert ordinary and ordinary <= {r.key for x in memory for r in x.readings}
    now = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)
    before = next(x for x in syncs if not x.full_memory and x.at < p.clock_fixed_at)
    payload = meter_payload(before, now)
    local_now = (now + skew).astimezone(p.zone).replace(tzinfo=None)
    assert payload["device_time"] == local_now.isoformat(timespec="seconds")  # the meter's clock, no zone
    assert "+" not in payload["readings"][0]["measured_at"]


def test_units_round_as_devices_show_them() -> None:
    assert quantize(95.4, MGDL) == 95
    assert quantize(95.4, MMOLL) == 5.3
    assert quantize(95.4, GL) == 0.95
    # 3.9 mmol/L is 70.3 mg/dL, not a hypoglycaemia: planned lows are chosen below the threshold once rounded
    assert quantize(69.9, MMOLL) * TO_MGDL[MMOLL] >= HYPO_L1


def test_payloads_follow_the_wire_formats() -> None:
    s = spec(seed=4, patients=6, cgm=1, days=5)
    cohort = make_cohort(s)
    app = next(p for p in cohort if p.device_kind == "app")
    rs = readings_of(s)[app.external_id][:3]
    body = app_payload(rs, app.unit, app.zone)
    assert [dt.datetime.fromisoformat(i["measured_at"]) for i in body["readings"]] == [r.stamp for r in rs]
    assert all(i["unit"] == app.unit and i["kind"] == "smbg" for i in body["readings"])
    cgm = by_role(cohort, "cgm-hypos")
    entries = cgm_entries(readings_of(s)[cgm.external_id][:5])
    assert all(e["type"] == "sgv" and isinstance(e["sgv"], int) for e in entries)
    assert entries[1]["date"] - entries[0]["date"] == 300_000
    assert entries[0]["direction"] == "NONE" and entries[1]["direction"] != "NONE"


def measures_of(s: CohortSpec) -> dict[str, list[Measure]]:
    """Every distinct measurement (dose, ketone, weight, blood pressure) each patient's device sent."""
    found: dict[str, dict[object, Measure]] = {}
    for sync in all_syncs([DeviceTimeline(s, p) for p in make_cohort(s)], s.start, s.created):
        for m in sync.measures:
            found.setdefault(sync.patient.external_id, {})[m.key] = m
    return {k: sorted(v.values(), key=lambda m: m.taken_at) for k, v in found.items()}


def test_doses_ketones_weights_and_pressures_come_at_the_chosen_rates() -> None:
    """Over four 40-patient cohorts of 21 days: every treatment is there; insulin patients log most of their doses,
    at the units of the plan in force (a unit more or less now and then before a meal), and a few forget many; a
    weight a week; ketones now and then, normal but the one raised; home blood pressures normal but the rising
    patient's and the single 165/112."""
    logged = expected = 0
    forgetful = regimens = 0
    seen_regimens: Counter[str] = Counter()
    for k, seed in enumerate((3, 8, 21, 2026)):
        created = CREATED + dt.timedelta(days=11 * k, hours=7 * k)
        s = CohortSpec(seed, 40, 6, created, created - dt.timedelta(days=21))
        cohort = {p.external_id: p for p in make_cohort(s)}
        measures = measures_of(s)
        seen_regimens.update(p.care.regimen for p in cohort.values())
        raised = urgent = 0
        for external_id, ms in measures.items():
            p = cohort[external_id]
            care = p.care
            assert all(s.start <= m.taken_at < min(p.delivery_at, s.created) for m in ms)
            doses = [m for m in ms if m.kind == "insulin"]
            if not care.insulin:
                assert not doses
            else:
                regimens += 1
                days = len({m.taken_at.astimezone(p.zone).date() for m in ms} | {d.taken_at.date() for d in doses})
                per_day = 1 + len(care.prandial)
                logged += len(doses)
                expected += per_day * days
                forgetful += care.dose_log < 0.8
                for m in doses:
                    values = dict(m.values)
                    if values["insulin"] == "basal":
                        assert values["units"] == care.basal_units[-1] and values["product"] == care.basal_product
                        assert values["slot"] == "bedtime"
                    else:
                        assert abs(values["units"] - dict(care.prandial)[values["slot"]]) <= 1
            weights = [m for m in ms if m.kind == "weight"]
            weeks = {m.taken_at.isocalendar()[:2] for m in weights}
            assert len(weeks) == len(weights) <= 4  # at most one a week
            for m in ms:
                values = dict(m.values)
                if m.kind == "ketone" and "value" in values and values["value"] >= 0.6:
                    assert values["value"] == KETONE_RAISED and m.event == "ketones_raised" and "ketones" in p.roles
                    raised += 1
                if m.kind == "blood_pressure":
                    high = values["systolic"] >= 140 or values["diastolic"] >= 90
                    if values["systolic"] >= 160 or values["diastolic"] >= 110:
                        assert (values["systolic"], values["diastolic"]) == (165, 112) and "bp-urgent" in p.roles
                        urgent += 1
                    elif "bp-rising" not in p.roles and "bp-urgent" not in p.roles:
                        ceiling = BP_NORMAL_CEILING
                        assert values["systolic"] <= ceiling[0] and values["diastolic"] <= ceiling[1]
                    assert high == (m.event is not None)
        assert raised == 1 and urgent == 1
        rising = next(p for p in cohort.values() if "bp-rising" in p.roles)
        last = [dict(m.values) for m in measures[rising.external_id] if m.kind == "blood_pressure"][-2:]
        assert all(v["systolic"] >= 140 or v["diastolic"] >= 90 for v in last)
        assert sum(1 for ms in measures.values() if any(m.kind == "weight" for m in ms)) >= 30
        assert any(m.kind == "ketone" and "urine" in dict(m.values) for ms in measures.values() for m in ms)
    assert set(seen_regimens) == {"diet", "metformin", "basal", "basal_prandial"}
    assert 0.8 <= logged / expected <= 0.97, logged / expected
    assert 1 <= forgetful <= regimens / 3


def test_measurement_payloads_follow_the_device_contract() -> None:
    s = spec(seed=4, patients=6, cgm=1, days=5)
    cohort = make_cohort(s)
    syncs = all_syncs([DeviceTimeline(s, p) for p in cohort], s.start, s.created)
    meter = next(x for x in syncs if x.patient.device_kind == "meter" and x.measures and not x.full_memory)
    items = meter_payload(meter, s.created)["readings"][len(meter.readings) :]
    assert [i["kind"] for i in items] == [m.kind for m in meter.measures]
    assert all("+" not in i["measured_at"] and i["id"] for i in items)  # the meter's clock, no zone
    app = next(x for x in syncs if x.patient.device_kind != "meter" and x.measures)
    body = app_payload(list(app.readings), app.patient.unit, app.patient.zone, app.measures)
    measured = body["readings"][len(app.readings) :]
    assert [dt.datetime.fromisoformat(i["measured_at"]) for i in measured] == [m.stamp for m in app.measures]
    kinds = {i["kind"]: i for x in syncs for i in app_payload([], "mg/dL", x.patient.zone, x.measures)["readings"]}
    assert set(kinds) >= {"insulin", "weight", "blood_pressure"}
    assert set(kinds["insulin"]) >= {"units", "insulin", "product", "slot"}
    assert kinds["blood_pressure"]["unit"] == "mmHg" and "pulse" in kinds["blood_pressure"]
