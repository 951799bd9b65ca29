"""A care team's basal titration protocol: how the ``dose_review`` rule turns the last days' fasting readings (and a
hypoglycaemia on insulin) into a suggested dose. The engine only suggests: a clinician applies a suggestion by
writing a new version of the patient's treatment plan (telemon.treatment), never the engine.

Each team may set its own protocol (table ``team_titration``, audited); a team without one follows :data:`DEFAULT`.

The default, cited:

- increase: **2 units every 3 days while the fasting glucose stays above target** — the patient-led algorithm of
  the AT.LANTUS trial (Davies M, Storms F, Shutler S, Bianchi-Biscay M, Gomis R. Improvement of glycemic control in
  subjects with poorly controlled type 2 diabetes: comparison of two treatment algorithms using insulin glargine.
  Diabetes Care 2005;28(6):1282–1288: "increase by 2 IU every 3 days if fasting glucose > 5.5 mmol/L"). In
  pregnancy the target is the patient's own fasting target (her profile: 95 mg/dL FR/ADA, 5.3 mmol/L NICE), not
  the trial's 5.5 mmol/L; "above target on 3 of the last 3 days" is the trial's "every 3 days" read on the
  fasting readings a GDM patient sends daily.
- the trial's step is fixed, so a cap only matters for a percentage step a team chooses: 4 units (two of the
  trial's steps) is the house's cap, a team setting.
- reduction: **10 % of the dose that preceded an unexplained hypoglycaemia** — the lower bound of "if no clear
  reason for hypoglycemia, lower dose by 10–20 %" (ADA Standards of Care in Diabetes—2024, section 9, figure 9.4,
  Diabetes Care 2024;47(Suppl 1):S158–S178).

Doses are rounded to half units (what pens dose, telemon.treatment.UNITS_STEP)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from alerts import queries
from telemon import audit
from telemon.db import Conn
from telemon.patients import FieldError

# The bounds a team may choose (also the checks of table team_titration): a step or a reduction of at most 10 units
# or 30 % / 50 % at once; a window of at most 14 days (the engine's window, alerts.load.WINDOW).
STEP_UNITS_MAX = 10.0
STEP_PERCENT_MAX = 30.0
REDUCTION_PERCENT_MAX = 50.0
WINDOW_DAYS_MAX = 14


@dataclass(frozen=True)
class Protocol:
    """One team's titration protocol. ``step_units`` and ``step_percent`` (of the current dose): the increase is
    the larger of those given; likewise the reduction after a hypoglycaemia. Every change is rounded to half units
    and capped by ``max_step_units``. An increase is suggested when the fasting readings were above target on at
    least ``days_required`` of the last ``window_days`` days (today included)."""

    step_units: float | None = 2.0
    step_percent: float | None = None
    window_days: int = 3
    days_required: int = 3
    max_step_units: float = 4.0
    reduction_percent: float | None = 10.0
    reduction_units: float | None = None
    suggestions_enabled: bool = True

    def as_json(self) -> dict[str, Any]:
        """Typed values, as the dose_review alert's ``protocol`` param and the settings page hold them."""
        return asdict(self)


DEFAULT = Protocol()
DEFAULT_SOURCE = (
    "Davies et al., Diabetes Care 2005;28:1282-8 (AT.LANTUS: +2 U every 3 days while fasting above target); "
    "ADA Standards of Care 2024, section 9 (lower by 10-20 % after unexplained hypoglycaemia)"
)


def _refuse(name: str, message: str, **params: object) -> FieldError:
    return FieldError(name, f"titration.{name}", f"{name}: {message}", **params)


def _half_units(value: float | None, name: str, *, optional: bool) -> float | None:
    if value is None and optional:
        return None
    if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _refuse(name, f"{value!r} is not a number of units", low=0.5, high=STEP_UNITS_MAX)
    if not 0.5 <= value <= STEP_UNITS_MAX or Decimal(str(value)) % Decimal("0.5") != 0:
        raise _refuse(name, f"{value} U: 0.5 to {STEP_UNITS_MAX:g} units in half units", low=0.5, high=STEP_UNITS_MAX)
    return float(value)


def _percent(value: float | None, name: str, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _refuse(name, f"{value!r} is not a percentage", low=1, high=high)
    if not 1 <= value <= high or Decimal(str(value)) % Decimal("0.1") != 0:
        raise _refuse(name, f"{value} %: 1 to {high:g} % (one decimal)", low=1, high=high)
    return float(value)


def _days(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= WINDOW_DAYS_MAX:
        raise _refuse(name, f"{value!r}: a whole number of days, 1 to {WINDOW_DAYS_MAX}", low=1, high=WINDOW_DAYS_MAX)
    return value


def check(protocol: Protocol) -> Protocol:
    """The protocol as it will be stored, or :class:`~telemon.patients.FieldError` naming the first field refused
    (``field`` is the dataclass field, ``code`` ``titration.<field>``, ``params`` the bounds ``low``/``high``)."""
    step_units = _half_units(protocol.step_units, "step_units", optional=True)
    step_percent = _percent(protocol.step_percent, "step_percent", STEP_PERCENT_MAX)
    if step_units is None and step_percent is None:
        raise _refuse("step_units", "an increase needs a step in units or in percent", low=0.5, high=STEP_UNITS_MAX)
    window = _days(protocol.window_days, "window_days")
    required = _days(protocol.days_required, "days_required")
    if required > window:
        raise _refuse("days_required", f"{required} days: at most the window ({window} days)", low=1, high=window)
    max_step = _half_units(protocol.max_step_units, "max_step_units", optional=False)
    assert max_step is not None
    reduction_percent = _percent(protocol.reduction_percent, "reduction_percent", REDUCTION_PERCENT_MAX)
    reduction_units = _half_units(protocol.reduction_units, "reduction_units", optional=True)
    if reduction_units is None and reduction_percent is None:
        raise _refuse("reduction_percent", "a reduction needs a percentage or units", low=1, high=REDUCTION_PERCENT_MAX)
    if not isinstance(protocol.suggestions_enabled, bool):
        raise _refuse("suggestions_enabled", "true or false")
    return Protocol(
        step_units=step_units,
        step_percent=step_percent,
        window_days=window,
        days_required=required,
        max_step_units=max_step,
        reduction_percent=reduction_percent,
        reduction_units=reduction_units,
        suggestions_enabled=protocol.suggestions_enabled,
    )


def half_up(units: float) -> float:
    """Rounded to the nearest half unit, halves up (1.25 → 1.5)."""
    return math.floor(units * 2 + 0.5) / 2


def increase(protocol: Protocol, current: float) -> float:
    """The suggested dose after ``current`` units when the fasting readings stayed above target."""
    step = max(protocol.step_units or 0.0, current * (protocol.step_percent or 0.0) / 100)
    return current + min(max(half_up(step), 0.5), protocol.max_step_units)


def reduction(protocol: Protocol, current: float) -> float:
    """The suggested dose after ``current`` units preceded a hypoglycaemia (never below zero)."""
    step = max(protocol.reduction_units or 0.0, current * (protocol.reduction_percent or 0.0) / 100)
    return max(current - min(max(half_up(step), 0.5), protocol.max_step_units), 0.0)


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def from_row(row: asyncpg.Record | dict[str, Any] | None) -> Protocol:
    """A stored row (``team_titration``'s columns; None: the team has none) as a protocol."""
    if row is None or row["window_days"] is None:
        return DEFAULT
    return Protocol(
        step_units=_float(row["step_units"]),
        step_percent=_float(row["step_percent"]),
        window_days=int(row["window_days"]),
        days_required=int(row["days_required"]),
        max_step_units=float(row["max_step_units"]),
        reduction_percent=_float(row["reduction_percent"]),
        reduction_units=_float(row["reduction_units"]),
        suggestions_enabled=bool(row["suggestions_enabled"]),
    )


async def load(conn: Conn | asyncpg.Pool, team_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Protocol]:
    """Every team of ``team_ids``'s protocol: its own, or :data:`DEFAULT`."""
    rows = {r["team_id"]: r for r in await conn.fetch(queries.TEAM_TITRATION, list(team_ids))}
    return {team_id: from_row(rows.get(team_id)) for team_id in team_ids}


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


async def save(conn: Conn, team_id: uuid.UUID, protocol: Protocol, actor: str) -> Protocol:
    """Check ``protocol`` (``FieldError`` names the refused field) and store it as the team's, audited
    (``titration.protocol``, with the team and the protocol), in one transaction. Returns what is stored."""
    checked = check(protocol)
    async with conn.transaction():
        await conn.execute(
            queries.SAVE_TEAM_TITRATION,
            team_id,
            _decimal(checked.step_units),
            _decimal(checked.step_percent),
            checked.window_days,
            checked.days_required,
            _decimal(checked.max_step_units),
            _decimal(checked.reduction_percent),
            _decimal(checked.reduction_units),
            checked.suggestions_enabled,
            actor,
        )
        await audit.record(
            conn,
            actor=actor,
            action="titration.protocol",
            detail={"team_id": str(team_id), "protocol": checked.as_json()},
        )
    return checked
