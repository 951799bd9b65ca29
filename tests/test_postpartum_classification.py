"""The postpartum glucose test's classification, per profile, at, just below and just above every cut-off, in every
unit. The expected verdict is computed here in exact decimal arithmetic from each guideline's own statements
(restated below, independently of ``telemon.postpartum``): a value entered in a unit the guideline states its cut-off
in is compared with that statement ("11.1 mmol/L" is the ADA's 11.1 mmol/L, although 11.1 mmol/L is 199.97 mg/dL);
in another unit, with the guideline's first statement, converted exactly."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest

from telemon import postpartum as P
from telemon.patients import FieldError
from telemon.units import GL, MGDL, MMOLL

D = Decimal
FACTOR = {MGDL: D(1), MMOLL: D("18.01559"), GL: D(100)}
# just around a cut-off: the step a laboratory reports in each unit, and the smallest step a result may carry
STEPS = {MGDL: (D(1), D("0.001")), MMOLL: (D("0.1"), D("0.001")), GL: (D("0.01"), D("0.001"))}
# a normal fasting value in each unit, for OGTTs whose 2-hour value is under test
NORMAL_FASTING = {MGDL: D(80), MMOLL: D("4.4"), GL: D("0.80")}
DELIVERY, TODAY = dt.date(2026, 9, 1), dt.date(2026, 10, 20)


@dataclass(frozen=True)
class GlucoseCut:
    profile: str
    measure: str  # fasting | two_hour
    category: str  # what a value at or above it is (or worse)
    stated: dict[str, Decimal]  # as the guideline states it, its own unit first


GLUCOSE_CUTS = [
    # ADA Standards of Care, section 2: FPG 100-125 mg/dL (5.6-6.9 mmol/L) IFG; ≥ 126 mg/dL (7.0 mmol/L) diabetes;
    # 2-h PG 140-199 mg/dL (7.8-11.0 mmol/L) IGT; ≥ 200 mg/dL (11.1 mmol/L) diabetes
    GlucoseCut("ADA", "fasting", "impaired_fasting_glucose", {MGDL: D(100), MMOLL: D("5.6")}),
    GlucoseCut("ADA", "fasting", "diabetes", {MGDL: D(126), MMOLL: D("7.0")}),
    GlucoseCut("ADA", "two_hour", "impaired_glucose_tolerance", {MGDL: D(140), MMOLL: D("7.8")}),
    GlucoseCut("ADA", "two_hour", "diabetes", {MGDL: D(200), MMOLL: D("11.1")}),
    # NICE NG3 §1.6: fasting 6.0-6.9 mmol/L high risk, ≥ 7.0 likely type 2 diabetes (mmol/L only); the 2-hour value
    # with WHO 2006: 7.8 mmol/L (140 mg/dL), 11.1 mmol/L (200 mg/dL)
    GlucoseCut("NICE", "fasting", "impaired_fasting_glucose", {MMOLL: D("6.0")}),
    GlucoseCut("NICE", "fasting", "diabetes", {MMOLL: D("7.0")}),
    GlucoseCut("NICE", "two_hour", "impaired_glucose_tolerance", {MMOLL: D("7.8"), MGDL: D(140)}),
    GlucoseCut("NICE", "two_hour", "diabetes", {MMOLL: D("11.1"), MGDL: D(200)}),
    # HAS / CNGOF-SFD 2010 with WHO 2006: IFG 1.10-1.25 g/L (110-125 mg/dL; 6.1-6.9 mmol/L), diabetes ≥ 1.26 g/L
    # (7.0 mmol/L); IGT 2 h 1.40-1.99 g/L (7.8-11.0 mmol/L), diabetes ≥ 2.00 g/L (11.1 mmol/L)
    GlucoseCut("FR", "fasting", "impaired_fasting_glucose", {MGDL: D(110), GL: D("1.10"), MMOLL: D("6.1")}),
    GlucoseCut("FR", "fasting", "diabetes", {MGDL: D(126), GL: D("1.26"), MMOLL: D("7.0")}),
    GlucoseCut("FR", "two_hour", "impaired_glucose_tolerance", {MGDL: D(140), GL: D("1.40"), MMOLL: D("7.8")}),
    GlucoseCut("FR", "two_hour", "diabetes", {MGDL: D(200), GL: D("2.00"), MMOLL: D("11.1")}),
]


def reference_mgdl(cut: GlucoseCut, unit: str) -> Decimal:
    """The cut-off a value entered in ``unit`` meets, as an exact decimal in mg/dL."""
    if unit in cut.stated:
        return cut.stated[unit] * FACTOR[unit]
    first = next(iter(cut.stated))
    return cut.stated[first] * FACTOR[first]


def around(reference_mgdl: Decimal, unit: str) -> list[Decimal]:
    """The cut-off restated in ``unit`` (at most 3 decimals): the values a laboratory would report just below and
    just above it, the value at it (when it is one), and values a thousandth away."""
    exact = reference_mgdl / FACTOR[unit]
    step, smallest = STEPS[unit]
    values = {exact.quantize(step, rounding="ROUND_FLOOR"), exact.quantize(step, rounding="ROUND_CEILING")}
    below = exact.quantize(smallest, rounding="ROUND_CEILING") - smallest  # the largest 3-decimal value below ...
    values |= {exact.quantize(step, rounding="ROUND_FLOOR") - step, below, below + smallest, below + 2 * smallest}
    return sorted(v.normalize() for v in values)


def at_or_worse(findings: tuple[str, ...], category: str) -> bool:
    return category in findings or "diabetes" in findings


GLUCOSE_CASES = [
    (cut, unit, value)
    for cut in GLUCOSE_CUTS
    for unit in (MGDL, MMOLL, GL)
    for value in around(reference_mgdl(cut, unit), unit)
]


@pytest.mark.parametrize(
    ("cut", "unit", "value"),
    GLUCOSE_CASES,
    ids=[f"{c.profile} {c.measure} {c.category} @ {v} {u}" for c, u, v in GLUCOSE_CASES],
)
def test_every_glucose_cut_at_below_and_above_in_every_unit(cut: GlucoseCut, unit: str, value: Decimal) -> None:
    expected = value * FACTOR[unit] >= reference_mgdl(cut, unit)
    if cut.measure == "fasting":
        entry = P.Entry("fasting_glucose", unit, fasting=value)
    else:
        entry = P.Entry("ogtt_75g", unit, fasting=NORMAL_FASTING[unit], two_hour=value)
    checked = P.check(entry, delivery_date=DELIVERY, today=TODAY)
    found = P.classify(checked, cut.profile)
    if cut.category == "diabetes":
        assert ("diabetes" in found.findings) is expected, (found, value, unit)
    else:
        assert at_or_worse(found.findings, cut.category) is expected, (found, value, unit)


@dataclass(frozen=True)
class Hba1cCut:
    profile: str
    category: str
    stated: dict[str, Decimal]  # % and mmol/mol: every guideline here states both


HBA1C_CUTS = [
    # ADA Standards of Care, section 2: A1C 5.7-6.4 % (39-47 mmol/mol) prediabetes, ≥ 6.5 % (48 mmol/mol) diabetes
    Hba1cCut("ADA", "elevated_hba1c", {P.PERCENT: D("5.7"), P.MMOL_MOL: D(39)}),
    Hba1cCut("ADA", "diabetes", {P.PERCENT: D("6.5"), P.MMOL_MOL: D(48)}),
    # NICE NG3 §1.6: 39-47 mmol/mol (5.7-6.4 %) high risk, 48 mmol/mol (6.5 %) or above type 2 diabetes
    Hba1cCut("NICE", "elevated_hba1c", {P.PERCENT: D("5.7"), P.MMOL_MOL: D(39)}),
    Hba1cCut("NICE", "diabetes", {P.PERCENT: D("6.5"), P.MMOL_MOL: D(48)}),
    # WHO 2011: 6.5 % (48 mmol/mol), no intermediate category
    Hba1cCut("FR", "diabetes", {P.PERCENT: D("6.5"), P.MMOL_MOL: D(48)}),
]
HBA1C_CASES = [
    (cut, unit, cut.stated[unit] + delta)
    for cut in HBA1C_CUTS
    for unit in (P.PERCENT, P.MMOL_MOL)
    for delta in (D(-1) if unit == P.MMOL_MOL else D("-0.1"), D("-0.001"), D(0), D("0.001"),
                  D(1) if unit == P.MMOL_MOL else D("0.1"))
]  # fmt: skip


@pytest.mark.parametrize(
    ("cut", "unit", "value"), HBA1C_CASES, ids=[f"{c.profile} {c.category} @ {v} {u}" for c, u, v in HBA1C_CASES]
)
def test_every_hba1c_cut_at_below_and_above_in_both_units(cut: Hba1cCut, unit: str, value: Decimal) -> None:
    expected = value >= cut.stated[unit]
    field = "hba1c_percent" if unit == P.PERCENT else "hba1c_mmol_mol"
    checked = P.check(P.Entry("hba1c", **{field: value}), delivery_date=DELIVERY, today=TODAY)
    found = P.classify(checked, cut.profile)
    if cut.category == "diabetes":
        assert ("diabetes" in found.findings) is expected
    else:
        assert at_or_worse(found.findings, cut.category) is expected


def test_fr_has_no_intermediate_hba1c_and_asks_for_an_ogtt() -> None:
    found = P.classify(P.Entry("hba1c", hba1c_percent=D("6.4"), tested_on=TODAY), "FR")
    assert found.classification == "normal"
    assert found.follow_up == ("ogtt_advised", "retest_1_3_years")


def test_the_design_example_is_impaired_glucose_tolerance_in_every_profile() -> None:
    """DESIGN §5: fasting 5.2, 2 hours 8.9 mmol/L."""
    entry = P.check(P.Entry("ogtt_75g", "mmol/L", D("5.2"), D("8.9")), delivery_date=DELIVERY, today=TODAY)
    assert entry.tested_on == TODAY
    for profile in ("FR", "NICE", "ADA"):
        found = P.classify(entry, profile)
        assert found.classification == "impaired_glucose_tolerance"
        assert found.findings == ("impaired_glucose_tolerance",)
        assert found.follow_up == ("prevention_programme", "retest_annual")
        assert found.fasting_mgdl == 93.681068 and found.two_hour_mgdl == 160.338751


@pytest.mark.parametrize(
    ("profile", "test", "values", "classification", "follow_up"),
    [
        ("ADA", "ogtt_75g", {"fasting": "90", "two_hour": "120"}, "normal", ("retest_1_3_years",)),
        ("ADA", "fasting_glucose", {"fasting": "90"}, "normal", ("ogtt_advised", "retest_1_3_years")),
        ("NICE", "fasting_glucose", {"fasting": "99"}, "normal", ("lifestyle_advice", "hba1c_annual")),
        ("FR", "ogtt_75g", {"fasting": "112", "two_hour": "150"}, "impaired_glucose_tolerance",
         ("prevention_programme", "retest_annual")),
        ("FR", "ogtt_75g", {"fasting": "112", "two_hour": "120"}, "impaired_fasting_glucose",
         ("prevention_programme", "retest_annual")),
        ("ADA", "ogtt_75g", {"fasting": "130", "two_hour": "150"}, "diabetes",
         ("confirm_diagnosis", "refer_diabetes_care")),
        ("NICE", "fasting_glucose", {"fasting": "126.2"}, "diabetes", ("confirm_diagnosis", "refer_diabetes_care")),
    ],
)  # fmt: skip
def test_classification_and_follow_up(
    profile: str, test: str, values: dict[str, str], classification: str, follow_up: tuple[str, ...]
) -> None:
    entry = P.Entry(test, MGDL, **{k: D(v) for k, v in values.items()})
    found = P.classify(P.check(entry, delivery_date=DELIVERY, today=TODAY), profile)
    assert (found.classification, found.follow_up) == (classification, follow_up)


def test_both_impaired_keeps_both_findings() -> None:
    found = P.classify(P.Entry("ogtt_75g", MGDL, D(115), D(160)), "ADA")
    assert found.findings == ("impaired_fasting_glucose", "impaired_glucose_tolerance")
    assert found.classification == "impaired_glucose_tolerance"


def test_a_value_is_judged_by_the_statement_in_its_own_unit() -> None:
    """The cases where the two statements of one guideline disagree: the unit entered decides."""
    ada = P.classify(P.Entry("ogtt_75g", MMOLL, D("5.0"), D("11.1")), "ADA")
    assert ada.classification == "diabetes" and ada.two_hour_mgdl is not None and ada.two_hour_mgdl < 200
    assert P.classify(P.Entry("ogtt_75g", MGDL, D(90), D("199.9")), "ADA").classification != "diabetes"
    # NICE states mmol/L only: 108 mg/dL is 5.995 mmol/L (below 6.0), 108.1 mg/dL is 6.0003
    assert P.classify(P.Entry("fasting_glucose", MGDL, D(108)), "NICE").classification == "normal"
    assert P.classify(P.Entry("fasting_glucose", MGDL, D("108.1")), "NICE").classification == "impaired_fasting_glucose"


def _problems(entry: P.Entry) -> dict[str, FieldError]:
    with pytest.raises(P.TestRefused) as refused:
        P.check(entry, delivery_date=DELIVERY, today=TODAY)
    return {p.field: p for p in refused.value.problems}


@pytest.mark.parametrize(
    ("entry", "field", "code"),
    [
        (P.Entry("ogtt_75g", MGDL, D(9), D(140)), "fasting", "postpartum.range"),
        (P.Entry("ogtt_75g", MGDL, D(90), D(601)), "two_hour", "postpartum.range"),
        (P.Entry("fasting_glucose", MMOLL, D("0.5")), "fasting", "postpartum.range"),
        (P.Entry("fasting_glucose", MMOLL, D("33.4")), "fasting", "postpartum.range"),
        (P.Entry("fasting_glucose", GL, D("6.01")), "fasting", "postpartum.range"),
        (P.Entry("fasting_glucose", MMOLL, D("5.2345")), "fasting", "postpartum.number"),
        (P.Entry("ogtt_75g", MMOLL, D("5.2")), "two_hour", "postpartum.required"),
        (P.Entry("fasting_glucose", MMOLL, D("5.2"), D("8.9")), "two_hour", "postpartum.not_for_test"),
        (P.Entry("fasting_glucose", "mmol", D("5.2")), "unit", "postpartum.unit"),
        (P.Entry("fasting_glucose", None, D("5.2")), "unit", "postpartum.unit"),
        (P.Entry("hba1c"), "hba1c_percent", "postpartum.required"),
        (P.Entry("hba1c", hba1c_percent=D("6.1"), hba1c_mmol_mol=D(43)), "hba1c_mmol_mol", "postpartum.hba1c_both"),
        (P.Entry("hba1c", hba1c_percent=D("21")), "hba1c_percent", "postpartum.range"),
        (P.Entry("hba1c", hba1c_mmol_mol=D("6.1")), "hba1c_mmol_mol", "postpartum.range"),
        (P.Entry("hba1c", MMOLL, D("5.0"), hba1c_percent=D("6.1")), "fasting", "postpartum.not_for_test"),
        (P.Entry("ogtt_75g", MMOLL, D("5.2"), D("8.9"), hba1c_percent=D("6.1")), "hba1c_percent",
         "postpartum.not_for_test"),
        (P.Entry("fasting_glucose", MMOLL, D("5.2"), tested_on=DELIVERY - dt.timedelta(days=1)), "date",
         "postpartum.before_delivery"),
        (P.Entry("fasting_glucose", MMOLL, D("5.2"), tested_on=TODAY + dt.timedelta(days=1)), "date",
         "postpartum.future"),
        (P.Entry("glucose_challenge", MMOLL, D("5.2")), "test", "postpartum.test"),
    ],
)  # fmt: skip
def test_refusals_name_the_field(entry: P.Entry, field: str, code: str) -> None:
    problem = _problems(entry)[field]
    assert problem.code == code
    assert str(problem).startswith(f"{field}: ")


def test_every_problem_is_named_at_once_with_the_range_in_the_unit_entered() -> None:
    entry = P.Entry("ogtt_75g", MMOLL, D("0.3"), None, tested_on=TODAY + dt.timedelta(days=3))
    problems = _problems(entry)
    assert set(problems) == {"fasting", "two_hour", "date"}
    assert problems["fasting"].params == {"low": 0.6, "high": 33.3, "unit": MMOLL}


def test_edges_of_the_plausible_ranges_and_of_the_dates_pass() -> None:
    for entry in (
        P.Entry("ogtt_75g", MGDL, D(10), D(600), tested_on=DELIVERY),
        P.Entry("fasting_glucose", GL, D("6.00"), tested_on=TODAY),
        P.Entry("hba1c", hba1c_percent=D(3)),
        P.Entry("hba1c", hba1c_mmol_mol=D(195)),
    ):
        P.check(entry, delivery_date=DELIVERY, today=TODAY)


def test_every_profile_has_a_follow_up_for_every_classification() -> None:
    for criteria in P.CRITERIA.values():
        assert set(criteria.follow_up) == set(P.CLASSIFICATIONS)
        assert all(code in P.FOLLOW_UPS for codes in criteria.follow_up.values() for code in codes)
