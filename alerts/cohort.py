"""The engine's data shape: readings of many patients as columns, and what the rules give back.

Readings are sorted by (patient, time); ``offsets[p]:offsets[p + 1]`` is patient ``p``'s segment. Per-patient
parameters are arrays of length ``n_patients``. Codes are small integers so that rules stay vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

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
FLAG = {"lo": FLAG_LO, "hi": FLAG_HI, "control_solution": FLAG_CONTROL, "manual": FLAG_MANUAL}

# Patient codes.
PROFILE = {"FR": 0, "NICE": 1, "ADA": 2}
TREATMENT = {"diet": 0, "metformin": 1, "insulin": 2}
DEVICE_METER, DEVICE_CGM = 1, 2  # bit mask of the kinds of active devices a patient has

NO_DAY = np.iinfo(np.int32).max  # "no delivery recorded"


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
class Candidates:
    """Alert candidates from one rule, as columns (length k, usually small)."""

    rule: str
    patient: I64  # patient index into the cohort
    severity: list[str]  # "info" | "warning" | "urgent"
    episode: list[str]  # episode key: one open alert per (patient, rule, episode)
    evidence: list[dict[str, Any]]  # reading ids, values, target, ... (JSON-ready)
    message_en: list[str]
    message_fr: list[str]
    stateful: bool = False  # the alert resolves itself when the rule stops firing for that patient
    evaluated: B = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))  # patients the rule could judge

    def __len__(self) -> int:
        return len(self.patient)
