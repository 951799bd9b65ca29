"""The API keys page (administrators): the keys of the administrator's care teams with their last use, creating a
key with a label and scopes (the key is shown once, on the answer to the form, and never again), and revoking one.
The keys are made, listed and revoked by ``telemon.api_keys``, as the command line does."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from clinician_ui import sessions, web
from clinician_ui.admin import FormErrors, admin
from clinician_ui.sessions import Clinician
from telemon import api_keys, audit, teams

router = APIRouter(include_in_schema=False)
MAX_LABEL = 100


async def _keys(request: Request, who: Clinician) -> tuple[list[api_keys.ApiKeyInfo], dict[uuid.UUID, str]]:
    """The keys acting for any of the administrator's teams (once each, oldest first), and those teams' names."""
    found: dict[uuid.UUID, api_keys.ApiKeyInfo] = {}
    async with web.connection(request) as conn:
        for team_id in who.team_ids:
            for key in await api_keys.list_api_keys(conn, team_id):
                found.setdefault(key.id, key)
        names = await teams.team_names(conn, who.team_ids)
    return sorted(found.values(), key=lambda k: (k.created_at, k.id)), names


async def _page(
    request: Request,
    who: Clinician,
    *,
    errors: FormErrors | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    keys, names = await _keys(request, who)
    context: dict[str, Any] = {
        "keys": keys,
        "scopes": api_keys.SCOPES,
        "team_names": names,
        "errors": errors or FormErrors(),
        "values": values or {"label": "", "scopes": [], "teams": []},
    }
    return web.render(request, "api_keys.html", context, who=who, status_code=status_code)


@router.get("/team/api-keys")
async def keys_page(request: Request, who: Clinician = Depends(admin)) -> HTMLResponse:
    return await _page(request, who)


@router.post("/team/api-keys", response_model=None)
async def create_key(request: Request, who: Clinician = Depends(admin)) -> Response:
    form = await web.form_of(request, who)
    label = web.field(form, "label")
    chosen = [s for s in form.getlist("scopes") if isinstance(s, str)]  # type: ignore[attr-defined]
    team_refs = [t for t in form.getlist("teams") if isinstance(t, str)]  # type: ignore[attr-defined]
    values = {"label": label, "scopes": chosen, "teams": team_refs}
    errors = FormErrors()
    if not label or len(label) > MAX_LABEL:
        errors.add("label", "field.label.invalid")
    scopes = list(dict.fromkeys(chosen))
    if not scopes or any(s not in api_keys.SCOPES for s in scopes):
        errors.add("scopes", "field.scopes.invalid")
    if len(who.team_ids) == 1 and not team_refs:
        team_ids = list(who.team_ids)
    else:
        mine = {str(t): t for t in who.team_ids}
        team_ids = [mine[ref] for ref in dict.fromkeys(team_refs) if ref in mine]
        if not team_ids or len(team_ids) != len(set(team_refs)):
            errors.add("teams", "field.teams.invalid")
    if errors:
        return await _page(request, who, errors=errors, values=values, status_code=422)
    async with web.connection(request) as conn:
        new = await api_keys.create_api_key(conn, label=label, scopes=scopes, team_ids=team_ids)
        await audit.record(
            conn,
            actor=who.actor,
            action="api_key.create",
            detail={"api_key_id": str(new.id), "scopes": scopes, "team_ids": [str(t) for t in team_ids]},
        )
    context = {"label": label, "key": new.key, "scopes": scopes}
    return web.render(request, "api_key_new.html", context, who=who)


@router.post("/team/api-keys/{key_id}/revoke", response_model=None)
async def revoke_key(request: Request, key_id: uuid.UUID, who: Clinician = Depends(admin)) -> Response:
    await web.form_of(request, who)
    keys, _ = await _keys(request, who)
    if key_id not in {k.id for k in keys}:
        raise web.PageError(404, "error.not_found")
    async with web.connection(request) as conn:
        changed, _revoked_at = await api_keys.revoke_api_key(conn, key_id)
        if changed:
            await audit.record(conn, actor=who.actor, action="api_key.revoke", detail={"api_key_id": str(key_id)})
    await sessions.flash(web.pool(request), who, "keys.revoked_flash")
    return web.redirect("/team/api-keys")
