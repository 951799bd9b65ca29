"""A dose review suggestion, applied or dismissed: the one way the dashboard and the hospital API act on a
``dose_review`` alert.

Apply writes the suggested dose as a new version of the treatment plan through ``telemon.treatment.new_version``
(the same checks and audit as any other change of the plan) and resolves the alert through ``alerts.actions.act``
(audited), in one transaction. The suggestion was computed on one version of the plan (``params.plan_version``):
if another came into force meanwhile, or the dose it names is no longer the plan's, nothing is written and the
caller says so — a clinician applying a suggestion made for a plan that is gone would prescribe from stale
figures. Where the version came from is stored as facts (the alert, the slot, the doses) in the plan's audit
record (``detail.dose_review``) and the alert's (``detail.applied``), never as text: the dashboard renders it in
the reader's language. Dismiss is the alert's resolve, by the person who dismissed it."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from alerts import actions, queries
from telemon import treatment
from telemon.db import Conn
from telemon.patients import FieldError

RULE = "dose_review"
BASAL = "basal"
SLOTS = (BASAL, *treatment.MEALS)


class ApplyRefused(Exception):
    """Nothing was written. ``reason``: ``missing`` (no such alert among the teams), ``not_dose_review``,
    ``not_open`` (already resolved), ``plan_changed`` (``in_force``: the version in force now, None without a
    plan), ``archived`` (monitoring ended), or ``invalid`` (the suggestion's dose is refused by the plan's checks:
    ``field`` and ``message``)."""

    def __init__(self, reason: str, alert_id: int, **facts: Any) -> None:
        super().__init__(f"alert {alert_id}: {reason}")
        self.reason, self.alert_id, self.facts = reason, alert_id, facts


@dataclass(frozen=True)
class Suggestion:
    """What a ``dose_review`` alert suggests, read from its params."""

    slot: str
    product: str | None
    current_units: float
    suggested_units: float
    plan_version: int

    @property
    def change(self) -> str:
        return "increase" if self.suggested_units > self.current_units else "reduction"


def suggestion_of(params: Mapping[str, Any] | None) -> Suggestion | None:
    """The suggestion an alert's params hold, or None when they do not hold a whole one (an alert of another rule,
    or one whose params lack a figure)."""
    params = params or {}
    slot, current, suggested = (
        params.get("slot"),
        _number(params.get("current_units")),
        _number(params.get("suggested_units")),
    )
    version, product = params.get("plan_version"), params.get("product")
    if slot not in SLOTS or current is None or suggested is None:
        return None
    if not isinstance(version, int) or isinstance(version, bool):
        return None
    return Suggestion(str(slot), product if isinstance(product, str) else None, current, suggested, version)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def dose_of(plan: treatment.Plan, slot: str) -> float | None:
    """The plan's dose at ``slot`` (the basal's units, or a meal's prandial units), None when it has none."""
    if slot == BASAL:
        return None if plan.basal is None else plan.basal.units
    return plan.prandial.get(slot)


def with_dose(plan: treatment.Plan, slot: str, units: float) -> treatment.Plan:
    """A new version asked for: ``plan`` with the dose at ``slot`` set to ``units``, everything else as it was
    (the instruction kept; the note is the new version's own, empty)."""
    if slot == BASAL:
        assert plan.basal is not None
        changed = dataclasses.replace(plan, basal=dataclasses.replace(plan.basal, units=units))
    else:
        changed = dataclasses.replace(plan, prandial={**plan.prandial, slot: units})
    return dataclasses.replace(changed, note="", version=0, created_by="", created_at=None)


@dataclass(frozen=True)
class Applied:
    alert: asyncpg.Record  # the alert as resolved
    plan: treatment.Plan  # the version written
    suggestion: Suggestion


async def apply(
    conn: Conn, alert_id: int, team_ids: Sequence[uuid.UUID], actor: str, *, by: Mapping[str, Any] | None = None
) -> Applied:
    """Apply dose review alert ``alert_id`` (of a patient of ``team_ids``) as ``actor``: the new plan version and
    the alert resolved, in one transaction, or ``ApplyRefused`` and nothing written. ``by``: what the caller adds to
    the plan's audit record (the API key's details)."""
    async with conn.transaction():
        row = await conn.fetchrow(queries.LOCK_ALERT_OF_TEAMS, alert_id, list(team_ids))
        if row is None:
            raise ApplyRefused("missing", alert_id)
        if row["rule"] != RULE:
            raise ApplyRefused("not_dose_review", alert_id, rule=row["rule"])
        if row["status"] == "resolved":
            raise ApplyRefused("not_open", alert_id, status=row["status"])
        suggestion = suggestion_of(row["params"])
        if suggestion is None:
            raise ApplyRefused("not_dose_review", alert_id, rule=row["rule"])
        patient_id = row["patient_id"]
        plan = await treatment.current_plan(conn, patient_id)
        in_force = None if plan is None else plan.version
        if plan is None or plan.version != suggestion.plan_version or dose_of(plan, suggestion.slot) is None:
            raise ApplyRefused("plan_changed", alert_id, in_force=in_force, suggested_on=suggestion.plan_version)
        if dose_of(plan, suggestion.slot) != suggestion.current_units:
            raise ApplyRefused("plan_changed", alert_id, in_force=in_force, suggested_on=suggestion.plan_version)
        origin = {
            "alert_id": alert_id,
            "slot": suggestion.slot,
            "current_units": suggestion.current_units,
            "suggested_units": suggestion.suggested_units,
        }
        try:
            written = await treatment.new_version(
                conn,
                patient_id,
                with_dose(plan, suggestion.slot, suggestion.suggested_units),
                actor=actor,
                detail={**(by or {}), "dose_review": origin},
                from_version=suggestion.plan_version,
            )
        except treatment.PlanRefused as refused:
            if refused.reason == "changed":
                raise ApplyRefused(
                    "plan_changed", alert_id, in_force=refused.in_force, suggested_on=suggestion.plan_version
                ) from None
            raise ApplyRefused(refused.reason, alert_id) from None
        except FieldError as refused:
            raise ApplyRefused("invalid", alert_id, field=refused.field, message=str(refused)) from None
        resolved = await actions.act(
            conn, alert_id, "resolve", actor, detail={"applied": {**origin, "plan_version": written.version}}
        )
        assert resolved is not None  # locked above and not resolved: the resolve takes it
    return Applied(resolved, written, suggestion)
