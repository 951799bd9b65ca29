"""The audit page (administrators): who did or saw what, to which patient, in the administrator's care teams;
filtered by actor, patient, action and dates, newest first, a page at a time (keyset on the row id, which only
grows, so a page costs the same however far back it is), and the filtered rows as CSV. Reading the log and
exporting it are themselves audited."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from clinician_ui import team_queries, web
from clinician_ui.admin import FormErrors, admin
from clinician_ui.i18n import text
from clinician_ui.sessions import Clinician
from telemon import audit
from telemon.csv_export import csv_response, csv_text
from telemon.db import Conn

router = APIRouter(include_in_schema=False)
PAGE_ROWS = 50
CSV_ROWS = 100_000  # an export larger than this is narrowed with the filters first
FILTERS = ("actor", "patient", "action", "from", "to")


@dataclass(frozen=True)
class Filters:
    actor: str | None
    patient_id: uuid.UUID | None
    action: str | None
    start: dt.datetime | None
    end: dt.datetime | None  # excluded: the day after the last day asked for


def _date(text_value: str, name: str, errors: FormErrors) -> dt.date | None:
    if not text_value:
        return None
    try:
        return dt.date.fromisoformat(text_value)
    except ValueError:
        errors.add(name, "field.date.invalid")
        return None


async def _filters(
    conn: Conn, who: Clinician, given: dict[str, str], actors: dict[str, str]
) -> tuple[Filters, FormErrors]:
    errors = FormErrors()
    actor = given["actor"] or None
    if actor is not None and actor not in actors:
        errors.add("actor", "field.actor.invalid")
    patient_id = None
    if given["patient"]:
        patient_id = await conn.fetchval(team_queries.PATIENT_OF_TEAMS, given["patient"][:200], list(who.team_ids))
        if patient_id is None:
            errors.add("patient", "field.patient.invalid")
    start, last = _date(given["from"], "from", errors), _date(given["to"], "to", errors)
    if start and last and last < start:
        errors.add("to", "field.range.invalid")
    action = given["action"][:100] or None
    return (
        Filters(
            actor=actor,
            patient_id=patient_id,
            action=action,
            start=dt.datetime.combine(start, dt.time(), dt.UTC) if start else None,
            end=dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC) if last else None,
        ),
        errors,
    )


async def _rows(
    conn: Conn, who: Clinician, f: Filters, before: int | None, limit: int, team_actors: list[str]
) -> list[asyncpg.Record]:
    """Rows of the administrator's teams: about their patients, or by their clinicians and keys."""
    return await conn.fetch(
        team_queries.AUDIT_PAGE,
        before,
        f.actor,
        f.patient_id,
        f.action,
        f.start,
        f.end,
        list(who.team_ids),
        team_actors,
        limit,
    )


async def _actors(conn: Conn, who: Clinician) -> tuple[dict[str, str], list[asyncpg.Record]]:
    rows = await conn.fetch(team_queries.TEAM_ACTORS, list(who.team_ids))
    return {r["actor"]: r["name"] for r in rows}, rows


def actor_label(actor: str, names: dict[str, str], lang: str) -> str:
    """The person or system behind an audit row's actor, as the page and the export name it."""
    kind, _, rest = actor.partition(":")
    if actor in names:
        return text("audit.actor.key", lang, label=names[actor]) if kind == "api_key" else names[actor]
    if kind == "device":
        return text("audit.actor.device", lang, id=rest)
    if actor in ("cli", "system", "anonymous"):
        return text(f"audit.actor.{actor}", lang)
    return actor


def _team_of(who: Clinician) -> str | None:
    """The team an audit row about the audit itself belongs to (the administrator's first)."""
    return str(who.team_ids[0]) if who.team_ids else None


def _given(request: Request) -> dict[str, str]:
    return {name: request.query_params.get(name, "").strip() for name in FILTERS}


def _before(request: Request) -> int | None:
    value = request.query_params.get("before", "")
    return int(value) if value.isdigit() and len(value) < 19 else None


@router.get("/team/audit")
async def audit_page(request: Request, who: Clinician = Depends(admin)) -> HTMLResponse:
    given = _given(request)
    before = _before(request)
    async with web.connection(request) as conn:
        names, actor_rows = await _actors(conn, who)
        filters, errors = await _filters(conn, who, given, names)
        rows = [] if errors else await _rows(conn, who, filters, before, PAGE_ROWS + 1, list(names))
        await audit.record(
            conn,
            actor=who.actor,
            action="audit.read",
            detail={"filters": {k: v for k, v in given.items() if v}, "team_id": _team_of(who)},
        )
    query = {k: v for k, v in given.items() if v}
    older = (
        "/team/audit?" + urllib.parse.urlencode({**query, "before": rows[PAGE_ROWS - 1]["id"]})
        if len(rows) > PAGE_ROWS
        else None
    )
    fmt = web.formatter(who)
    context: dict[str, Any] = {
        "rows": [_display(r, names, fmt.lang) for r in rows[:PAGE_ROWS]],
        "actors": actor_rows,
        "values": given,
        "errors": errors,
        "older": older,
        "newest": "/team/audit?" + urllib.parse.urlencode(query) if before is not None else None,
        "csv": "/team/audit.csv?" + urllib.parse.urlencode(query),
    }
    return web.render(request, "audit.html", context, who=who, status_code=422 if errors else 200)


def _display(row: asyncpg.Record, names: dict[str, str], lang: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "at": row["at"],
        "actor": actor_label(row["actor"], names, lang),
        "action": row["action"],
        "patient_id": row["patient_id"],
        "patient": _patient_text(row),
        "patients_shown": row["patients_shown"],
        "detail": json.dumps(row["detail"], ensure_ascii=False, sort_keys=True) if row["detail"] else "",
    }


def _patient_text(row: asyncpg.Record) -> str:
    if row["patient_id"] is None:
        return ""
    if row["patient_name"] is None:
        return str(row["patient_id"])
    return f"{row['patient_name']} ({row['patient_external_id']})"


@router.get("/team/audit.csv", response_model=None)
async def audit_csv(request: Request, who: Clinician = Depends(admin)) -> Response:
    given = _given(request)
    async with web.connection(request) as conn:
        names, _ = await _actors(conn, who)
        filters, errors = await _filters(conn, who, given, names)
        if errors:
            raise web.PageError(422, "form.errors")
        rows = await _rows(conn, who, filters, None, CSV_ROWS, list(names))
        await audit.record(
            conn,
            actor=who.actor,
            action="audit.export",
            detail={
                "filters": {k: v for k, v in given.items() if v},
                "rows": len(rows),
                "team_id": _team_of(who),
            },
        )
    header = ("id", "at_utc", "actor", "actor_name", "action", "patient_id", "patient", "detail")
    lines = []
    for r in rows:
        shown = _display(r, names, who.language)
        lines.append(
            (
                r["id"],
                r["at"].isoformat(),
                r["actor"],
                shown["actor"],
                r["action"],
                r["patient_id"],
                shown["patient"],
                shown["detail"],
            )
        )
    return csv_response(csv_text(header, lines), "telemon-audit.csv")
