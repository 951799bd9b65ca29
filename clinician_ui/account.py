"""A person's own account: accepting an invitation (choosing her name, language and password), choosing a new
password from a reset link, and a signed-in clinician changing her password.

The link pages need no session: the link's secret is the proof, and a link works once. Their forms are still
refused from another site (the ``Origin`` check every form has), and a link that cannot be used answers the same
page whether it never existed, expired, was replaced or was used."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from clinician_ui import sessions, team_queries, web
from clinician_ui.admin import FormErrors
from clinician_ui.sessions import Clinician
from telemon import account_links, audit, teams
from telemon.account_links import INVITATION, PASSWORD_RESET, Link
from telemon.security import verify_password
from telemon.settings import SettingsError

router = APIRouter(include_in_schema=False)
MAX_NAME = 100


def _language(request: Request, link: Link | None = None) -> str:
    if link is not None:
        return link.language
    return "en" if request.headers.get("accept-language", "").lower().startswith("en") else "fr"


def check_new_password(errors: FormErrors, password: str, again: str, name: str = "password") -> None:
    """The new password's field errors (length as the core requires it, and the two entries equal)."""
    try:
        teams.check_password(password)
    except SettingsError:
        key = "field.password.short" if len(password) < teams.MIN_PASSWORD_LENGTH else "field.password.long"
        errors.add(name, key, n=teams.MIN_PASSWORD_LENGTH)
        return
    if password != again:
        errors.add(name + "_again", "field.password.mismatch")


def _invalid(request: Request, lang: str) -> HTMLResponse:
    return web.render(request, "account_link.html", {"link": None, "purpose": None}, status_code=404, lang=lang)


def _link_form(
    request: Request,
    link: Link,
    token: str,
    *,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context: dict[str, Any] = {
        "link": link,
        "purpose": link.purpose,
        "action": ("/welcome/" if link.purpose == INVITATION else "/reset/") + token,
        "errors": errors or FormErrors(),
        "values": values or {"language": link.language, "display_name": ""},
        "min_password": teams.MIN_PASSWORD_LENGTH,
    }
    lang = (values or {}).get("language") or link.language
    return web.render(request, "account_link.html", context, status_code=status_code, lang=lang)


async def _open(request: Request, token: str, purpose: str) -> Link | None:
    web.started(request)
    async with web.connection(request) as conn:
        return await account_links.open_link(conn, token, purpose)


@router.get("/welcome/{token}")
async def welcome_form(request: Request, token: str) -> HTMLResponse:
    link = await _open(request, token, INVITATION)
    if link is None:
        return _invalid(request, _language(request))
    return _link_form(request, link, token)


@router.post("/welcome/{token}", response_model=None)
async def welcome(request: Request, token: str) -> Response:
    if not web.same_origin(request):
        raise web.PageError(403, "error.csrf")
    link = await _open(request, token, INVITATION)
    if link is None:
        return _invalid(request, _language(request))
    form = await request.form()
    values = {"display_name": web.field(form, "display_name"), "language": web.field(form, "language")}
    password, again = str(form.get("password") or ""), str(form.get("password_again") or "")
    errors = FormErrors()
    if not values["display_name"] or len(values["display_name"]) > MAX_NAME:
        errors.add("display_name", "field.name.invalid")
    if values["language"] not in teams.LANGUAGES:
        errors.add("language", "field.language.invalid")
        values["language"] = link.language
    check_new_password(errors, password, again)
    if errors:
        return _link_form(request, link, token, errors=errors, values=values, status_code=422)
    async with web.connection(request) as conn:
        try:
            accepted = await account_links.accept_invitation(
                conn, token, display_name=values["display_name"], password=password, language=values["language"]
            )
        except SettingsError:  # the address got an account meanwhile (the command line)
            accepted = None
        if accepted is None:
            return _invalid(request, values["language"])
        link, clinician_id = accepted
        await audit.record(
            conn,
            actor=f"clinician:{clinician_id}",
            action="clinician.create",
            detail={"clinician_id": str(clinician_id), "invitation_id": str(link.id), "team_id": str(link.team_id)},
        )
    context = {"done": "account.created"}
    return web.render(request, "account_done.html", context, lang=values["language"])


@router.get("/reset/{token}")
async def reset_form(request: Request, token: str) -> HTMLResponse:
    link = await _open(request, token, PASSWORD_RESET)
    if link is None:
        return _invalid(request, _language(request))
    return _link_form(request, link, token)


@router.post("/reset/{token}", response_model=None)
async def reset(request: Request, token: str) -> Response:
    if not web.same_origin(request):
        raise web.PageError(403, "error.csrf")
    link = await _open(request, token, PASSWORD_RESET)
    if link is None:
        return _invalid(request, _language(request))
    form = await request.form()
    password, again = str(form.get("password") or ""), str(form.get("password_again") or "")
    errors = FormErrors()
    check_new_password(errors, password, again)
    if errors:
        return _link_form(request, link, token, errors=errors, status_code=422)
    async with web.connection(request) as conn:
        used = await account_links.use_password_reset(conn, token, password=password)
        if used is None:
            return _invalid(request, link.language)
        await audit.record(
            conn,
            actor=f"clinician:{used.clinician_id}",
            action="clinician.password_reset",
            detail={"clinician_id": str(used.clinician_id), "link_id": str(used.id)},
        )
    return web.render(request, "account_done.html", {"done": "account.password_reset"}, lang=link.language)


def _password_page(
    request: Request, who: Clinician, errors: FormErrors | None = None, status_code: int = 200
) -> HTMLResponse:
    context = {"errors": errors or FormErrors(), "min_password": teams.MIN_PASSWORD_LENGTH}
    return web.render(request, "account_password.html", context, who=who, status_code=status_code)


@router.get("/account/password")
async def password_form(request: Request, who: Clinician = Depends(web.clinician)) -> HTMLResponse:
    return _password_page(request, who)


@router.post("/account/password", response_model=None)
async def change_password(request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    form = await web.form_of(request, who)
    current = str(form.get("current_password") or "")
    password, again = str(form.get("password") or ""), str(form.get("password_again") or "")
    errors = FormErrors()
    async with web.connection(request) as conn:
        stored = await conn.fetchval(team_queries.PASSWORD_HASH, who.id)
        # argon2 takes tens of milliseconds of CPU: off the event loop
        if stored is None or not await asyncio.to_thread(verify_password, stored, current):
            errors.add("current_password", "field.password.wrong")
            await audit.record(conn, actor=who.actor, action="clinician.password_change_refused")
        check_new_password(errors, password, again)
        if errors:
            return _password_page(request, who, errors, status_code=422)
        ended = await teams.set_password(conn, who.id, password, keep_session=who.session_hash)
        await audit.record(conn, actor=who.actor, action="clinician.password_change", detail={"sessions_ended": ended})
    await sessions.flash(web.pool(request), who, "account.changed")
    return web.redirect("/account/password")
