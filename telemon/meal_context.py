"""The measurement context of a reading sent without one, inferred from the patient's local day.

One inference for ingest, the alert engine and the dashboard's logbook, so that they never disagree. The local day is cut into
windows: night (before 05:00), breakfast (05:00–12:00), lunch (12:00–16:00), dinner (16:00–23:00) and bedtime.
In French GDM practice a patient measures on waking, then about 2 h after each meal, so:

- the first meter reading of the breakfast window, taken before 09:30, is fasting; every later reading of that
  window (after a fasting one, or after 09:30) is after breakfast;
- likewise the first reading of the lunch window before 13:00 is before lunch, the others after lunch; the first
  of the dinner window before 19:30 is before dinner, the others after dinner;
- night and bedtime readings are what the clock says; CGM readings are only told apart as night or not.

A single reading is placed by its clock alone (``clock_context``): it is the first of its window as far as
anyone knows. Ingest stores that guess with ``context_inferred``; whoever sees the patient's whole day (the
engine, the logbook) places the inferred readings again with ``day_contexts`` over the day's readings, which
gives the same answer for the first reading of a window and corrects the later ones.

An inferred fasting reading is *certain* when it is also the first meter reading of its local day (nothing
earlier, not even at night): only then may an urgent alert rest on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

# Codes, in the order of the database's text values (the alert engine's codes are the same).
CONTEXTS = ("fasting", "before_meal", "after_meal", "bedtime", "night", "unspecified")
MEALS = ("breakfast", "lunch", "dinner", "snack")
FASTING, BEFORE_MEAL, AFTER_MEAL, BEDTIME, NIGHT, UNSPECIFIED = range(6)
NO_MEAL, BREAKFAST, LUNCH, DINNER = -1, 0, 1, 2

NIGHT_END = 5 * 60  # minutes after local midnight
FASTING_CUTOFF = 9 * 60 + 30
BREAKFAST_END = 12 * 60
LUNCH_CUTOFF = 13 * 60
LUNCH_END = 16 * 60
DINNER_CUTOFF = 19 * 60 + 30
DINNER_END = 23 * 60

# Per window (night, breakfast, lunch, dinner, bedtime): its first minute, the cut-off before which the window's
# first reading is taken before the meal, and the contexts and meals of "first before the cut-off" and "other".
_STARTS = np.array([0, NIGHT_END, BREAKFAST_END, LUNCH_END, DINNER_END], dtype=np.int64)
_CUTOFF = np.array([NIGHT_END, FASTING_CUTOFF, LUNCH_CUTOFF, DINNER_CUTOFF, 24 * 60], dtype=np.int64)
_FIRST_CONTEXT = np.array([NIGHT, FASTING, BEFORE_MEAL, BEFORE_MEAL, BEDTIME], dtype=np.int8)
_FIRST_MEAL = np.array([NO_MEAL, NO_MEAL, LUNCH, DINNER, NO_MEAL], dtype=np.int8)
_LATER_CONTEXT = np.array([NIGHT, AFTER_MEAL, AFTER_MEAL, AFTER_MEAL, BEDTIME], dtype=np.int8)
_LATER_MEAL = np.array([NO_MEAL, BREAKFAST, LUNCH, DINNER, NO_MEAL], dtype=np.int8)

# Per minute of the day: its window, and whether it lies before its window's cut-off.
_WINDOW_OF = (np.searchsorted(_STARTS, np.arange(24 * 60), side="right") - 1).astype(np.int8)
_BEFORE_CUTOFF = np.arange(24 * 60) < _CUTOFF[_WINDOW_OF]

# Per code 1440 × (a counted reading of the same window came before) + minute of the day: the context and meal.
_MINUTES = 24 * 60
_FIRST = _BEFORE_CUTOFF & np.ones(_MINUTES, dtype=np.bool_)
_CONTEXT_BY_CODE = np.concatenate(
    [np.where(_FIRST, _FIRST_CONTEXT[_WINDOW_OF], _LATER_CONTEXT[_WINDOW_OF]), _LATER_CONTEXT[_WINDOW_OF]]
).astype(np.int8)
_MEAL_BY_CODE = np.concatenate(
    [np.where(_FIRST, _FIRST_MEAL[_WINDOW_OF], _LATER_MEAL[_WINDOW_OF]), _LATER_MEAL[_WINDOW_OF]]
).astype(np.int8)

Array = npt.NDArray[Any]


def window_of(minute: int) -> int:
    """The window (0 night, 1 breakfast, 2 lunch, 3 dinner, 4 bedtime) of a minute after local midnight."""
    return int(np.searchsorted(_STARTS, minute, side="right")) - 1


def clock_context(minute: int, kind: str) -> tuple[str, str | None]:
    """The context of one reading known alone, ``minute`` after local midnight: the first of its window."""
    if minute < NIGHT_END:
        return "night", None
    if kind == "cgm":
        return "unspecified", None
    w = window_of(minute)
    first = bool(_BEFORE_CUTOFF[minute])
    context = int(_FIRST_CONTEXT[w] if first else _LATER_CONTEXT[w])
    meal = int(_FIRST_MEAL[w] if first else _LATER_MEAL[w])
    return CONTEXTS[context], MEALS[meal] if meal >= 0 else None


def day_contexts(
    group: Array, day: Array, minute: Array, counted: Array, inferred: Array, context: Array, meal: Array
) -> tuple[Array, Array]:
    """Contexts and meals of readings in time order within each ``group`` (a patient), vectorised: the readings
    ``inferred`` and ``counted`` (meter readings that are glucose: not CGM, not control solution) are placed by
    the rules of this module among the counted readings of their local ``day``; the others keep ``context`` and
    ``meal`` (codes). Returns (context, meal).

    Contiguous operations over the counted readings only (no search, no sort): a reading is the first of its
    window when the counted reading before it is of another patient, day or window; its context and meal are then
    one look-up in a table by (minute of the day, first or not)."""
    context = np.array(context, dtype=np.int8, copy=True)
    meal = np.array(meal, dtype=np.int8, copy=True)
    idx = np.flatnonzero(counted)
    if len(idx) == 0:
        return context, meal
    pos = np.flatnonzero(np.asarray(inferred)[idx])  # positions in idx of the readings to place
    if len(pos) == 0:
        return context, meal
    every = len(pos) == len(idx)
    group = np.asarray(group)[idx]
    day = np.asarray(day)[idx]
    minute = np.asarray(minute)[idx].astype(np.int32)
    window = np.take(_WINDOW_OF, minute)
    same_day = np.zeros(len(idx), dtype=np.bool_)  # the counted reading before is of the same patient and day
    np.equal(day[1:], day[:-1], out=same_day[1:])
    same_day[1:] &= group[1:] == group[:-1]
    later = np.zeros(len(idx), dtype=np.bool_)  # the counted reading before is of the same patient, day, window
    np.equal(window[1:], window[:-1], out=later[1:])
    later &= same_day
    code = later.view(np.int8) * np.int32(_MINUTES)  # 1440 × later + minute
    code += minute
    if not every:
        code, idx = code[pos], idx[pos]
    context[idx] = np.take(_CONTEXT_BY_CODE, code)
    meal[idx] = np.take(_MEAL_BY_CODE, code)
    return context, meal


def place_rows(
    rows: Sequence[Mapping[str, Any]], days_minutes: Sequence[tuple[int, int]]
) -> list[tuple[str, str | None]]:
    """``day_contexts`` for a few readings of one patient as mappings (``kind``, ``context``, ``meal``,
    ``context_inferred``, ``flags``) in time order, with their (local day number, minute after local midnight):
    per row its (context, meal)."""
    if not rows:
        return []
    counted = [r["kind"] == "smbg" and "control_solution" not in (r.get("flags") or ()) for r in rows]
    ctx, ml = day_contexts(
        np.zeros(len(rows), dtype=np.int64),
        np.array([dm[0] for dm in days_minutes], dtype=np.int64),
        np.array([dm[1] for dm in days_minutes], dtype=np.int64),
        np.array(counted, dtype=np.bool_),
        np.array([bool(r.get("context_inferred")) for r in rows], dtype=np.bool_),
        np.array([CONTEXTS.index(r["context"]) for r in rows], dtype=np.int8),
        np.array([MEALS.index(r["meal"]) if r.get("meal") in MEALS else NO_MEAL for r in rows], dtype=np.int8),
    )
    return [(CONTEXTS[c], MEALS[m] if m >= 0 else None) for c, m in zip(ctx.tolist(), ml.tolist(), strict=True)]
