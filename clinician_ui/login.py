"""Sign in and sign out."""

from __future__ import annotations

import urllib.parse

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from clinician_ui import sessions, web
from clinician_ui.sessions import Clinician

router = APIRouter(include_in_schema=False)


def _language(request: Request) -> str:
    accept = request.headers.get("accept-language", "").lower()
    return "en" if accept.startswith("en") else "fr"


def _login_page(
    request: Request,
    *,
    next_path: str,
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
    **values: object,
) -> HTMLResponse:
    token = request.cookies.get(sessions.LOGIN_CSRF_COOKIE) or sessions.new_token()
    response = web.render(
        request,
        "login.html",
        {"next_path": next_path, "error": error, "notice": notice, "error_values": values, "login_csrf": token},
        status_code=status_code,
        lang=_language(request),
    )
    response.set_cookie(
        sessions.LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=web.secure_cookie(request),
        path="/login",
    )
    return response


@router.get("/login")
async def login_form(request: Request, next: str = "/", done: str | None = None) -> HTMLResponse:
    notice = "login.logged_out" if done == "logout" else None
    return _login_page(request, next_path=web.safe_next(next), notice=notice)


@router.post("/login", response_model=None)
async def login(request: Request) -> Response:
    web.started(request)
    form = await request.form()
    next_path = web.safe_next(web.field(form, "next"))
    expected = request.cookies.get(sessions.LOGIN_CSRF_COOKIE)
    given = web.field(form, "csrf_token")
    if not expected or not sessions.same_token(expected, given) or not web.same_origin(request):
        return _login_page(request, next_path=next_path, error="login.expired", status_code=403)
    email, password = web.field(form, "email"), str(form.get("password") or "")
    result = await sessions.login(
        web.pool(request),
        email,
        password,
        address=web.client_address(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    if result.locked_for_s:
        locked = _login_page(
            request, next_path=next_path, error="login.locked", status_code=429, seconds=result.locked_for_s
        )
        locked.headers["Retry-After"] = str(result.locked_for_s)
        return locked
    if result.token is None:
        return _login_page(request, next_path=next_path, error="login.failed", status_code=401)
    response = web.redirect(next_path)
    web.set_session_cookie(response, request, result.token)
    response.delete_cookie(sessions.LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout", response_model=None)
async def logout(request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    await web.form_of(request, who)
    await sessions.logout(web.pool(request), who)
    response = web.redirect("/login?" + urllib.parse.urlencode({"done": "logout"}))
    response.delete_cookie(sessions.COOKIE, path="/")
    return response
