"""The treatment plan: what a patient's diabetologist prescribes (diet, metformin, insulin regimens), dated and
versioned.

A plan is never edited: every change is a new version with who made it, when and why, so that the history of
doses stays beside the readings it was judged on. The plan in force is the newest version. ``patients.treatment``
(the word the engine reads to choose targets and rules) is written in the same transaction as each new version,
so that the two can never disagree. The hospital API and the dashboard both change a plan through
``new_version``, with the same checks and the same audit record."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg

from telemon import audit
from telemon import treatment_queries as queries
from telemon.db import Conn
from telemon.patients import TREATMENTS, FieldError

# Insulin pens and syringes dose in whole or half units; 100 U in one injection is far beyond any GDM regimen
# (basal needs in GDM are typically 0.1–0.3 U/kg/day: Brown et al., Cochrane Database Syst Rev 2017;11:CD012037),
# so more is a typing error.
UNITS_MIN, UNITS_MAX, UNITS_STEP = Decimal("0.5"), Decimal("100"), Decimal("0.5")
# Metformin in pregnancy: started at 500 mg and raised to at most 2500–3000 mg a day (NICE NG3, 2015, 1.3.8;
# Rowan et al., MiG trial, N Engl J Med 2008;358:2003-15, maximum 2500 mg); 250 mg is the smallest dose a
# prescription says (half a 500 mg tablet) and 3000 mg the labelled daily maximum.
METFORMIN_MIN_MG, METFORMIN_MAX_MG = 250, 3000
# The products a French or British maternity unit prescribes most; anything else is typed (at most 40 characters).
BASAL_PRODUCTS = ("NPH", "Insulatard", "Umuline NPH", "Humulin I", "Levemir", "Lantus", "Abasaglar")
PRANDIAL_PRODUCTS = ("NovoRapid", "Humalog", "Apidra", "Fiasp", "Actrapid", "Umuline Rapide")
PRODUCT_MAX_CHARS = 40
TEXT_MAX_CHARS = 2000
MEALS = ("breakfast", "lunch", "dinner")
HISTORY_LIMIT = 200
_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


@dataclass(frozen=True)
class Basal:
    product: str
    units: float
    time: str  # HH:MM, the patient's local time


@dataclass(frozen=True)
class Plan:
    """One version of a patient's plan, as asked for (``version`` 0) or as stored."""

    treatment: str
    metformin_mg: int | None = None
    metformin_times: tuple[str, ...] = ()
    basal: Basal | None = None
    prandial_product: str | None = None
    prandial: dict[str, float] = field(default_factory=dict)  # meal → units, only the meals with a dose
    instruction: str = ""
    note: str = ""
    version: int = 0
    created_by: str = ""
    created_at: dt.datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "treatment": self.treatment,
            "metformin_mg": self.metformin_mg,
            "metformin_times": list(self.metformin_times),
            "basal": None
            if self.basal is None
            else {"product": self.basal.product, "units": self.basal.units, "time": self.basal.time},
            "prandial": dict(self.prandial) or None,
            "prandial_product": self.prandial_product,
            "instruction": self.instruction,
            "note": self.note,
            "created_by": self.created_by,
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
        }


def _refuse(name: str, code: str, message: str, **params: object) -> FieldError:
    return FieldError(name, f"treatment.{code}", f"{name}: {message}", **params)


def check_units(value: float, name: str) -> float:
    try:
        units = Decimal(str(value))
    except ArithmeticError:
        raise _refuse(name, "units", f"{value!r} is not a number of units") from None
    if not units.is_finite() or not UNITS_MIN <= units <= UNITS_MAX or units % UNITS_STEP != 0:
        raise _refuse(
            name,
            "units",
            f"{value} U: a dose is {UNITS_MIN} to {UNITS_MAX} units in steps of {UNITS_STEP}",
            low=float(UNITS_MIN),
            high=float(UNITS_MAX),
        )
    return float(units)


def check_time(value: str, name: str) -> str:
    if not isinstance(value, str) or not _TIME.match(value):
        raise _refuse(name, "time", f"{value!r} is not a time of day as HH:MM (for example 22:00)")
    return value


def check_product(value: str | None, name: str) -> str:
    text = (value or "").strip()
    if not text or len(text) > PRODUCT_MAX_CHARS or any(not c.isprintable() for c in text):
        raise _refuse(
            name, "product", f"a product is named in 1 to {PRODUCT_MAX_CHARS} printable characters (for example NPH)"
        )
    return text


def _check_text(value: str, name: str) -> str:
    if len(value) > TEXT_MAX_CHARS or any(not c.isprintable() and c not in "\n\r\t" for c in value):
        raise _refuse(name, "text", f"at most {TEXT_MAX_CHARS} characters, without control characters")
    return value.strip()


def check_plan(plan: Plan) -> Plan:
    """The plan as it will be stored, or ``FieldError`` naming the first field refused: the treatment is one of
    diet, metformin, insulin; metformin has a dose (and only metformin); insulin has a basal or a prandial regimen
    (and only insulin)."""
    if plan.treatment not in TREATMENTS:
        raise _refuse("treatment", "choice", f"{plan.treatment!r} is not one of {', '.join(TREATMENTS)}")
    metformin_mg, times = plan.metformin_mg, tuple(check_time(t, "metformin_times") for t in plan.metformin_times)
    if plan.treatment == "metformin":
        if metformin_mg is None or not METFORMIN_MIN_MG <= metformin_mg <= METFORMIN_MAX_MG:
            raise _refuse(
                "metformin_mg",
                "metformin",
                f"{metformin_mg} mg: metformin is {METFORMIN_MIN_MG} to {METFORMIN_MAX_MG} mg a day",
                low=METFORMIN_MIN_MG,
                high=METFORMIN_MAX_MG,
            )
    elif metformin_mg is not None or times:
        raise _refuse("metformin_mg", "not_metformin", "a dose of metformin needs the treatment metformin")
    basal = plan.basal
    if basal is not None:
        basal = Basal(
            check_product(basal.product, "basal.product"),
            check_units(basal.units, "basal.units"),
            check_time(basal.time, "basal.time"),
        )
    prandial = {meal: check_units(units, f"prandial.{meal}") for meal, units in plan.prandial.items()}
    if set(prandial) - set(MEALS):
        raise _refuse("prandial", "meal", f"meals are {', '.join(MEALS)}")
    product = check_product(plan.prandial_product, "prandial_product") if plan.prandial_product else None
    if plan.treatment == "insulin":
        if basal is None and not prandial:
            raise _refuse("basal", "no_insulin", "an insulin plan needs a basal or a prandial regimen")
    elif basal is not None or prandial:
        raise _refuse("treatment", "not_insulin", "insulin doses need the treatment insulin")
    return Plan(
        treatment=plan.treatment,
        metformin_mg=metformin_mg,
        metformin_times=times,
        basal=basal,
        prandial_product=product if prandial else None,
        prandial={meal: prandial[meal] for meal in MEALS if meal in prandial},
        instruction=_check_text(plan.instruction, "instruction"),
        note=_check_text(plan.note, "note"),
    )


def _plan(row: asyncpg.Record) -> Plan:
    basal = None
    if row["basal_units"] is not None:
        basal = Basal(row["basal_product"], float(row["basal_units"]), row["basal_time"].strftime("%H:%M"))
    prandial = {meal: float(row[f"prandial_{meal}"]) for meal in MEALS if row[f"prandial_{meal}"] is not None}
    return Plan(
        treatment=row["treatment"],
        metformin_mg=row["metformin_mg"],
        metformin_times=tuple(row["metformin_times"]),
        basal=basal,
        prandial_product=row["prandial_product"],
        prandial=prandial,
        instruction=row["instruction"],
        note=row["note"],
        version=row["version"],
        created_by=row["created_by"],
        created_at=row["created_at"],
    )


async def current_plan(conn: Conn | asyncpg.Pool, patient_id: uuid.UUID) -> Plan | None:
    """The plan in force: the newest version, or None for a patient whose plan was never written (her treatment
    is then only the word of her record)."""
    row = await conn.fetchrow(queries.CURRENT_PLAN, patient_id)
    return None if row is None else _plan(row)


async def history(conn: Conn | asyncpg.Pool, patient_id: uuid.UUID, limit: int = HISTORY_LIMIT) -> list[Plan]:
    """Every version, newest first."""
    return [_plan(row) for row in await conn.fetch(queries.PLAN_HISTORY, patient_id, limit)]


async def check_treatment_change(conn: Conn | asyncpg.Pool, patient_id: uuid.UUID, treatment: str) -> None:
    """A patient's treatment follows her plan once she has one: changing the word alone (a record's form, the
    hospital API's PATCH) would leave the plan in force saying another thing; it is refused, and the change is a
    new version of the plan. Without a plan, the word is all there is and may change."""
    plan = await current_plan(conn, patient_id)
    if plan is not None and plan.treatment != treatment:
        raise _refuse(
            "treatment",
            "follows_plan",
            f"the treatment follows the plan in force ({plan.treatment}): write a new version of the plan",
            plan=plan.treatment,
        )


class PlanRefused(Exception):
    """The patient cannot take a new plan: there is no such patient, she is archived (read-only), or the plan in
    force is no longer the version the change was made from."""

    def __init__(self, reason: str, in_force: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason  # 'missing', 'archived' or 'changed'
        self.in_force = in_force  # 'changed': the version in force (None: no plan)


async def new_version(
    conn: Conn,
    patient_id: uuid.UUID,
    plan: Plan,
    *,
    actor: str,
    detail: dict[str, Any] | None = None,
    from_version: int | None = None,
) -> Plan:
    """Write ``plan`` (checked first: ``FieldError`` names the refused field) as the patient's newest version, in
    force from now, set her record's treatment to its treatment, and audit both, in one transaction.

    ``from_version``: the change was made from that version (a dose suggestion computed on it); if another version
    came into force meanwhile, nothing is written (``PlanRefused('changed')``), judged under the patient's lock so
    that two changes made from one version cannot both pass."""
    checked = check_plan(plan)
    async with conn.transaction():
        locked = await conn.fetchrow(queries.LOCK_PATIENT_TREATMENT, patient_id)
        if locked is None:
            raise PlanRefused("missing")
        if locked["archived_at"] is not None:
            raise PlanRefused("archived")
        if from_version is not None:
            in_force = await conn.fetchval(queries.VERSION_IN_FORCE, patient_id)
            if in_force != from_version:
                raise PlanRefused("changed", in_force)
        basal = checked.basal
        row = await conn.fetchrow(
            queries.INSERT_PLAN,
            patient_id,
            checked.treatment,
            checked.metformin_mg,
            list(checked.metformin_times),
            None if basal is None else basal.product,
            None if basal is None else Decimal(str(basal.units)),
            None if basal is None else dt.time.fromisoformat(basal.time),
            checked.prandial_product,
            *(_decimal(checked.prandial.get(meal)) for meal in MEALS),
            checked.instruction,
            checked.note,
            actor,
        )
        assert row is not None  # an INSERT … SELECT over an aggregate always makes its row
        stored = _plan(row)
        if locked["treatment"] != stored.treatment:
            await conn.execute(queries.SET_PATIENT_TREATMENT, patient_id, stored.treatment)
        await audit.record(
            conn,
            actor=actor,
            action="treatment.plan",
            patient_id=patient_id,
            detail={**(detail or {}), "plan": {k: v for k, v in stored.as_json().items() if k != "created_at"}},
        )
    return stored


def _decimal(units: float | None) -> Decimal | None:
    return None if units is None else Decimal(str(units))
