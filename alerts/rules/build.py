"""Turning a rule's vectorised decision into candidates: evidence and message params, built per candidate.

A rule decides with numpy (which patients, episodes, readings); only the few candidates it found are then turned
into evidence dicts and message params by a Python loop over lists made once per rule. A message is stored as
facts, never as text: a code (the rule's name, or ``rule.variant`` where the wording differs) and params that
hold glucose values in mg/dL, instants in UTC (ISO 8601, ``*_at``) beside the wall-clock time the patient lived
them (``*_local``, her time zone, as the clinician reads it), counts and thresholds. :mod:`alerts.messages`
renders them in the reader's language and unit.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from alerts.cohort import I64, B, Candidates, Cohort, Columns
from alerts.rules.segments import ranges

_EPOCH = dt.date(1970, 1, 1)
HM = [f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)]

Rule = Callable[[Cohort], Candidates]
Row = tuple[int, str, str, dict[str, Any], str, dict[str, Any]]  # patient, severity, episode, evidence, code, params
Out = tuple[str, str, dict[str, Any], str, dict[str, Any]]  # severity, episode, evidence, code, params


@lru_cache(maxsize=8192)
def date(day: int) -> str:
    """A local day number as an ISO date."""
    return (_EPOCH + dt.timedelta(days=day)).isoformat()


def iso(t: int) -> str:
    """Epoch seconds as a UTC ISO 8601 instant (``2024-06-10T07:00:00Z``), from the cached dates and minutes (a
    few times cheaper than ``datetime.strftime``, paid per reading a message names)."""
    day, second = divmod(t, 86400)
    return f"{date(day)}T{HM[second // 60]}:{second % 60:02d}Z"


def local(day: int, minute: int) -> str:
    """A local day and minute as the patient's wall-clock time, ``2024-06-10 09:00``."""
    return f"{date(day)} {HM[minute]}"


def local_of(c: Cohort, i: int) -> str:
    """The patient's wall-clock time of reading ``i``."""
    return local(int(c.local_day[i]), int(c.local_minute[i]))


def readings(c: Cohort, idx: npt.NDArray[Any]) -> dict[str, Any]:
    """The reading part of an evidence dict (JSON-ready)."""
    return {
        "reading_ids": c.reading_id[idx].tolist(),
        "values_mgdl": c.value[idx].tolist(),
        "measured_at": c.t[idx].tolist(),
    }


NO_READINGS: dict[str, Any] = {"reading_ids": [], "values_mgdl": [], "measured_at": []}


class Batch:
    """The readings of many candidates as Python lists: ``members`` concatenated, candidate ``g`` holding
    ``[lo[g], hi[g])``. Converting once per rule keeps numpy scalars out of the per-candidate loop."""

    def __init__(self, c: Cohort, members: I64, lo: I64, hi: I64) -> None:
        self.members = members
        self.ids: list[int] = c.reading_id[members].tolist()
        self.v: list[float] = c.value[members].tolist()
        self.t: list[int] = c.t[members].tolist()
        self.day: list[int] = c.local_day[members].tolist()
        self.minute: list[int] = c.local_minute[members].tolist()
        self.lo: list[int] = lo.tolist()
        self.hi: list[int] = hi.tolist()

    @classmethod
    def of_ranges(cls, c: Cohort, idx: I64, lo: I64, hi: I64) -> Batch:
        """Candidates holding ``idx[lo[g]:hi[g]]``."""
        pos, _ = ranges(lo, hi)
        lens = hi - lo
        new_hi = np.cumsum(lens)
        return cls(c, idx[pos], new_hi - lens, new_hi)

    def __len__(self) -> int:
        return len(self.lo)

    def evidence(self, g: int) -> dict[str, Any]:
        a, b = self.lo[g], self.hi[g]
        return {"reading_ids": self.ids[a:b], "values_mgdl": self.v[a:b], "measured_at": self.t[a:b]}

    def local(self, k: int) -> str:
        """The patient's wall-clock time of the k-th member."""
        return local(self.day[k], self.minute[k])

    def reading(self, k: int) -> dict[str, Any]:
        """The k-th member as a message param: value, instant, wall-clock time."""
        return {"mgdl": self.v[k], "at": iso(self.t[k]), "local": local(self.day[k], self.minute[k])}


def candidates(rule: str, rows: Sequence[Row], stateful: bool = False, evaluated: B | None = None) -> Candidates:
    return Candidates(
        rule=rule,
        patient=np.array([r[0] for r in rows], dtype=np.int64),
        severity=[r[1] for r in rows],
        episode=[r[2] for r in rows],
        evidence=[r[3] for r in rows],
        code=[r[4] for r in rows],
        params=[r[5] for r in rows],
        stateful=stateful,
        evaluated=evaluated if evaluated is not None else np.zeros(0, dtype=np.bool_),
    )


def lazy(
    rule: str,
    patient: npt.NDArray[Any],
    build: Callable[[], list[Out]],
    stateful: bool = False,
    evaluated: B | None = None,
) -> Candidates:
    """Candidates whose evidence and message params ``build`` makes (one row per patient, in order) when first
    read."""

    def columns() -> Columns:
        paused = gc.isenabled()
        gc.disable()  # many small dicts and lists: see alerts.rules.registry.evaluate
        try:
            rows = build() if len(patient) else []
        finally:
            if paused:
                gc.enable()
        if not rows:
            return [], [], [], [], []
        severity, episode, evidence, code, params = zip(*rows, strict=True)
        return list(severity), list(episode), list(evidence), list(code), list(params)

    return Candidates(rule, np.asarray(patient, dtype=np.int64), stateful=stateful, evaluated=evaluated, build=columns)
