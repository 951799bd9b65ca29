"""Dose review suggestions on the patient page: what each suggests (the dose in force and the suggested one, the
plan version it was computed on, the protocol's line), and Apply in one click.

Apply goes through ``alerts.dose_review.apply``, the one way the dashboard and the hospital API apply a suggestion:
a new version of the plan through ``telemon.treatment`` (its checks and audit) and the alert resolved through
``alerts.actions`` (audited), in one transaction. A suggestion computed on a plan that has changed since is
refused with a page that says so, and nothing is written. Applying is prescribing: diabetologists and
administrators only, like the plan's own form (``Clinician.can_prescribe``). Dismiss is the alert's resolve
(``/alerts/{id}/resolve``), offered beside Apply to the same people."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from alerts import dose_review
from clinician_ui import queries, sessions, web
from clinician_ui.i18n import Formatter
from clinician_ui.sessions import Clinician
from clinician_ui.titration_page import protocol_line
from telemon import treatment
from telemon.db import Conn

router = APIRouter(include_in_schema=False)

MAX_ALERT_ID = 2**63 - 1  # alert ids are bigint


@dataclass(frozen=True)
class SuggestionView:
    """One dose review alert as its card shows it."""

    alert_id: int
    slot: str
    product: str
    current: str  # units, in the clinician's decimal mark
    suggested: str
    change: str  # increase | reduction
    plan_version: int
    in_force: int | None  # the plan version in force now
    protocol: str  # the protocol's line in the clinician's language
    source: str
    applied_version: int | None  # the plan version this suggestion wrote, once applied

    @property
    def stale(self) -> bool:
        return self.in_force != self.plan_version


def units(value: float, fmt: Formatter) -> str:
    return fmt.num(value, 0 if float(value).is_integer() else 1)


async def applied_versions(db: Conn | asyncpg.Pool, patient_id: uuid.UUID) -> dict[int, int]:
    """Alert id → the plan version its suggestion wrote, for the patient's applied suggestions."""
    rows = await db.fetch(queries.DOSE_REVIEWS_APPLIED, patient_id)
    return {r["alert_id"]: r["version"] for r in rows if r["alert_id"] is not None}


def views(
    alerts: Iterable[asyncpg.Record | Mapping[str, Any]],
    plan: treatment.Plan | None,
    applied: Mapping[int, int],
    fmt: Formatter,
) -> dict[int, SuggestionView]:
    """The dose review alerts among ``alerts`` (rows with ``id``, ``rule``, ``params``) as their cards show them,
    judged against ``plan``, the plan in force."""
    shown: dict[int, SuggestionView] = {}
    for alert in alerts:
        if alert["rule"] != dose_review.RULE:
            continue
        params = alert["params"] or {}
        found = dose_review.suggestion_of(params)
        if found is None:
            continue
        product = found.product or ""
        if not product and plan is not None:
            product = (
                (plan.basal.product if plan.basal else "") if found.slot == "basal" else plan.prandial_product or ""
            )
        shown[alert["id"]] = SuggestionView(
            alert_id=alert["id"],
            slot=found.slot,
            product=product,
            current=units(found.current_units, fmt),
            suggested=units(found.suggested_units, fmt),
            change=found.change,
            plan_version=found.plan_version,
            in_force=None if plan is None else plan.version,
            protocol=protocol_line(params.get("protocol"), found.change, fmt),
            source=str(params.get("source") or "")
            if params.get("protocol_default", True)
            else fmt.t("dose_review.team_protocol"),
            applied_version=applied.get(alert["id"]),
        )
    return shown


@router.post("/dose-review/{alert_id}/apply", response_model=None)
async def apply(alert_id: int, request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    """Apply the suggestion of dose review alert ``alert_id``; then the plan page, with the new version in force."""
    await web.form_of(request, who)
    if not who.can_prescribe:
        raise web.PageError(403, "treatment.readonly")
    if not 1 <= alert_id <= MAX_ALERT_ID:
        raise web.PageError(404, "error.not_found")
    async with web.connection(request) as db:
        try:
            done = await dose_review.apply(db, alert_id, who.team_ids, who.actor)
        except dose_review.ApplyRefused as refused:
            if refused.reason == "missing":
                raise web.PageError(404, "error.not_found") from None
            found = await db.fetchrow(queries.ALERT_IN_TEAMS, alert_id, list(who.team_ids))
            return _refused(request, who, refused, None if found is None else found["patient_id"])
    await sessions.flash(web.pool(request), who, "dose_review.applied_flash")
    return web.redirect(f"/patients/{done.alert['patient_id']}/treatment#plan-history")


def _refused(
    request: Request, who: Clinician, refused: dose_review.ApplyRefused, patient_id: uuid.UUID | None
) -> Response:
    """The page of a suggestion not applied: why, in the clinician's language, and the way to the plan in force."""
    fmt = web.formatter(who)
    facts = dict(refused.facts)
    if refused.reason == "plan_changed" and facts.get("in_force") is None:
        facts["in_force"] = fmt.t("dose_review.none_in_force")
    context = {
        "reason": refused.reason,
        "message": fmt.t(f"dose_review.refused.{refused.reason}", **facts),
        "patient_id": patient_id,
    }
    return web.render(request, "dose_review_refused.html", context, who=who, status_code=409)
