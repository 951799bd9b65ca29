"""The alerts API for integrations (API keys): list, acknowledge, snooze, resolve, and apply a dose review.

Each alert comes with its message as facts (``code`` and ``params``: glucose in mg/dL, instants in UTC) and as text
rendered in the language the request accepts (``Accept-Language``) and the glucose unit it asks for (``?unit=``):
an integration may show the text, or render the facts itself."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query
from pydantic import BaseModel, Field

from alerts import actions, dose_review, messages, queries
from alerts.severity import SEVERITY_RANK, Severity
from telemon import audit, units
from telemon.api_keys import ApiKey
from telemon.auth import api_key, pool
from telemon.pagination import cursor_instant, cursor_int, cursor_int32, decode_cursor, envelope, limit_param

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

Status = Literal["open", "acknowledged", "resolved"]
Unit = Literal["mg/dL", "mmol/L", "g/L"]
# The list's first sort key: most urgent first (the negated position of LIST_ALERTS' order, urgent -3 … info -1).
SEVERITY_ORDER = {severity: -(rank + 1) for severity, rank in SEVERITY_RANK.items()}
BEGINNING: list[Any] = [-(len(SEVERITY_RANK) + 1), dt.datetime(1970, 1, 1, tzinfo=dt.UTC), 0]
# An alert id as the path gives it: a bigint, so that a larger number is a 422 rather than an overflow.
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the alert's id")]
UnitParam = Annotated[Unit, Query(description="The glucose unit of the rendered texts (params stay in mg/dL).")]
AcceptLanguage = Annotated[
    str | None,
    Header(description="The language of the rendered text (en or fr; English when none of those is accepted)."),
]


class AlertOut(BaseModel):
    """An alert: what fired (``rule``, ``severity``), its message as facts (``code``, ``params``) and as text."""

    id: int
    patient_id: uuid.UUID
    rule: str
    severity: Severity
    status: Status
    episode: str = Field(description="One open alert per (patient, rule, episode); new evidence updates it.")
    opened_at: str
    updated_at: str
    acknowledged_at: str | None
    acknowledged_by: str | None
    snoozed_until: str | None
    resolved_at: str | None
    resolved_by: str | None
    resolved_reason: str | None = Field(
        description='Why the system resolved it: "cleared" (the condition ended), "delivered" (monitoring ended),'
        ' "archived" (the patient was archived), "postpartum_test" (the postpartum test it reminded of was recorded);'
        " null for a person's or an integration's resolution."
    )
    code: str | None = Field(
        description="The message's code (the rule's name, or rule.variant); null for an alert stored before codes"
        " existed, whose text is its stored one."
    )
    params: dict[str, Any] | None = Field(
        description="The values the message states: glucose in mg/dL (*_mgdl), instants in UTC ISO 8601 (*_at)"
        " beside the patient's wall-clock time (*_local), dates, counts, percentages, thresholds and their source."
    )
    language: str = Field(description="The language of ``text`` (from Accept-Language).")
    unit: Unit = Field(description="The glucose unit of ``text`` and ``message``.")
    text: str = Field(description="The message in ``language`` and ``unit``.")
    message: dict[str, str] = Field(description="The message in every language, in ``unit``.")
    evidence: dict[str, Any] = Field(description="The readings and figures the rule judged.")
    folded_episodes: int = Field(
        description="Later episodes of the same rule while this alert was open: counted, not new alerts."
    )
    folded_reading_ids: list[int]
    folded_last_at: str | None


class AlertsPage(BaseModel):
    items: list[AlertOut]
    next: str | None = Field(description="The cursor of the next page, or null on the last one.")


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def alert_out(row: asyncpg.Record, language: str = "en", unit: str = units.MGDL) -> dict[str, Any]:
    """An alert as the API answers it, its message rendered in ``language`` and ``unit``."""
    code, params, stored = row["code"], row["params"], row["message"]
    texts = messages.render_all(code, params, unit, fallback=stored, cite_rule=True)
    return {
        "id": row["id"],
        "patient_id": str(row["patient_id"]),
        "rule": row["rule"],
        "severity": row["severity"],
        "status": row["status"],
        "episode": row["episode_key"],
        "opened_at": _iso(row["opened_at"]),
        "updated_at": _iso(row["updated_at"]),
        "acknowledged_at": _iso(row["acknowledged_at"]),
        "acknowledged_by": row["acknowledged_by"],
        "snoozed_until": _iso(row["snoozed_until"]),
        "resolved_at": _iso(row["resolved_at"]),
        "resolved_by": row["resolved_by"],
        "resolved_reason": row["resolved_reason"],
        "code": code,
        "params": params,
        "language": language,
        "unit": unit,
        "text": texts.get(language, texts["en"]),
        "message": texts,
        "evidence": row["evidence"],
        "folded_episodes": row["folded_episodes"],
        "folded_reading_ids": list(row["folded_reading_ids"] or []),
        "folded_last_at": _iso(row["folded_last_at"]),
    }


@router.get("", summary="Alerts, most urgent first, then oldest", response_model=AlertsPage)
async def list_alerts(
    patient_id: uuid.UUID | None = None,
    status: Status | None = None,
    rule: str | None = Query(None, pattern=r"^[^\x00]*$", description="a rule's name"),
    severity: Severity | None = None,
    limit: int = Depends(limit_param),
    cursor: str | None = Query(None),
    unit: UnitParam = "mg/dL",
    accept_language: AcceptLanguage = None,
    key: ApiKey = Depends(api_key("alerts:read")),
    db: asyncpg.Pool = Depends(pool),
) -> dict[str, Any]:
    rank, opened_at, after_id = decode_cursor(cursor, cursor_int32, cursor_instant, cursor_int) or BEGINNING
    rows = await db.fetch(
        queries.LIST_ALERTS,
        patient_id,
        status,
        rule,
        severity,
        rank,
        opened_at,
        after_id,
        limit + 1,
        list(key.team_ids),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    # One row per request naming the patients whose alerts were shown. A patient_id of another team lists nothing,
    # exactly like one that does not exist (200, no items); the row still keeps what was asked for.
    await audit.record(
        db,
        actor=f"api_key:{key.id}",
        action="alerts.read",
        patient_id=patient_id,
        patient_ids=[r["patient_id"] for r in rows],
        detail={"count": len(rows)},
    )
    next_position = (
        [SEVERITY_ORDER[last["severity"]], last["opened_at"].isoformat(), last["id"]] if last is not None else None
    )
    language = messages.language_of(accept_language)
    return envelope([alert_out(r, language, unit) for r in rows], next_position)


class SnoozeBody(BaseModel):
    until: dt.datetime = Field(description="ISO 8601 with an offset; the alert stays out of the open list until then")


async def _act(
    db: asyncpg.Pool,
    alert_id: int,
    key: ApiKey,
    action: actions.Action,
    language: str,
    unit: str,
    until: dt.datetime | None = None,
) -> dict[str, Any]:
    actor = f"api_key:{key.id}"
    async with db.acquire() as conn, conn.transaction():
        if not await conn.fetchval(queries.ALERT_OF_TEAMS, alert_id, list(key.team_ids)):
            raise HTTPException(status_code=404, detail=f"no alert {alert_id}")  # another team's: as if missing
        row = await actions.act(conn, alert_id, action, actor, until=until)
        if row is None:
            current = await conn.fetchrow(queries.GET_ALERT, alert_id)
            if current is None:
                raise HTTPException(status_code=404, detail=f"no alert {alert_id}")
            raise HTTPException(status_code=409, detail=f"alert {alert_id} is {current['status']}; cannot {action}")
    return alert_out(row, language, unit)


@router.post("/{alert_id}/acknowledge", summary="Acknowledge an open alert", response_model=AlertOut)
async def acknowledge(
    alert_id: AlertId,
    unit: UnitParam = "mg/dL",
    accept_language: AcceptLanguage = None,
    key: ApiKey = Depends(api_key("alerts:write")),
    db: asyncpg.Pool = Depends(pool),
) -> dict[str, Any]:
    return await _act(db, alert_id, key, "acknowledge", messages.language_of(accept_language), unit)


@router.post("/{alert_id}/snooze", summary="Snooze an alert until a time", response_model=AlertOut)
async def snooze(
    alert_id: AlertId,
    body: SnoozeBody,
    unit: UnitParam = "mg/dL",
    accept_language: AcceptLanguage = None,
    key: ApiKey = Depends(api_key("alerts:write")),
    db: asyncpg.Pool = Depends(pool),
) -> dict[str, Any]:
    if body.until.tzinfo is None:
        raise HTTPException(status_code=422, detail="until: give a time zone offset (for example Z)")
    try:
        body.until.astimezone(dt.UTC)
    except OverflowError:
        raise HTTPException(status_code=422, detail=f"until: {body.until.isoformat()} is out of range") from None
    if body.until <= dt.datetime.now(dt.UTC):
        raise HTTPException(status_code=422, detail="until: must be in the future")
    language = messages.language_of(accept_language)
    return await _act(db, alert_id, key, "snooze", language, unit, body.until)


@router.post("/{alert_id}/resolve", summary="Resolve an alert", response_model=AlertOut)
async def resolve(
    alert_id: AlertId,
    unit: UnitParam = "mg/dL",
    accept_language: AcceptLanguage = None,
    key: ApiKey = Depends(api_key("alerts:write")),
    db: asyncpg.Pool = Depends(pool),
) -> dict[str, Any]:
    return await _act(db, alert_id, key, "resolve", messages.language_of(accept_language), unit)


class AppliedOut(BaseModel):
    """A dose review applied: the alert, resolved, and the treatment plan's version written from it."""

    alert: AlertOut
    plan: dict[str, Any] = Field(
        description="The new version of the plan, in force from now (as GET /api/v1/patients/{id}/treatment"
        " answers a version)."
    )


APPLY_CONFLICT = {
    "not_dose_review": "alert {alert_id} is not a dose review suggestion; nothing to apply",
    "not_open": "alert {alert_id} is already resolved; nothing was applied",
    "plan_changed": "the treatment plan changed since the suggestion (computed on version {suggested_on}, version"
    " {in_force} in force now); nothing was applied: review the plan in force",
    "archived": "the patient of alert {alert_id} is archived and read-only; nothing was applied",
    "invalid": "the suggested dose is refused ({message}); nothing was applied",
}


@router.post(
    "/{alert_id}/apply",
    summary="Apply a dose review suggestion",
    response_model=AppliedOut,
    responses={
        404: {"description": "no such alert among the key's care teams"},
        409: {
            "description": "not a dose review, already resolved, the patient archived, or the plan changed since"
            " the suggestion (nothing is written)"
        },
    },
)
async def apply(
    alert_id: AlertId,
    unit: UnitParam = "mg/dL",
    accept_language: AcceptLanguage = None,
    key: ApiKey = Depends(api_key("alerts:write")),
    db: asyncpg.Pool = Depends(pool),
) -> dict[str, Any]:
    """Writes the suggested dose as a new version of the patient's treatment plan (the same checks and audit as
    ``PUT /api/v1/patients/{id}/treatment``) and resolves the alert, in one transaction. Refused with 409, and
    nothing written, when the plan in force is no longer the version the suggestion was computed on."""
    async with db.acquire() as conn:
        try:
            done = await dose_review.apply(conn, alert_id, key.team_ids, f"api_key:{key.id}", by={"api_key": key.label})
        except dose_review.ApplyRefused as refused:
            if refused.reason == "missing":
                raise HTTPException(status_code=404, detail=f"no alert {alert_id}") from None
            facts = {"alert_id": alert_id, **refused.facts}
            if refused.reason == "plan_changed" and facts.get("in_force") is None:
                facts["in_force"] = "none"
            raise HTTPException(status_code=409, detail=APPLY_CONFLICT[refused.reason].format(**facts)) from None
    language = messages.language_of(accept_language)
    return {"alert": alert_out(done.alert, language, unit), "plan": done.plan.as_json()}
