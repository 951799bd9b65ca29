"""The conversation with the patient on her page, sending a message (from a template, or in reply to an alert), and
the team's message templates.

Messages go through ``clinic.messages``, the same functions as the patient's app uses, so both sides store, audit
and announce them one way. Showing the page to a clinician of the team is what reads the patient's messages: they
are marked read then (her app shows the receipt) and leave the triage. A template is picked without script: the
page is shown again with the template's text, in the patient's language, in the box, to be changed before sending."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from clinic import messages
from clinician_ui import queries, sessions, web
from clinician_ui.i18n import text
from clinician_ui.sessions import Clinician
from telemon import record_queries, teams
from telemon.db import Conn
from telemon.settings import Settings

router = APIRouter(include_in_schema=False)

MESSAGES_SHOWN = 50  # the latest of the conversation; older ones are in the audit trail and the patient's app
TEMPLATE_EDITORS = ("admin", "diabetologist")


@dataclass(frozen=True)
class MessageView:
    id: int
    from_patient: bool
    author: str  # the patient's name, or the clinician who wrote it
    body: str
    at: dt.datetime
    alert_id: int | None
    read_at: dt.datetime | None
    reader: str  # who of the team read a patient's message ("" for the team's messages: she read it)


def _id_param(text: str | None) -> int | None:
    if text and text.isascii() and text.isdigit() and 1 <= int(text) <= messages.LAST:
        return int(text)
    return None


async def _names(db: Conn, readers: set[str]) -> dict[str, str]:
    ids = []
    for actor in readers:
        try:
            ids.append(uuid.UUID(actor.removeprefix("clinician:")))
        except ValueError:
            continue
    rows = await db.fetch(queries.CLINICIAN_NAMES, ids) if ids else []
    return {f"clinician:{r['id']}": r["display_name"] for r in rows}


async def conversation(
    db: Conn, request: Request, who: Clinician, patient: asyncpg.Record, lang: str
) -> dict[str, Any]:
    """What the patient page shows of the conversation; the patient's messages shown are read by ``who`` now."""
    patient_id: uuid.UUID = patient["id"]
    async with db.transaction():
        found = await messages.page(db, patient_id, limit=MESSAGES_SHOWN)
        unread = [m.id for m in found if m.author == "patient" and m.read_at is None]
        if unread:
            await messages.mark_read(db, patient_id, author="patient", up_to=max(unread), reader=who.actor)
            found = await messages.page(db, patient_id, limit=MESSAGES_SHOWN)  # with the receipt just given
    readers = await _names(db, {m.read_by for m in found if m.read_by and m.author == "patient"})
    shown = [
        MessageView(
            id=m.id,
            from_patient=m.author == "patient",
            author=patient["display_name"] if m.author == "patient" else m.clinician_name,
            body=m.body,
            at=m.created_at,
            alert_id=m.alert_id,
            read_at=m.read_at,
            reader=readers.get(m.read_by or "", "") if m.author == "patient" else "",
        )
        for m in reversed(found)
    ]
    patient_lang = await messages.patient_language(db, patient_id)
    team_templates = await messages.templates(db, patient["team_id"], lang)
    params = request.query_params
    chosen = _id_param(params.get("template"))
    draft = next((t.body(patient_lang) for t in team_templates if t.id == chosen), "")
    reply_to = _id_param(params.get("reply_to"))
    reply_alert = None
    if reply_to is not None:
        reply_alert = await db.fetchrow(queries.ALERT_IN_TEAMS, reply_to, list(who.team_ids))
        if reply_alert is not None and reply_alert["patient_id"] != patient_id:
            reply_alert = None
    return {
        "conversation": shown,
        "unread_marked": len(unread),
        "message_templates": [(t.id, t.title(lang)) for t in team_templates],
        "chosen_template": chosen,
        "message_draft": draft,
        "reply_alert": reply_alert,
        "patient_language": patient_lang,
    }


async def _patient_of(db: asyncpg.Pool, who: Clinician, patient_id: uuid.UUID) -> asyncpg.Record:
    row: asyncpg.Record | None = await db.fetchrow(record_queries.PATIENT, patient_id, list(who.team_ids))
    if row is None:
        raise web.PageError(404, "error.not_found")
    if row["archived_at"] is not None:
        raise web.PageError(409, "error.archived")
    return row


@router.post("/patients/{patient_id}/messages", response_model=None)
async def send(patient_id: uuid.UUID, request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    form = await web.form_of(request, who)
    db = web.pool(request)
    await _patient_of(db, who, patient_id)
    raw = form.get("body")
    try:
        body = messages.check_body(raw if isinstance(raw, str) else "")
    except messages.BodyRefused as exc:
        raise web.PageError(422, "error.invalid", detail=f"{text('messages.body', who.language)}: {exc}") from None
    alert_id = _id_param(web.field(form, "alert_id"))
    async with db.acquire() as conn, conn.transaction():
        try:
            await messages.send(conn, patient_id, body, actor=who.actor, clinician_id=who.id, alert_id=alert_id)
        except messages.NoSuchAlert:
            raise web.PageError(404, "error.not_found") from None
    settings: Settings = request.app.state.services.settings
    await messages.notify_by_email(db, patient_id, smtp_url=settings.smtp_url, sender=settings.smtp_from)
    await sessions.flash(db, who, "messages.sent_flash")
    return web.redirect(f"/patients/{patient_id}#messages")


# --- the team's templates ---------------------------------------------------------------------------------------


def _editor(who: Clinician) -> None:
    if who.role not in TEMPLATE_EDITORS:
        raise web.PageError(403, "error.forbidden")


def _team(who: Clinician, text: str | None) -> uuid.UUID:
    """The team whose templates are shown: the one asked for among the clinician's, else her first."""
    for team in who.team_ids:
        if text == str(team):
            return team
    if not who.team_ids:
        raise web.PageError(404, "error.not_found")
    return who.team_ids[0]


@router.get("/messages/templates")
async def templates_page(request: Request, who: Clinician = Depends(web.clinician)) -> HTMLResponse:
    team = _team(who, request.query_params.get("team"))
    async with web.connection(request) as db:
        found = await messages.templates(db, team, who.language)
        names = await teams.team_names(db, who.team_ids)
    context = {
        "templates": found,
        "team_id": team,
        "teams": [(t, names.get(t, str(t))) for t in who.team_ids],
        "can_edit": who.role in TEMPLATE_EDITORS,
    }
    return web.render(request, "message_templates.html", context, who=who)


def _texts(form: Mapping[str, Any]) -> tuple[str, str, str, str]:
    try:
        return (
            messages.check_title(form.get("title_en")),
            messages.check_title(form.get("title_fr")),
            messages.check_body(form.get("body_en")),
            messages.check_body(form.get("body_fr")),
        )
    except messages.BodyRefused as exc:
        raise web.PageError(422, "error.invalid", detail=str(exc)) from None


@router.post("/messages/templates", response_model=None)
async def save_template(request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    form = await web.form_of(request, who)
    _editor(who)
    team = _team(who, web.field(form, "team"))
    template_id = _id_param(web.field(form, "template_id"))
    db = web.pool(request)
    async with db.acquire() as conn, conn.transaction():
        if web.field(form, "delete") == "1" and template_id is not None:
            done = await messages.delete_template(conn, team, template_id, actor=who.actor)
        else:
            done = await messages.save_template(conn, team, template_id, _texts(form), actor=who.actor) is not None
    if not done:
        raise web.PageError(404, "error.not_found")
    await sessions.flash(db, who, "templates.saved_flash")
    return web.redirect(f"/messages/templates?team={team}")
