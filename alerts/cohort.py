"""The engine's data shape: readings of many patients as columns, and what the rules give back.

Readings are sorted by (patient, time); ``offsets[p]:offsets[p + 1]`` is patient ``p``'s segment. Per-patient
parameters are arrays of length ``n_patients``. Codes are small integers so that rules stay vectorised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from alerts import titration

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I16 = npt.NDArray[np.int16]
I8 = npt.NDArray[np.int8]
B = npt.NDArray[np.bool_]

# Reading codes, in the order of the database's text values.
KIND = {"smbg": 0, "cgm": 1}
CONTEXT = {"fasting": 0, "before_meal": 1, "after_meal": 2, "bedtime": 3, "night": 4, "unspecified": 5}
MEAL = {None: -1, "breakfast": 0, "lunch": 1, "dinner": 2, "snack": 3}
FLAG_LO, FLAG_HI, FLAG_CONTROL, FLAG_MANUAL = 1, 2, 4, 8
# Not a device flag: the reading came without a context, which ingest guessed from the clock (``context_inferred``);
# the rules place it again among the readings of its day (telemon.meal_context).
FLAG_INFERRED = 16
FLAG = {
    "lo": FLAG_LO,
    "hi": FLAG_HI,
    "control_solution": FLAG_CONTROL,
    "manual": FLAG_MANUAL,
    "context_inferred": FLAG_INFERRED,
}

# Patient codes.
PROFILE = {"FR": 0, "NICE": 1, "ADA": 2}
TREATMENT = {"diet": 0, "metformin": 1, "insulin": 2}
DEVICE_METER, DEVICE_CGM = 1, 2  # bit mask of the kinds of active devices a patient has

NO_DAY = np.iinfo(np.int32).max  # "no delivery recorded"

# Measurement codes (table ``measurements``), in the order of the database's text values; -1: none.
MEASUREMENT = {"insulin": 0, "ketone": 1, "weight": 2, "blood_pressure": 3}
URINE = {None: -1, "negative": 0, "trace": 1, "+": 2, "++": 3, "+++": 4}
INSULIN = {None: -1, "basal": 0, "rapid": 1, "premixed": 2}
SLOT = {None: -1, "breakfast": 0, "lunch": 1, "dinner": 2, "bedtime": 3}
# The doses of a plan a dose review names: the basal regimen, then the prandial dose of each meal (the columns of
# ``Record.prandial_units``).
DOSE_SLOTS = ("basal", "breakfast", "lunch", "dinner")


@dataclass
class Cohort:
    """Readings of many patients, sorted by (patient, measured_at), with per-patient parameters."""

    # per reading (length n)
    reading_id: I64
    t: I64  # measured_at, seconds since the epoch (UTC)
    value: F64  # mg/dL
    kind: I8
    context: I8
    meal: I8
    minutes_after_meal: I16  # -1: unknown
    flags: I8  # FLAG_* bits
    local_day: I32  # day number (days since 1970-01-01) in the patient's time zone
    local_minute: I16  # minute of the local day, 0..1439
    # per patient (length p)
    offsets: I64  # length p + 1
    profile: I8
    treatment: I8
    target_fasting: F64  # mg/dL, after per-patient overrides
    target_post_1h: F64  # mg/dL; NaN when the profile has no 1 h target
    target_post_2h: F64
    readings_per_day: I16
    delivery_day: I32  # local day number of the delivery, NO_DAY when none
    devices: I8  # DEVICE_* bits of the patient's active devices
    today: I32  # the local day number of ``now`` for each patient
    utc_offset_s: I32  # the patient's current UTC offset, seconds (for local-day boundaries)
    now: int  # evaluation time, seconds since the epoch
    lookback_s: int = 7 * 86400  # per-reading alerts only for readings newer than now - lookback
    # The treatment record (plans, protocols, measurements); None: nobody has one (see :func:`record_of`).
    record: Record | None = None
    # Derived arrays shared by the rules (alerts.rules fills it on first use): do not modify a cohort's
    # arrays after evaluating it, or clear this first.
    cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def n_patients(self) -> int:
        return len(self.offsets) - 1

    @property
    def patient_of(self) -> I64:
        """The patient index of every reading."""
        counts = np.diff(self.offsets)
        return np.repeat(np.arange(self.n_patients, dtype=np.int64), counts)


@dataclass
class Record:
    """The treatment record of a cohort's patients: per patient the plan in force, her team's titration protocol
    (:mod:`alerts.titration`, as arrays) and a few dates; and the window's measurements (insulin doses, ketones,
    weight, blood pressure) as a second columnar segment, sorted by (patient, measured_at), with offsets of their
    own (``m_offsets[p]:m_offsets[p + 1]``)."""

    # per measurement (length m)
    measurement_id: I64
    m_t: I64  # measured_at, seconds since the epoch (UTC)
    m_kind: I8  # MEASUREMENT
    m_value: F64  # insulin units, blood β-hydroxybutyrate mmol/L, weight kg; NaN when none
    m_urine: I8  # URINE
    m_insulin: I8  # INSULIN
    m_slot: I8  # SLOT
    m_systolic: F64  # mmHg; NaN when none
    m_diastolic: F64
    m_local_day: I32
    m_local_minute: I16
    m_offsets: I64  # length p + 1
    # per patient (length p): the plan in force (version 0: none written)
    plan_version: I32
    plan_since: I64  # when the plan in force was written, epoch seconds (0: none)
    # (p, 4), per DOSE_SLOTS: when the plan last changed that dose from another one, epoch seconds; 0: never (a first
    # dose, or no dose): a dose review judges the readings measured after it
    dose_since: I64
    basal_units: F64  # NaN: no basal regimen
    basal_product: list[str | None]
    prandial_units: F64  # (p, 3): breakfast, lunch, dinner; NaN: no dose
    prandial_product: list[str | None]
    metformin_mg: F64  # NaN: none
    # the team's titration protocol (NaN: the field is not set)
    step_units: F64
    step_percent: F64
    window_days: I16
    days_required: I16
    max_step_units: F64
    reduction_percent: F64
    reduction_units: F64
    suggestions_enabled: B
    protocol_default: B  # the team follows alerts.titration.DEFAULT
    start_day: I32  # local day of the diagnosis (else of the enrolment): the start of the diet's trial period
    postpartum_tested: B  # a postpartum glucose test is recorded

    @classmethod
    def empty(cls, n_patients: int, measurements: int = 0) -> Record:
        """Nobody has a plan or a measurement; every team follows the default protocol."""
        p, d = n_patients, titration.DEFAULT
        nan = np.full(p, np.nan, dtype=np.float64)

        def opt(x: float | None) -> F64:
            return np.full(p, np.nan if x is None else x, dtype=np.float64)

        return cls(
            measurement_id=np.zeros(0, np.int64),
            m_t=np.zeros(0, np.int64),
            m_kind=np.zeros(0, np.int8),
            m_value=np.zeros(0, np.float64),
            m_urine=np.zeros(0, np.int8),
            m_insulin=np.zeros(0, np.int8),
            m_slot=np.zeros(0, np.int8),
            m_systolic=np.zeros(0, np.float64),
            m_diastolic=np.zeros(0, np.float64),
            m_local_day=np.zeros(0, np.int32),
            m_local_minute=np.zeros(0, np.int16),
            m_offsets=np.zeros(p + 1, np.int64),
            plan_version=np.zeros(p, np.int32),
            plan_since=np.zeros(p, np.int64),
            dose_since=np.zeros((p, len(DOSE_SLOTS)), np.int64),
            basal_units=nan.copy(),
            basal_product=[None] * p,
            prandial_units=np.full((p, 3), np.nan, dtype=np.float64),
            prandial_product=[None] * p,
            metformin_mg=nan.copy(),
            step_units=opt(d.step_units),
            step_percent=opt(d.step_percent),
            window_days=np.full(p, d.window_days, np.int16),
            days_required=np.full(p, d.days_required, np.int16),
            max_step_units=opt(d.max_step_units),
            reduction_percent=opt(d.reduction_percent),
            reduction_units=opt(d.reduction_units),
            suggestions_enabled=np.full(p, d.suggestions_enabled, np.bool_),
            protocol_default=np.ones(p, np.bool_),
            start_day=np.full(p, NO_DAY, np.int32),
            postpartum_tested=np.zeros(p, np.bool_),
        )


def record_of(c: Cohort) -> Record:
    """The cohort's treatment record, or an empty one (cohorts built without it: nobody has a plan)."""
    if c.record is None:
        c.record = Record.empty(c.n_patients)
    return c.record


# The columns a rule's builder returns: severity, episode, evidence, message code, message params (one entry each
# per candidate, in candidate order).
Columns = tuple[list[str], list[str], list[dict[str, Any]], list[str], list[dict[str, Any]]]


class Candidates:
    """Alert candidates from one rule, as columns (length k).

    ``patient``, ``stateful`` and ``evaluated`` are decided by the rule's vectorised part. The other columns
    (``severity``, ``episode``, ``evidence``, ``code``, ``params``) are either given as lists or, with ``build``,
    materialised on first access of any of them (or by :meth:`materialise`): building evidence and message params
    is a Python loop over candidates, paid only by whoever reads them (the alert store does). A candidate holds
    facts only: ``code`` names its message and ``params`` the values it states (glucose in mg/dL, times in UTC);
    the text is rendered where it is read (:mod:`alerts.messages`), in the reader's language and unit.
    """

    __slots__ = ("_build", "_columns", "evaluated", "patient", "rule", "stateful")

    def __init__(
        self,
        rule: str,
        patient: I64,
        severity: list[str] | None = None,
        episode: list[str] | None = None,
        evidence: list[dict[str, Any]] | None = None,
        code: list[str] | None = None,
        params: list[dict[str, Any]] | None = None,
        stateful: bool = False,  # the alert resolves itself when the rule stops firing for that patient
        evaluated: B | None = None,  # patients the rule could judge (stateful rules)
        *,
        build: Callable[[], Columns] | None = None,
    ) -> None:
        self.rule = rule
        self.patient = patient  # patient index into the cohort
        self.stateful = stateful
        self.evaluated: B = evaluated if evaluated is not None else np.zeros(0, dtype=np.bool_)
        given = (severity, episode, evidence, code, params)
        if build is None:
            k = len(patient)
            if any(x is None for x in given):
                raise ValueError("Candidates need either every column or a builder")
            self._columns: Columns | None = (
                list(severity or []),
                list(episode or []),
                list(evidence or []),
                list(code or []),
                list(params or []),
            )
            if any(len(x) != k for x in self._columns):
                raise ValueError("Candidates' columns differ in length")
        else:
            if any(x is not None for x in given):
                raise ValueError("Candidates take either columns or a builder, not both")
            self._columns = None
        self._build = build

    def __len__(self) -> int:
        return len(self.patient)

    def __repr__(self) -> str:
        state = "materialised" if self._columns is not None else "lazy"
        return f"Candidates({self.rule!r}, {len(self)} candidates, {state})"

    @property
    def materialised(self) -> bool:
        return self._columns is not None

    def materialise(self) -> Candidates:
        """Build the evidence and message params now (once); returns self."""
        if self._columns is None:
            assert self._build is not None
            columns = self._build()
            if any(len(x) != len(self.patient) for x in columns):
                raise ValueError(f"{self.rule}: the builder's columns differ in length from the candidates")
            self._columns = columns
            self._build = None
        return self

    def _column(self, k: int) -> list[Any]:
        columns = self._columns if self._columns is not None else self.materialise()._columns
        assert columns is not None
        return columns[k]

    @property
    def severity(self) -> list[str]:
        """One of "info", "warning", "urgent"."""
        return self._column(0)

    @property
    def episode(self) -> list[str]:
        """Episode key: one open alert per (patient, rule, episode)."""
        return self._column(1)

    @property
    def evidence(self) -> list[dict[str, Any]]:
        """Reading ids, values, target, ... (JSON-ready)."""
        return self._column(2)

    @property
    def code(self) -> list[str]:
        """The message code of each candidate (a key of the message catalogues, alerts.messages)."""
        return self._column(3)

    @property
    def params(self) -> list[dict[str, Any]]:
        """The values each message states (JSON-ready): what the catalogue's text is filled with."""
        return self._column(4)
