"""Loading a cohort from the database: the recent window of readings of some patients, as numpy columns."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Sequence

import asyncpg
import numpy as np

from alerts import profiles, queries, titration
from alerts.cohort import PROFILE, TREATMENT, Cohort, Record
from telemon.db import Conn

WINDOW = dt.timedelta(days=14)  # the longest look-back of any rule (CGM range review, fasting trend)
# The CGM minute pass's rules look back 30 minutes at most (a stale sensor turns urgent after 30 min, the AR2
# forecast reads the last 20 min, a rapid fall 15 min): 6 hours keeps a sensor silent for hours judged as stale
# (beyond, the 5-minute pass over the full window still judges it). Like every window it starts at the local
# midnight of its first day, so it loads 6 to 30 hours instead of 14 days.
CGM_MINUTE_WINDOW = dt.timedelta(hours=6)


async def load_cohort(
    db: asyncpg.Pool | Conn,
    patient_ids: Sequence[uuid.UUID],
    *,
    now: float | None = None,
    window: dt.timedelta = WINDOW,
) -> tuple[Cohort, list[uuid.UUID]]:
    """The cohort of ``patient_ids`` (those that exist, in the given order) and their ids in cohort order, with the
    readings of the last ``window`` (shorter only for rules that look back less: the CGM minute pass)."""
    now_s = int(now if now is not None else time.time())
    since = dt.datetime.fromtimestamp(now_s, dt.UTC) - window
    ids = list(patient_ids)
    patients = await db.fetch(queries.COHORT_PATIENTS, ids, dt.datetime.fromtimestamp(now_s, dt.UTC))
    found = [r["id"] for r in patients]
    columns = await db.fetchrow(queries.COHORT_WINDOW, found, since)
    n_patients = len(found)

    order: np.ndarray | None = None  # type: ignore[type-arg]

    def col(name: str, dtype: type) -> np.ndarray:  # type: ignore[type-arg]
        values = columns[name] if columns is not None else None
        array: np.ndarray = np.asarray(values if values is not None else [], dtype=dtype)  # type: ignore[type-arg]
        return array if order is None else array[order]

    patient = col("patient", np.int64)
    t = col("t", np.int64)
    if not _sorted(patient, t):  # the query sorts; should a plan ever feed array_agg out of order, sort here
        order = np.lexsort((col("reading_id", np.int64), t, patient))
        patient, t = patient[order], t[order]
    offsets = np.zeros(n_patients + 1, dtype=np.int64)
    np.cumsum(np.bincount(patient, minlength=n_patients), out=offsets[1:])
    profile = np.array([PROFILE[r["profile"]] for r in patients], dtype=np.int8)
    targets = profiles.patient_targets(profile, [r["target_overrides"] or {} for r in patients])
    cohort = Cohort(
        reading_id=col("reading_id", np.int64),
        t=t,
        value=col("value", np.float64),
        kind=col("kind", np.int8),
        context=col("context", np.int8),
        meal=col("meal", np.int8),
        minutes_after_meal=col("minutes_after_meal", np.int16),
        flags=col("flags", np.int8),
        local_day=col("local_day", np.int32),
        local_minute=col("local_minute", np.int16),
        offsets=offsets,
        profile=profile,
        treatment=np.array([TREATMENT[r["treatment"]] for r in patients], dtype=np.int8),
        target_fasting=targets[0],
        target_post_1h=targets[1],
        target_post_2h=targets[2],
        readings_per_day=np.array([r["readings_per_day"] for r in patients], dtype=np.int16),
        delivery_day=np.array([r["delivery_day"] for r in patients], dtype=np.int32),
        devices=np.array([r["devices"] for r in patients], dtype=np.int8),
        today=np.array([r["today"] for r in patients], dtype=np.int32),
        utc_offset_s=np.array([r["utc_offset_s"] for r in patients], dtype=np.int32),
        now=now_s,
        record=_record(patients, columns),
    )
    return cohort, found


def _record(patients: Sequence[asyncpg.Record], measured: asyncpg.Record | None) -> Record:
    """The treatment record of the cohort's patients (plans, protocols, dates) and their measurements."""

    def col(name: str, dtype: type) -> np.ndarray:  # type: ignore[type-arg]
        values = measured[name] if measured is not None else None
        return np.asarray(values if values is not None else [], dtype=dtype)

    def per(name: str, fill: float = np.nan) -> np.ndarray:  # type: ignore[type-arg]
        return np.array([fill if r[name] is None else float(r[name]) for r in patients], dtype=np.float64)

    n = len(patients)
    patient = col("m_patient", np.int64)
    m_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(patient, minlength=n), out=m_offsets[1:])
    record = Record.empty(n)
    record.measurement_id, record.m_t = col("measurement_id", np.int64), col("m_t", np.int64)
    record.m_kind, record.m_value = col("m_kind", np.int8), col("m_value", np.float64)
    record.m_urine, record.m_insulin = col("m_urine", np.int8), col("m_insulin", np.int8)
    record.m_slot = col("m_slot", np.int8)
    record.m_systolic, record.m_diastolic = col("m_systolic", np.float64), col("m_diastolic", np.float64)
    record.m_local_day, record.m_local_minute = col("m_local_day", np.int32), col("m_local_minute", np.int16)
    record.m_offsets = m_offsets
    record.plan_version = np.array([r["plan_version"] for r in patients], dtype=np.int32)
    record.plan_since = np.array([r["plan_since"] for r in patients], dtype=np.int64)
    since = [[r["basal_since"], r["breakfast_since"], r["lunch_since"], r["dinner_since"]] for r in patients]
    record.dose_since = np.array(since, dtype=np.int64).reshape(n, 4)
    record.basal_units = per("basal_units")
    record.basal_product = [r["basal_product"] for r in patients]
    record.prandial_units = np.stack([per(f"prandial_{meal}") for meal in ("breakfast", "lunch", "dinner")], axis=1)
    record.prandial_product = [r["prandial_product"] for r in patients]
    record.metformin_mg = per("metformin_mg")
    record.start_day = np.array([r["start_day"] for r in patients], dtype=np.int32)
    record.postpartum_tested = np.array([r["postpartum_tested"] for r in patients], dtype=np.bool_)
    own = [i for i, r in enumerate(patients) if r["window_days"] is not None]
    if own:  # the teams with a protocol of their own (the others keep the default of Record.empty)
        protocols = [titration.from_row(patients[i]) for i in own]
        for name in ("step_units", "step_percent", "max_step_units", "reduction_percent", "reduction_units"):
            getattr(record, name)[own] = [np.nan if getattr(x, name) is None else getattr(x, name) for x in protocols]
        record.window_days[own] = [x.window_days for x in protocols]
        record.days_required[own] = [x.days_required for x in protocols]
        record.suggestions_enabled[own] = [x.suggestions_enabled for x in protocols]
        record.protocol_default[own] = [x == titration.DEFAULT for x in protocols]
    return record


def _sorted(patient: np.ndarray, t: np.ndarray) -> bool:  # type: ignore[type-arg]
    """Whether readings are in (patient, time) order."""
    step_p, step_t = np.diff(patient), np.diff(t)
    return bool(np.all((step_p > 0) | ((step_p == 0) & (step_t >= 0))))
