"""Security headers on every HTTP answer (the JSON API, ``/docs``, ``/openapi.json`` and the dashboard alike),
and the API documentation page served without any CDN.

- ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and ``Content-Security-Policy:
  frame-ancestors 'none'`` everywhere (a route that sets a fuller policy, as the dashboard's pages do, keeps it).
- ``Cache-Control: no-store`` everywhere except the static assets (``/static/``, ``/docs/assets/``): answers carry
  patient data, and a shared or browser cache must never keep them.
- ``Strict-Transport-Security`` when the request came over https. The scheme is the one uvicorn gives: the
  connection's own, or ``X-Forwarded-Proto`` when the request comes from a proxy uvicorn trusts (its
  ``--forwarded-allow-ips`` / ``FORWARDED_ALLOW_IPS``, 127.0.0.1 by default). The header is never taken from an
  untrusted client: over plain http a browser ignores HSTS anyway, and a forged one must not be able to pin it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = "max-age=31536000"  # a year; not includeSubDomains: other hosts of the domain are not ours to decide
CACHEABLE_PREFIXES = ("/static/", "/docs/assets/")
DEFAULTS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
    ("Referrer-Policy", "same-origin"),
)


class SecurityHeadersMiddleware:
    """Adds the headers above to every response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        cacheable = path.startswith(CACHEABLE_PREFIXES)
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in DEFAULTS:
                    headers.setdefault(name, value)
                if not cacheable:
                    headers.setdefault("Cache-Control", "no-store")
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Swagger UI from the vendored swagger-ui-dist (see its VENDORED.md), on this origin only.
SWAGGER_UI = Path(__file__).resolve().parent.parent / "clinician_ui" / "static" / "swagger-ui"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/telemon-docs.js"></script>
</body>
</html>
"""


def include_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI served from this app's own files (the app is created with ``docs_url=None``)."""
    app.mount("/docs/assets", StaticFiles(directory=SWAGGER_UI), name="docs-assets")
    page = DOCS_PAGE.format(title=app.title)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})
