"""Rules on the other items devices send (table ``measurements``): ketones and blood pressure, one alert per result.

- ``ketones_high``: blood β-hydroxybutyrate ≥ 1.5 mmol/L or urine ketones "++" and above: urgent; 0.6 to < 1.5 or
  urine "+": warning;
- ``blood_pressure_high``: ≥ 160 systolic or ≥ 110 diastolic: urgent; ≥ 140 or ≥ 90: warning.

They follow the per-reading conventions of :mod:`alerts.rules.segments`: a result older than the lookback opens
nothing, and nothing is judged on or after the delivery day (monitoring ends at delivery). The episode key is
``"t<epoch s>-m<measurement id>"`` (two results may share a second). Their evidence names the measurements
(``measurement_ids``, ``measurement_at``), not readings. Numbers and sources: :mod:`alerts.profiles`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alerts import profiles as P
from alerts.cohort import I64, MEASUREMENT, URINE, B, Candidates, Cohort, Record, record_of
from alerts.rules.build import NO_READINGS, Out, iso, lazy, local
from alerts.rules.segments import derived

URINE_NAMES = {code: name for name, code in URINE.items() if name is not None}


def judged_measurements(c: Cohort, kind: str) -> tuple[Record, I64, I64]:
    """The measurements of ``kind`` a per-result rule judges (recent, before the delivery of a patient not yet
    delivered): their positions in the record and their patients."""
    r = record_of(c)
    d = derived(c)
    patient = np.repeat(np.arange(c.n_patients, dtype=np.int64), np.diff(r.m_offsets))
    keep: B = (r.m_kind == MEASUREMENT[kind]) & (r.m_t >= d.cutoff)
    keep &= ~d.delivered[patient] & (r.m_local_day < c.delivery_day[patient])
    pos = np.flatnonzero(keep).astype(np.int64)
    return r, pos, patient[pos]


def _evidence(r: Record, k: int) -> dict[str, Any]:
    return NO_READINGS | {"measurement_ids": [int(r.measurement_id[k])], "measurement_at": [int(r.m_t[k])]}


def ketones_high(c: Cohort) -> Candidates:
    """A blood ketone result ≥ 0.6 mmol/L or a urine result "+" and above: warning, urgent from 1.5 mmol/L or
    "++"; code ``ketones_high.blood`` or ``ketones_high.urine``."""
    r, pos, pid = judged_measurements(c, "ketone")
    value, urine = r.m_value[pos], r.m_urine[pos]
    blood = ~np.isnan(value)
    with np.errstate(invalid="ignore"):
        urgent = (blood & (value >= P.KETONES_URGENT_MMOL)) | (urine >= URINE[P.KETONES_URINE_URGENT])
        warning = (blood & (value >= P.KETONES_WARNING_MMOL)) | (urine >= URINE[P.KETONES_URINE_WARNING])
    fire = np.flatnonzero(urgent | warning)

    def build() -> list[Out]:
        out: list[Out] = []
        for j in fire.tolist():
            k = int(pos[j])
            t = int(r.m_t[k])
            is_blood = bool(blood[j])
            params: dict[str, Any] = {
                "kind": "blood" if is_blood else "urine",
                "value_mmol": float(value[j]) if is_blood else None,
                "urine": None if is_blood else URINE_NAMES[int(urine[j])],
                "at": iso(t),
                "local": local(int(r.m_local_day[k]), int(r.m_local_minute[k])),
                "warning_mmol": P.KETONES_WARNING_MMOL,
                "urgent_mmol": P.KETONES_URGENT_MMOL,
                "urine_warning": P.KETONES_URINE_WARNING,
                "urine_urgent": P.KETONES_URINE_URGENT,
                "source": P.KETONES_SOURCE,
            }
            evidence = _evidence(r, k) | {"ketone_mmol": params["value_mmol"], "ketone_urine": params["urine"]}
            severity = "urgent" if urgent[j] else "warning"
            code = f"ketones_high.{params['kind']}"
            out.append((severity, f"t{t}-m{int(r.measurement_id[k])}", evidence, code, params))
        return out

    return lazy("ketones_high", pid[fire], build)


def blood_pressure_high(c: Cohort) -> Candidates:
    """A blood pressure ≥ 140 systolic or ≥ 90 diastolic: warning; ≥ 160 or ≥ 110: urgent (code
    ``blood_pressure_high.severe``)."""
    r, pos, pid = judged_measurements(c, "blood_pressure")
    sys_, dia = r.m_systolic[pos], r.m_diastolic[pos]
    urgent = (sys_ >= P.BP_URGENT_SYSTOLIC) | (dia >= P.BP_URGENT_DIASTOLIC)
    warning = (sys_ >= P.BP_WARNING_SYSTOLIC) | (dia >= P.BP_WARNING_DIASTOLIC)
    fire = np.flatnonzero(urgent | warning)

    def build() -> list[Out]:
        out: list[Out] = []
        for j in fire.tolist():
            k = int(pos[j])
            t = int(r.m_t[k])
            params = {
                "systolic": float(sys_[j]),
                "diastolic": float(dia[j]),
                "at": iso(t),
                "local": local(int(r.m_local_day[k]), int(r.m_local_minute[k])),
                "warning_systolic": P.BP_WARNING_SYSTOLIC,
                "warning_diastolic": P.BP_WARNING_DIASTOLIC,
                "urgent_systolic": P.BP_URGENT_SYSTOLIC,
                "urgent_diastolic": P.BP_URGENT_DIASTOLIC,
                "source": P.BP_SOURCE,
            }
            evidence = _evidence(r, k) | {"systolic_mmhg": params["systolic"], "diastolic_mmhg": params["diastolic"]}
            is_urgent = bool(urgent[j])
            code = "blood_pressure_high.severe" if is_urgent else "blood_pressure_high"
            out.append(
                ("urgent" if is_urgent else "warning", f"t{t}-m{int(r.measurement_id[k])}", evidence, code, params)
            )
        return out

    return lazy("blood_pressure_high", pid[fire], build)
