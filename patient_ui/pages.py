"""The companion app's pages: the shell at ``/app`` (the same for every patient: it holds no patient data, so the
service worker may keep it to open the app offline), its web app manifest, its service worker and its static
files. The patient's data comes from ``/api/v1/me`` with the token the page keeps."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from patient_ui import api
from patient_ui.texts import TEXTS, language_of

STATIC = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)

templates = Environment(
    loader=PackageLoader("patient_ui", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)

# The dashboard's policy: the project's own scripts and styles only, nothing from another origin.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "manifest-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
}
# The worker's file lives under /app/ but serves /app itself, the shell's address.
WORKER_HEADERS = {**HEADERS, "Service-Worker-Allowed": "/app", "Cache-Control": "no-cache"}


@router.get("/app")
async def shell(request: Request) -> HTMLResponse:
    language = language_of(request.headers.get("accept-language", ""))
    html = templates.get_template("app.html").render(
        lang=language, t=TEXTS[language], texts=json.dumps(TEXTS, ensure_ascii=False).replace("</", "<\\/")
    )
    return HTMLResponse(html, headers=HEADERS)


@router.get("/app/manifest.webmanifest")
async def manifest(request: Request) -> Response:
    language = language_of(request.headers.get("accept-language", ""))
    body = {
        "name": TEXTS[language]["app.title"],
        "short_name": TEXTS[language]["app.short"],
        "lang": language,
        "start_url": "/app",
        "scope": "/app",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#0b57a4",
        "icons": [
            {"src": "/app/static/icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": "/app/static/icon-512.png", "sizes": "512x512", "type": "image/png"},
            {"src": "/app/static/icon.svg", "sizes": "any", "type": "image/svg+xml"},
        ],
    }
    return JSONResponse(body, media_type="application/manifest+json", headers={"Cache-Control": "no-cache"})


@router.get("/app/sw.js")
async def worker() -> Response:
    return Response((STATIC / "sw.js").read_bytes(), media_type="text/javascript", headers=WORKER_HEADERS)


def include_routes(app: FastAPI) -> None:
    app.include_router(api.router)
    app.include_router(router)
    app.mount("/app/static", StaticFiles(directory=STATIC), name="patient-app-static")
