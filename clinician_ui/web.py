"""What every dashboard route shares: the templates, the signed-in clinician, CSRF checks, safe redirects,
security headers and the server-time header the benchmark reads."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.types import Scope

from clinician_ui import sessions
from clinician_ui.i18n import Formatter
from clinician_ui.sessions import Clinician
from telemon import units
from telemon.auth import pool as pool  # the dashboard's pages use web.pool
from telemon.db import Conn

PAGE_SETTINGS = "SELECT set_config('statement_timeout', $1, false)"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages hold patient data: never cached
}

templates = Environment(
    loader=PackageLoader("clinician_ui", "templates"),
    autoescape=select_autoescape(["html", "svg"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)
templates.globals["UNITS"] = units.UNITS


class LoginRequired(Exception):
    """Raised by :func:`clinician`; answered with a redirect to the login page (or 401 for event streams)."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageError(Exception):
    """An error page: 403 (CSRF, role), 404 (not found or not one of the clinician's teams), 422 (bad form)."""

    def __init__(self, status: int, key: str, **values: object) -> None:
        super().__init__(key)
        self.status = status
        self.key = key
        self.values = values


PAGE_STATEMENT_TIMEOUT_MS = 5000


@contextlib.asynccontextmanager
async def connection(request: Request) -> AsyncIterator[Conn]:
    """One pooled connection for a page's queries, with a time limit on every query (as Datasette does; JIT is off
    on every connection of the pool: ``telemon.db.create_pool``). The pool resets the limit when the connection
    goes back (``RESET ALL``)."""
    async with pool(request).acquire() as conn:
        await conn.execute(PAGE_SETTINGS, str(PAGE_STATEMENT_TIMEOUT_MS))
        yield conn


def started(request: Request) -> float:
    value = getattr(request.state, "started", None)
    if value is None:
        value = time.perf_counter()
        request.state.started = value
    return float(value)


async def clinician(request: Request) -> Clinician:
    """The dependency of every page and action: the signed-in clinician, or a redirect to the login page."""
    started(request)
    found = await sessions.clinician_of(pool(request), request.cookies.get(sessions.COOKIE))
    if found is None:
        raise LoginRequired(_path_with_query(request))
    return found


def _path_with_query(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def formatter(who: Clinician) -> Formatter:
    return Formatter(lang=who.language, unit=who.unit, now=dt.datetime.now(dt.UTC))


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go back to after a form (never another site: no scheme, no host, no ``//``)."""
    if not target:
        return default
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def same_origin(request: Request) -> bool:
    """Browsers send ``Origin`` with every POST; when present it must be this site."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")}
    return urllib.parse.urlsplit(origin).netloc in hosts - {""}


async def form_of(request: Request, who: Clinician) -> Mapping[str, Any]:
    """The posted form, after checking its CSRF token and origin (403 otherwise)."""
    form = await request.form()
    token = form.get("csrf_token")
    if not same_origin(request) or not sessions.same_token(who.csrf_token, token if isinstance(token, str) else None):
        raise PageError(403, "error.csrf")
    return form


def field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    who: Clinician | None = None,
    status_code: int = 200,
    lang: str | None = None,
) -> HTMLResponse:
    fmt = formatter(who) if who is not None else Formatter(lang or "fr", units.MGDL, dt.datetime.now(dt.UTC))
    flash = fmt.t(who.flash) if who is not None and who.flash else None
    body = templates.get_template(template).render(
        **fmt.functions(),
        fmt=fmt,
        lang=fmt.lang,
        unit=fmt.unit,
        who=who,
        flash=flash,
        request_path=_path_with_query(request),
        current_path=request.url.path,
        **context,
    )
    response = HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)
    elapsed_ms = (time.perf_counter() - started(request)) * 1000
    response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.2f}"
    return response


# The page of a database outage (no clinician can be looked up then, so the language comes from the browser).
UNAVAILABLE_TEXT = {
    "en": "The database is unavailable for a moment. This page will work again in a few seconds: reload it.",
    "fr": "La base de données est momentanément indisponible. Rechargez la page dans quelques secondes.",
}


def unavailable_page(request: Request, retry_after_s: int) -> HTMLResponse:
    """The 503 page of a database outage: rendered without the database, and never cached."""
    lang = "en" if request.headers.get("accept-language", "").lower().startswith("en") else "fr"
    context = {"status": 503, "error_text": UNAVAILABLE_TEXT[lang]}
    page = render(request, "error.html", context, status_code=503, lang=lang)
    page.headers["Retry-After"] = str(retry_after_s)
    return page


def unavailable(scope: Scope, retry_after_s: int) -> HTMLResponse:
    """The dashboard's form of the 503 (``telemon.outage``): the page above."""
    return unavailable_page(Request(scope), retry_after_s)


def redirect(target: str, status_code: int = 303) -> RedirectResponse:
    return RedirectResponse(target, status_code=status_code, headers={"Cache-Control": "no-store"})


def secure_cookie(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(sessions.COOKIE, token, httponly=True, samesite="lax", secure=secure_cookie(request), path="/")


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None
