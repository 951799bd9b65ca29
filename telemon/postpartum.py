"""The postpartum glucose test: recorded once the delivery is, classified with the thresholds of the patient's
guideline profile, with the follow-up it asks for.

After gestational diabetes, a glucose test after the birth says whether glucose tolerance is back to normal (ADA:
75 g OGTT at 4-12 weeks; NICE: fasting plasma glucose at 6-13 weeks, HbA1c later; FR: 75 g OGTT at the postnatal
visit). Each guideline states its cut-offs in its own units, often in two ("126 mg/dL (7.0 mmol/L)"), and the two
statements are not the same number (7.0 mmol/L is 126.1 mg/dL, 11.1 mmol/L is 199.97 mg/dL). A value is compared
with the statement made in the unit it was entered in, exactly (DESIGN §2): a laboratory's 11.1 mmol/L is the
guideline's 11.1 mmol/L. A unit the guideline does not use (NICE states no mg/dL) is compared with the guideline's
first statement, both converted with :func:`telemon.units.exact_mgdl`, which keeps their order exactly.

The hospital API and the dashboard record through :func:`record`, with the same checks and the same audit record. A
test is never changed (the database refuses it); a correction or a later test is a new one, and the newest is
current."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from telemon import audit, channels, units
from telemon import postpartum_queries as queries
from telemon.db import Conn
from telemon.patients import POSTPARTUM_RULES, FieldError
from telemon.units import GL, MGDL, MMOLL

TESTS = ("ogtt_75g", "fasting_glucose", "hba1c")
PERCENT, MMOL_MOL = "%", "mmol/mol"  # HbA1c: NGSP/DCCT percent, IFCC mmol/mol
# From the least to the most severe: a test's classification is its most severe finding.
CLASSIFICATIONS = ("normal", "elevated_hba1c", "impaired_fasting_glucose", "impaired_glucose_tolerance", "diabetes")
FOLLOW_UPS = (
    "lifestyle_advice",
    "retest_1_3_years",
    "retest_annual",
    "hba1c_annual",
    "ogtt_advised",
    "prevention_programme",
    "confirm_diagnosis",
    "refer_diabetes_care",
)
# A laboratory result carries at most 3 decimals (mmol/L and % are reported with 1, g/L with 2): more is not a
# result but a computed number, and the exact comparison with a threshold relies on values as people write them.
MAX_DECIMALS = 3
# Plausible HbA1c: analysers report about 4-18 %; below 3 % or above 20 % is a typing error (or the other unit).
# The mmol/mol bounds are the same through the IFCC-NGSP master equation (NGSP % = 0.09148 × IFCC + 2.152).
HBA1C_RANGE = {PERCENT: (Decimal(3), Decimal(20)), MMOL_MOL: (Decimal(9), Decimal(195))}
LIST_LIMIT = 100
# The reason the system gives when a recorded test resolves the reminder that it was due.
REMINDER_RESOLVED_REASON = "postpartum_test"


@dataclass(frozen=True)
class Cut:
    """A guideline's cut-off as it states it, in each unit it states it in, its own unit first."""

    stated: tuple[tuple[str, str], ...]

    def glucose_mgdl(self, unit: str) -> float:
        """The cut-off a glucose value entered in ``unit`` is compared with, in mg/dL: the statement in ``unit``
        when there is one, else the first (both through exact_mgdl, which keeps a comparison in one unit exact)."""
        found = dict(self.stated)
        if unit in found:
            return units.exact_mgdl(float(found[unit]), unit)
        first_unit, value = self.stated[0]
        return units.exact_mgdl(float(value), first_unit)

    def hba1c(self, unit: str) -> Decimal:
        """HbA1c cut-offs are stated in both units by every guideline here: compared as decimals, exactly."""
        return Decimal(dict(self.stated)[unit])


@dataclass(frozen=True)
class Criteria:
    profile: str
    source: str
    fasting_impaired: Cut  # at or above: impaired fasting glucose
    fasting_diabetes: Cut  # at or above: diabetes
    two_hour_impaired: Cut  # at or above: impaired glucose tolerance (2 h after 75 g of glucose)
    two_hour_diabetes: Cut
    hba1c_elevated: Cut | None  # at or above: an HbA1c of high risk (prediabetes); None: the source sets none
    hba1c_diabetes: Cut
    preferred_test: str  # the guideline's postpartum test
    follow_up: Mapping[str, tuple[str, ...]]  # classification → follow-up codes


ADA = Criteria(
    profile="ADA",
    source="ADA Standards of Care, section 2 (Diagnosis and Classification of Diabetes)",
    # ADA Standards of Care, section 2, criteria defining prediabetes: "FPG 100 mg/dL (5.6 mmol/L) to 125 mg/dL
    # (6.9 mmol/L) (IFG)".
    fasting_impaired=Cut(((MGDL, "100"), (MMOLL, "5.6"))),
    # ADA Standards of Care, section 2, criteria for the diagnosis of diabetes: "FPG ≥126 mg/dL (7.0 mmol/L)".
    fasting_diabetes=Cut(((MGDL, "126"), (MMOLL, "7.0"))),
    # ADA section 2, prediabetes: "2-h PG during 75-g OGTT 140 mg/dL (7.8 mmol/L) to 199 mg/dL (11.0 mmol/L) (IGT)".
    two_hour_impaired=Cut(((MGDL, "140"), (MMOLL, "7.8"))),
    # ADA section 2, diabetes: "2-h PG ≥200 mg/dL (11.1 mmol/L) during OGTT".
    two_hour_diabetes=Cut(((MGDL, "200"), (MMOLL, "11.1"))),
    # ADA section 2, prediabetes: "A1C 5.7-6.4% (39-47 mmol/mol)".
    hba1c_elevated=Cut(((PERCENT, "5.7"), (MMOL_MOL, "39"))),
    # ADA section 2, diabetes: "A1C ≥6.5% (48 mmol/mol)".
    hba1c_diabetes=Cut(((PERCENT, "6.5"), (MMOL_MOL, "48"))),
    # ADA Standards of Care, section 15 (Management of Diabetes in Pregnancy): 75 g OGTT at 4-12 weeks postpartum,
    # "using nonpregnancy criteria"; A1C is not recommended so soon (it may still reflect the pregnancy).
    preferred_test="ogtt_75g",
    follow_up={
        # ADA section 15: lifelong screening for type 2 diabetes or prediabetes every 1-3 years.
        "normal": ("retest_1_3_years",),
        # ADA section 15: prediabetes after GDM: intensive lifestyle interventions and/or metformin; section 3
        # (Prevention or Delay of Diabetes): a lifestyle programme and at least annual monitoring.
        "elevated_hba1c": ("prevention_programme", "retest_annual"),
        "impaired_fasting_glucose": ("prevention_programme", "retest_annual"),
        "impaired_glucose_tolerance": ("prevention_programme", "retest_annual"),
        # ADA section 2: without unequivocal hyperglycaemia, a diagnosis needs two abnormal results.
        "diabetes": ("confirm_diagnosis", "refer_diabetes_care"),
    },
)

NICE = Criteria(
    profile="NICE",
    source="NICE NG3 (2015, updated 2020) §1.6; WHO 2006 for the 2-hour value",
    # NICE NG3 §1.6 (postnatal follow-up): "fasting plasma glucose level between 6.0 and 6.9 mmol/litre": high risk
    # of type 2 diabetes (impaired fasting glucose); below 6.0 mmol/litre: low probability of diabetes.
    fasting_impaired=Cut(((MMOLL, "6.0"),)),
    # NICE NG3 §1.6: "fasting plasma glucose level of 7.0 mmol/litre or above": likely type 2 diabetes.
    fasting_diabetes=Cut(((MMOLL, "7.0"),)),
    # NICE NG3 sets no 2-hour threshold after the birth (it advises against a routine OGTT); its diagnostic
    # criteria are the WHO's (WHO 2006, Definition and diagnosis of diabetes mellitus and intermediate
    # hyperglycaemia): IGT from 7.8 mmol/L ...
    two_hour_impaired=Cut(((MMOLL, "7.8"), (MGDL, "140"))),
    # ... diabetes from 11.1 mmol/L (200 mg/dL).
    two_hour_diabetes=Cut(((MMOLL, "11.1"), (MGDL, "200"))),
    # NICE NG3 §1.6: "HbA1c level between 39 and 47 mmol/mol (5.7% and 6.4%)": high risk of type 2 diabetes ...
    hba1c_elevated=Cut(((MMOL_MOL, "39"), (PERCENT, "5.7"))),
    # ... "48 mmol/mol (6.5%) or above": type 2 diabetes.
    hba1c_diabetes=Cut(((MMOL_MOL, "48"), (PERCENT, "6.5"))),
    # NICE NG3 §1.6: fasting plasma glucose 6-13 weeks after the birth; after 13 weeks, HbA1c if a fasting test is
    # not possible. Both are NICE's own tests.
    preferred_test="fasting_glucose",
    follow_up={
        # NICE NG3 §1.6, low probability: continue the lifestyle advice, an annual HbA1c test.
        "normal": ("lifestyle_advice", "hba1c_annual"),
        # NICE NG3 §1.6, high risk: advice, guidance and interventions of NICE PH38 (preventing type 2 diabetes),
        # which asks for a blood test at least once a year.
        "elevated_hba1c": ("prevention_programme", "retest_annual"),
        "impaired_fasting_glucose": ("prevention_programme", "retest_annual"),
        "impaired_glucose_tolerance": ("prevention_programme", "retest_annual"),
        # NICE NG3 §1.6: a fasting value ≥ 7.0 mmol/L: offer a diagnostic test to confirm; an HbA1c ≥ 48: refer.
        "diabetes": ("confirm_diagnosis", "refer_diabetes_care"),
    },
)

FR = Criteria(
    profile="FR",
    source="HAS / CNGOF-SFD 2010 and WHO 2006 criteria",
    # CNGOF/SFD 2010 (postpartum screening) with the HAS and WHO 2006 criteria: impaired fasting glucose ("hyperglycémie
    # modérée à jeun") 1.10-1.25 g/L (110-125 mg/dL; WHO: 6.1-6.9 mmol/L).
    fasting_impaired=Cut(((MGDL, "110"), (GL, "1.10"), (MMOLL, "6.1"))),
    # Diabetes: fasting ≥ 1.26 g/L (126 mg/dL; WHO: 7.0 mmol/L).
    fasting_diabetes=Cut(((MGDL, "126"), (GL, "1.26"), (MMOLL, "7.0"))),
    # WHO 2006: impaired glucose tolerance, 2 h after 75 g, 1.40-1.99 g/L (140-199 mg/dL; 7.8-11.0 mmol/L).
    two_hour_impaired=Cut(((MGDL, "140"), (GL, "1.40"), (MMOLL, "7.8"))),
    # WHO 2006: diabetes, 2 h ≥ 2.00 g/L (200 mg/dL; 11.1 mmol/L).
    two_hour_diabetes=Cut(((MGDL, "200"), (GL, "2.00"), (MMOLL, "11.1"))),
    # WHO 2011 (Use of glycated haemoglobin in the diagnosis of diabetes) sets no intermediate HbA1c category ...
    hba1c_elevated=None,
    # ... and diabetes from 6.5 % (48 mmol/mol); below, glucose tests are still needed.
    hba1c_diabetes=Cut(((PERCENT, "6.5"), (MMOL_MOL, "48"))),
    # CNGOF/SFD 2010: a 75 g OGTT at the postnatal visit.
    preferred_test="ogtt_75g",
    follow_up={
        # CNGOF/SFD 2010: screening for type 2 diabetes every 1 to 3 years, for at least 25 years.
        "normal": ("retest_1_3_years",),
        "elevated_hba1c": ("prevention_programme", "retest_annual"),  # (no FR category: never classified so)
        # HAS: intermediate hyperglycaemia calls for lifestyle measures and a yearly glucose test.
        "impaired_fasting_glucose": ("prevention_programme", "retest_annual"),
        "impaired_glucose_tolerance": ("prevention_programme", "retest_annual"),
        # WHO 2006 / HAS: a diagnosis is confirmed by a second test, and diabetes is cared for by a diabetologist.
        "diabetes": ("confirm_diagnosis", "refer_diabetes_care"),
    },
)

CRITERIA: dict[str, Criteria] = {c.profile: c for c in (FR, NICE, ADA)}


@dataclass(frozen=True)
class Entry:
    """A test as a clinician or a hospital sent it: its values as written (decimals), before any check."""

    test: str
    unit: str | None = None  # the glucose values' unit
    fasting: Decimal | None = None
    two_hour: Decimal | None = None
    hba1c_percent: Decimal | None = None
    hba1c_mmol_mol: Decimal | None = None
    tested_on: dt.date | None = None  # None: today where the patient lives


@dataclass(frozen=True)
class Classification:
    classification: str
    findings: tuple[str, ...]  # each abnormal value's category, least severe first
    follow_up: tuple[str, ...]
    source: str
    fasting_mgdl: float | None
    two_hour_mgdl: float | None


@dataclass(frozen=True)
class StoredTest:
    id: int
    patient_id: uuid.UUID
    tested_on: dt.date
    test: str
    unit: str | None
    fasting: Decimal | None
    two_hour: Decimal | None
    fasting_mgdl: float | None
    two_hour_mgdl: float | None
    hba1c_percent: Decimal | None
    hba1c_mmol_mol: Decimal | None
    classification: str
    findings: tuple[str, ...]
    follow_up: tuple[str, ...]
    profile: str
    source: str
    recorded_by: str
    recorded_at: dt.datetime

    def as_json(self) -> dict[str, Any]:
        def num(value: Decimal | None) -> float | None:
            return None if value is None else float(value)

        return {
            "id": self.id,
            "patient_id": str(self.patient_id),
            "date": self.tested_on.isoformat(),
            "test": self.test,
            "unit": self.unit,
            "fasting": num(self.fasting),
            "two_hour": num(self.two_hour),
            "hba1c_percent": num(self.hba1c_percent),
            "hba1c_mmol_mol": num(self.hba1c_mmol_mol),
            "fasting_mgdl": self.fasting_mgdl,
            "two_hour_mgdl": self.two_hour_mgdl,
            "classification": self.classification,
            "findings": list(self.findings),
            "follow_up": list(self.follow_up),
            "profile": self.profile,
            "source": self.source,
            "recorded_by": self.recorded_by,
            "recorded_at": self.recorded_at.isoformat(),
        }


class TestRefused(Exception):
    """Values refused: every field's problem (``telemon.patients.FieldError``: field, code, params, English)."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, problems: list[FieldError]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


class RecordRefused(Exception):
    """The patient cannot take a test: 'missing', 'archived' (read-only) or 'not_delivered' (no delivery yet)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# What each test is made of: the values it needs; any other value is refused (a fasting value sent with an HbA1c
# test is a mistake of the sender, not something to ignore).
GLUCOSE_FIELDS = {"ogtt_75g": ("fasting", "two_hour"), "fasting_glucose": ("fasting",), "hba1c": ()}


def _problem(field: str, code: str, message: str, **params: object) -> FieldError:
    return FieldError(field, f"postpartum.{code}", f"{field}: {message}", **params)


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _check_glucose(name: str, value: Decimal, unit: str) -> FieldError | None:
    if not value.is_finite() or _decimals(value) > MAX_DECIMALS:
        return _problem(name, "number", f"{value} is not a result with at most {MAX_DECIMALS} decimals")
    low, high = units.PLAUSIBLE_MGDL
    mgdl = units.exact_mgdl(float(value), unit)
    if not low <= mgdl <= high:
        shown = [round(units.from_mgdl(v, unit), units.DIGITS[unit]) for v in (low, high)]
        return _problem(
            name, "range", f"{value} {unit} is outside {shown[0]}-{shown[1]} {unit}", low=shown[0], high=shown[1],
            unit=unit,
        )  # fmt: skip
    return None


def check(entry: Entry, *, delivery_date: dt.date, today: dt.date) -> Entry:
    """The entry as it will be stored (its date filled in), or ``TestRefused`` with every field's problem: the test
    is one of ``TESTS`` and has its values and only those, a glucose unit is mg/dL, mmol/L or g/L, each value is
    plausible (glucose within ``telemon.units.PLAUSIBLE_MGDL``, HbA1c within ``HBA1C_RANGE``), and the date lies
    between the delivery and today where the patient lives."""
    problems: list[FieldError] = []
    if entry.test not in TESTS:
        raise TestRefused([_problem("test", "test", f"{entry.test!r} is not one of {', '.join(TESTS)}")])
    wanted = GLUCOSE_FIELDS[entry.test]
    glucose = {"fasting": entry.fasting, "two_hour": entry.two_hour}
    for name, value in glucose.items():
        if name in wanted and value is None:
            problems.append(_problem(name, "required", f"a {entry.test} test needs it"))
        elif name not in wanted and value is not None:
            problems.append(_problem(name, "not_for_test", f"not part of a {entry.test} test", test=entry.test))
    unit = entry.unit
    if wanted and unit not in units.UNITS:
        problems.append(_problem("unit", "unit", f"{unit!r} is not one of {', '.join(units.UNITS)}"))
    elif wanted and unit is not None:
        for name in wanted:
            value = glucose[name]
            found = None if value is None else _check_glucose(name, value, unit)
            if found is not None:
                problems.append(found)
    hba1c = {PERCENT: entry.hba1c_percent, MMOL_MOL: entry.hba1c_mmol_mol}
    hba1c_field = {PERCENT: "hba1c_percent", MMOL_MOL: "hba1c_mmol_mol"}
    given = [u for u, v in hba1c.items() if v is not None]
    if entry.test == "hba1c":
        if not given:
            problems.append(
                _problem("hba1c_percent", "required", "an hba1c test needs hba1c_percent or hba1c_mmol_mol")
            )
        elif len(given) > 1:
            problems.append(_problem("hba1c_mmol_mol", "hba1c_both", "give the HbA1c in one unit only"))
        else:
            value = hba1c[given[0]]
            assert value is not None
            low, high = HBA1C_RANGE[given[0]]
            if not value.is_finite() or _decimals(value) > MAX_DECIMALS:
                problems.append(_problem(hba1c_field[given[0]], "number", f"{value} has more than 3 decimals"))
            elif not low <= value <= high:
                problems.append(
                    _problem(hba1c_field[given[0]], "range", f"{value} {given[0]} is outside {low}-{high} {given[0]}",
                             low=low, high=high, unit=given[0])
                )  # fmt: skip
    else:
        for u in given:
            problems.append(
                _problem(hba1c_field[u], "not_for_test", f"not part of a {entry.test} test", test=entry.test)
            )
    tested_on = entry.tested_on or today
    if tested_on < delivery_date:
        problems.append(_problem("date", "before_delivery", f"{tested_on} is before the delivery ({delivery_date})",
                                 delivery=delivery_date.isoformat()))  # fmt: skip
    elif tested_on > today:
        problems.append(_problem("date", "future", f"{tested_on} is in the future (today is {today})",
                                 today=today.isoformat()))  # fmt: skip
    if problems:
        raise TestRefused(problems)
    return replace(entry, unit=unit if wanted else None, tested_on=tested_on)


def classify(entry: Entry, profile: str) -> Classification:
    """The classification of a checked entry with ``profile``'s criteria: each value's category (at or above a
    cut-off: "≥ 126 mg/dL", "6.0 to 6.9 mmol/L" is "≥ 6.0 and below 7.0"), the most severe of them, and the
    follow-up the guideline asks for."""
    c = CRITERIA[profile]
    findings: set[str] = set()
    fasting_mgdl = two_hour_mgdl = None
    if entry.unit is not None and entry.fasting is not None:
        fasting_mgdl = units.exact_mgdl(float(entry.fasting), entry.unit)
        if fasting_mgdl >= c.fasting_diabetes.glucose_mgdl(entry.unit):
            findings.add("diabetes")
        elif fasting_mgdl >= c.fasting_impaired.glucose_mgdl(entry.unit):
            findings.add("impaired_fasting_glucose")
    if entry.unit is not None and entry.two_hour is not None:
        two_hour_mgdl = units.exact_mgdl(float(entry.two_hour), entry.unit)
        if two_hour_mgdl >= c.two_hour_diabetes.glucose_mgdl(entry.unit):
            findings.add("diabetes")
        elif two_hour_mgdl >= c.two_hour_impaired.glucose_mgdl(entry.unit):
            findings.add("impaired_glucose_tolerance")
    for unit, value in ((PERCENT, entry.hba1c_percent), (MMOL_MOL, entry.hba1c_mmol_mol)):
        if value is None:
            continue
        if value >= c.hba1c_diabetes.hba1c(unit):
            findings.add("diabetes")
        elif c.hba1c_elevated is not None and value >= c.hba1c_elevated.hba1c(unit):
            findings.add("elevated_hba1c")
    ordered = tuple(k for k in CLASSIFICATIONS if k in findings)
    classification = ordered[-1] if ordered else "normal"
    follow_up = c.follow_up[classification]
    if classification == "normal" and entry.test != c.preferred_test and c.preferred_test == "ogtt_75g":
        # a normal fasting value or HbA1c does not exclude impaired glucose tolerance, which only the OGTT shows
        follow_up = ("ogtt_advised", *follow_up)
    return Classification(classification, ordered, follow_up, c.source, fasting_mgdl, two_hour_mgdl)


def _stored(row: asyncpg.Record) -> StoredTest:
    return StoredTest(
        id=row["id"],
        patient_id=row["patient_id"],
        tested_on=row["tested_on"],
        test=row["test"],
        unit=row["unit"],
        fasting=row["fasting_entered"],
        two_hour=row["two_hour_entered"],
        fasting_mgdl=row["fasting_mgdl"],
        two_hour_mgdl=row["two_hour_mgdl"],
        hba1c_percent=row["hba1c_percent"],
        hba1c_mmol_mol=row["hba1c_mmol_mol"],
        classification=row["classification"],
        findings=tuple(row["findings"]),
        follow_up=tuple(row["follow_up"]),
        profile=row["profile"],
        source=row["source"],
        recorded_by=row["recorded_by"],
        recorded_at=row["recorded_at"],
    )


async def tests_of(conn: Conn | asyncpg.Pool, patient_id: uuid.UUID, limit: int = LIST_LIMIT) -> list[StoredTest]:
    """A patient's tests, newest first (the first is the current one)."""
    return [_stored(row) for row in await conn.fetch(queries.TESTS_OF_PATIENT, patient_id, limit)]


async def record(
    conn: Conn, patient_id: uuid.UUID, entry: Entry, *, actor: str, detail: dict[str, Any] | None = None
) -> StoredTest:
    """Check ``entry`` (``TestRefused`` names every refused field), classify it with the patient's profile, store
    it, resolve the reminder that the test was due (``postpartum_test_due`` alerts still open, reason
    ``postpartum_test``) and audit it (``postpartum.test``), in one transaction. ``RecordRefused``: no such patient,
    an archived one, or no delivery recorded yet (the test follows the birth)."""
    async with conn.transaction():
        patient = await conn.fetchrow(queries.LOCK_PATIENT, patient_id)
        if patient is None:
            raise RecordRefused("missing")
        if patient["archived_at"] is not None:
            raise RecordRefused("archived")
        if patient["delivery_date"] is None:
            raise RecordRefused("not_delivered")
        today = dt.datetime.now(ZoneInfo(patient["time_zone"])).date()
        checked = check(entry, delivery_date=patient["delivery_date"], today=today)
        found = classify(checked, patient["profile"])
        row = await conn.fetchrow(
            queries.INSERT_TEST,
            patient_id,
            checked.tested_on,
            checked.test,
            checked.unit,
            checked.fasting,
            checked.two_hour,
            found.fasting_mgdl,
            found.two_hour_mgdl,
            checked.hba1c_percent,
            checked.hba1c_mmol_mol,
            found.classification,
            list(found.findings),
            list(found.follow_up),
            patient["profile"],
            found.source,
            actor,
        )
        assert row is not None
        stored = _stored(row)
        resolved = await conn.fetch(
            queries.RESOLVE_REMINDERS, patient_id, list(POSTPARTUM_RULES), REMINDER_RESOLVED_REASON, channels.ALERTS
        )
        await audit.record(
            conn,
            actor=actor,
            action="postpartum.test",
            patient_id=patient_id,
            detail={
                **(detail or {}),
                "test_id": stored.id,
                "test": stored.test,
                "date": stored.tested_on.isoformat(),
                "classification": stored.classification,
                "profile": stored.profile,
                "alerts_resolved": [r["id"] for r in resolved],
            },
        )
    return stored
