"""The team page (administrators): the team's clinicians and open invitations; inviting a clinician, cancelling an
invitation, deactivating and reactivating a clinician, sending a password reset link. Every change is audited."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from clinician_ui import sessions, team_queries, web
from clinician_ui.admin import Delivery, FormErrors, admin, deliver
from clinician_ui.sessions import Clinician
from telemon import account_links, audit, teams
from telemon.settings import SettingsError

router = APIRouter(include_in_schema=False)


async def _team_names(request: Request, who: Clinician) -> dict[uuid.UUID, str]:
    async with web.connection(request) as conn:
        return await teams.team_names(conn, who.team_ids)


async def _page(
    request: Request,
    who: Clinician,
    *,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    async with web.connection(request) as conn:
        members = await teams.team_members(conn, who.team_ids)
        invitations = await account_links.open_invitations(conn, list(who.team_ids))
    context: dict[str, Any] = {
        "members": members,
        "invitations": invitations,
        "roles": teams.ROLES,
        "team_names": await _team_names(request, who),
        "errors": errors or FormErrors(),
        "values": values or {"language": who.language, "role": "midwife"},
    }
    return web.render(request, "team.html", context, who=who, status_code=status_code)


@router.get("/team")
async def team_page(request: Request, who: Clinician = Depends(admin)) -> HTMLResponse:
    return await _page(request, who)


def _link_page(request: Request, who: Clinician, delivery: Delivery, email: str, expires: Any) -> HTMLResponse:
    context = {"delivery": delivery, "email": email, "expires_at": expires}
    return web.render(request, "team_link.html", context, who=who)


@router.post("/team/invitations", response_model=None)
async def invite(request: Request, who: Clinician = Depends(admin)) -> Response:
    form = await web.form_of(request, who)
    values = {name: web.field(form, name) for name in ("email", "role", "language", "team")}
    errors = FormErrors()
    try:
        values["email"] = teams.check_email(values["email"])
    except SettingsError:
        errors.add("email", "field.email.invalid")
    if values["role"] not in teams.ROLES:
        errors.add("role", "field.role.invalid")
    if values["language"] not in teams.LANGUAGES:
        errors.add("language", "field.language.invalid")
    team_id = who.team_ids[0] if len(who.team_ids) == 1 and not values["team"] else None
    if team_id is None:
        team_id = next((t for t in who.team_ids if str(t) == values["team"]), None)
        if team_id is None:
            errors.add("team", "field.team.invalid")
    async with web.connection(request) as conn:
        if "email" not in errors and await teams.clinician_exists(conn, values["email"]):
            errors.add("email", "field.email.taken")
        if errors or team_id is None:
            return await _page(request, who, errors=errors, values=values, status_code=422)
        link = await account_links.invite(
            conn,
            team_id=team_id,
            email=values["email"],
            role=values["role"],
            language=values["language"],
            actor=who.actor,
        )
        detail = {"invitation_id": str(link.id), "email": values["email"], "role": values["role"]}
        await audit.record(conn, actor=who.actor, action="clinician.invite", detail={**detail, "team_id": str(team_id)})
    team_name = (await _team_names(request, who)).get(team_id, "")
    delivery = await deliver(
        request,
        who,
        link=link,
        purpose=account_links.INVITATION,
        to=values["email"],
        language=values["language"],
        team=team_name,
        role=values["role"],
    )
    if delivery.sent:
        await sessions.flash(web.pool(request), who, "team.invited")
        return web.redirect("/team")
    return _link_page(request, who, delivery, values["email"], link.expires_at)


@router.post("/team/invitations/{invitation_id}/cancel", response_model=None)
async def cancel_invitation(request: Request, invitation_id: uuid.UUID, who: Clinician = Depends(admin)) -> Response:
    await web.form_of(request, who)
    async with web.connection(request) as conn:
        email = await account_links.cancel_invitation(conn, invitation_id, list(who.team_ids))
        if email is None:
            raise web.PageError(404, "team.not_found")
        await audit.record(
            conn, actor=who.actor, action="clinician.invitation_cancel", detail={"invitation_id": str(invitation_id)}
        )
    await sessions.flash(web.pool(request), who, "team.invitation_cancelled")
    return web.redirect("/team")


async def _member(request: Request, who: Clinician, clinician_id: uuid.UUID) -> teams.Member:
    async with web.connection(request) as conn:
        member = await teams.member_of(conn, clinician_id, who.team_ids)
    if member is None:
        raise web.PageError(404, "team.not_found")
    return member


@router.post("/team/clinicians/{clinician_id}/deactivate", response_model=None)
async def deactivate(request: Request, clinician_id: uuid.UUID, who: Clinician = Depends(admin)) -> Response:
    await web.form_of(request, who)
    member = await _member(request, who, clinician_id)
    if member.id == who.id:
        raise web.PageError(422, "team.not_self")
    async with web.connection(request) as conn:
        if await teams.deactivate(conn, member.id, actor=who.actor):
            await audit.record(
                conn, actor=who.actor, action="clinician.deactivate", detail={"clinician_id": str(member.id)}
            )
    await sessions.flash(web.pool(request), who, "team.deactivated")
    return web.redirect("/team")


@router.post("/team/clinicians/{clinician_id}/reactivate", response_model=None)
async def reactivate(request: Request, clinician_id: uuid.UUID, who: Clinician = Depends(admin)) -> Response:
    await web.form_of(request, who)
    member = await _member(request, who, clinician_id)
    async with web.connection(request) as conn:
        if await teams.reactivate(conn, member.id):
            await audit.record(
                conn, actor=who.actor, action="clinician.reactivate", detail={"clinician_id": str(member.id)}
            )
    await sessions.flash(web.pool(request), who, "team.reactivated")
    return web.redirect("/team")


@router.post("/team/clinicians/{clinician_id}/reset", response_model=None)
async def reset(request: Request, clinician_id: uuid.UUID, who: Clinician = Depends(admin)) -> Response:
    await web.form_of(request, who)
    member = await _member(request, who, clinician_id)
    if not member.active:
        raise web.PageError(422, "team.reset_inactive")
    team_id = who.team_ids[0]
    async with web.connection(request) as conn:
        language = await conn.fetchval(team_queries.CLINICIAN_LANGUAGE, member.id) or "fr"
        link = await account_links.password_reset(
            conn, member=member, team_id=team_id, language=language, actor=who.actor
        )
        await audit.record(
            conn,
            actor=who.actor,
            action="clinician.password_reset_link",
            detail={"clinician_id": str(member.id), "link_id": str(link.id)},
        )
    delivery = await deliver(
        request,
        who,
        link=link,
        purpose=account_links.PASSWORD_RESET,
        to=member.email,
        language=language,
        team=(await _team_names(request, who)).get(team_id, ""),
    )
    if delivery.sent:
        await sessions.flash(web.pool(request), who, "team.reset_sent")
        return web.redirect("/team")
    return _link_page(request, who, delivery, member.email, link.expires_at)
