"""The webhooks pages (administrators): the team's endpoints with their last day's deliveries, adding one (its
signing secret shown once, on the answer to the form), turning one off or on, and its delivery log with a manual
re-send. Everything goes through ``telemon.webhooks``, as the command line does."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from clinician_ui import sessions, web
from clinician_ui.admin import FormErrors, admin
from clinician_ui.sessions import Clinician
from telemon import teams, webhooks

router = APIRouter(include_in_schema=False)
FIELDS = {"url": "field.url.invalid", "events": "field.events.invalid", "label": "field.webhook_label.invalid"}


async def _page(
    request: Request,
    who: Clinician,
    *,
    errors: FormErrors | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    async with web.connection(request) as conn:
        endpoints = await webhooks.endpoints_of(conn, list(who.team_ids))
        names = await teams.team_names(conn, who.team_ids)
    context: dict[str, Any] = {
        "endpoints": endpoints,
        "team_names": names,
        "events": webhooks.EVENTS,
        "errors": errors or FormErrors(),
        "values": values or {"url": "", "label": "", "events": list(webhooks.EVENTS)},
    }
    return web.render(request, "webhooks.html", context, who=who, status_code=status_code)


async def _endpoint(request: Request, who: Clinician, endpoint_id: uuid.UUID) -> webhooks.Endpoint:
    async with web.connection(request) as conn:
        found = await webhooks.endpoint(conn, endpoint_id, list(who.team_ids))
    if found is None:
        raise web.PageError(404, "error.not_found")
    return found


@router.get("/team/webhooks")
async def webhooks_page(request: Request, who: Clinician = Depends(admin)) -> HTMLResponse:
    return await _page(request, who)


@router.post("/team/webhooks", response_model=None)
async def add_webhook(request: Request, who: Clinician = Depends(admin)) -> Response:
    form = await web.form_of(request, who)
    chosen = [e for e in form.getlist("events") if isinstance(e, str)]  # type: ignore[attr-defined]
    url, label = web.field(form, "url"), web.field(form, "label")
    values: dict[str, Any] = {"url": url, "label": label, "events": chosen}
    mine = {str(t): t for t in who.team_ids}
    team_id = mine.get(web.field(form, "team"), who.team_ids[0])  # an administrator of several teams chooses
    try:
        async with web.connection(request) as conn:
            endpoint, secret = await webhooks.create(
                conn, team_id=team_id, url=url, events=chosen, label=label, actor=who.actor
            )
    except webhooks.WebhookError as exc:
        errors = FormErrors()
        errors.add(exc.field, FIELDS[exc.field])
        return await _page(request, who, errors=errors, values=values, status_code=422)
    return web.render(request, "webhook_new.html", {"endpoint": endpoint, "secret": secret}, who=who)


@router.post("/team/webhooks/{endpoint_id}/{change}", response_model=None)
async def turn_webhook(
    request: Request, endpoint_id: uuid.UUID, change: str, who: Clinician = Depends(admin)
) -> Response:
    if change not in ("enable", "disable"):
        raise web.PageError(404, "error.not_found")
    await web.form_of(request, who)
    found = await _endpoint(request, who, endpoint_id)
    async with web.connection(request) as conn:
        await webhooks.set_active(conn, found, change == "enable", actor=who.actor)
    await sessions.flash(web.pool(request), who, "hooks.changed_flash")
    return web.redirect("/team/webhooks")


@router.get("/team/webhooks/{endpoint_id}")
async def delivery_log(
    request: Request, endpoint_id: uuid.UUID, before: int | None = None, who: Clinician = Depends(admin)
) -> HTMLResponse:
    found = await _endpoint(request, who, endpoint_id)
    async with web.connection(request) as conn:
        log = await webhooks.delivery_log(conn, endpoint_id, before=before)
    older = log[-1]["id"] if len(log) == webhooks.LOG_PAGE else None
    return web.render(request, "webhook_log.html", {"endpoint": found, "log": log, "older": older}, who=who)


@router.post("/team/webhooks/{endpoint_id}/deliveries/{delivery_id}/resend", response_model=None)
async def resend(
    request: Request, endpoint_id: uuid.UUID, delivery_id: int, who: Clinician = Depends(admin)
) -> Response:
    await web.form_of(request, who)
    await _endpoint(request, who, endpoint_id)
    async with web.connection(request) as conn:
        if not await webhooks.resend(conn, delivery_id, list(who.team_ids), actor=who.actor):
            raise web.PageError(404, "error.not_found")
    await sessions.flash(web.pool(request), who, "hooks.resent_flash")
    return web.redirect(f"/team/webhooks/{endpoint_id}")
