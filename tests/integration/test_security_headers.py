"""Security headers on every part of the app (JSON API, /docs, /openapi.json, dashboard), static assets left
cacheable, HSTS over https only, and /docs served without a CDN."""

from __future__ import annotations

import re

import asyncpg
import httpx
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from telemon.app.factory import create_app
from telemon.app.services import Services
from tests.support.factories import api_key, patient_with_device

COMMON = {"x-content-type-options": "nosniff", "x-frame-options": "DENY"}


def assert_protected(response: httpx.Response, *, cacheable: bool = False) -> None:
    for name, value in COMMON.items():
        assert response.headers.get(name) == value, (response.url, name)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"], response.url
    if cacheable:
        assert "no-store" not in response.headers.get("cache-control", ""), response.url
    else:
        assert response.headers["cache-control"] == "no-store", response.url


async def test_api_docs_openapi_and_dashboard_answers_carry_the_headers(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db)
    key = await api_key(db, "readings:read", teams=[setup.team_id])
    readings = await client.get(
        f"/api/v1/patients/{setup.patient_id}/readings", headers={"Authorization": f"Bearer {key}"}
    )
    assert readings.status_code == 200
    refused = await client.get(f"/api/v1/patients/{setup.patient_id}/readings")
    assert refused.status_code == 401
    docs = await client.get("/docs")
    openapi = await client.get("/openapi.json")
    login = await client.get("/login")
    health = await client.get("/healthz")
    for response in (readings, refused, docs, openapi, login, health):
        assert_protected(response)
        assert "strict-transport-security" not in response.headers  # plain http
    assert docs.status_code == openapi.status_code == login.status_code == 200
    # the dashboard keeps its own, fuller policy
    assert "default-src 'self'" in login.headers["content-security-policy"]


async def test_docs_load_nothing_from_another_origin(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    policy = docs.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self';" in policy  # no inline script, no other host
    # every script, stylesheet and icon is a path on this server
    sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert sources and all(source.startswith("/docs/assets/") for source in sources)
    assert "cdn" not in docs.text.lower() and "http" not in docs.text.replace("http-equiv", "")
    for source in sources:
        asset = await client.get(source)
        assert asset.status_code == 200, source
        assert_protected(asset, cacheable=True)
    licence = await client.get("/docs/assets/LICENSE")
    assert licence.status_code == 200 and "Apache License" in licence.text
    initializer = await client.get("/docs/assets/telemon-docs.js")
    assert '"/openapi.json"' in initializer.text and "validatorUrl: null" in initializer.text
    assert "/redoc" not in (await client.get("/openapi.json")).text
    assert (await client.get("/redoc")).status_code == 404


async def test_static_assets_may_be_cached(client: httpx.AsyncClient) -> None:
    style = await client.get("/static/app.css")
    assert style.status_code == 200
    assert_protected(style, cacheable=True)


async def test_hsts_over_https_and_from_a_trusted_proxy_only(services: Services) -> None:
    app = create_app(services=services)
    secure = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=secure, base_url="https://telemon.test") as http:
        for path in ("/healthz", "/docs", "/openapi.json", "/login"):
            answer = await http.get(path)
            assert answer.headers["strict-transport-security"] == "max-age=31536000", path
    # the app itself does not believe X-Forwarded-Proto from whoever sends it...
    plain = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=plain, base_url="http://telemon.test") as http:
        forged = await http.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        assert "strict-transport-security" not in forged.headers
    # ...but uvicorn's proxy-headers middleware (on by default in `telemon serve`) sets the scheme from the
    # header of a proxy it trusts (FORWARDED_ALLOW_IPS, 127.0.0.1 by default), and the app follows the scheme
    for address, expected in (("127.0.0.1", True), ("203.0.113.9", False)):
        proxied = ProxyHeadersMiddleware(app, trusted_hosts="127.0.0.1")
        transport = httpx.ASGITransport(app=proxied, client=(address, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://telemon.test") as http:
            answer = await http.get("/healthz", headers={"X-Forwarded-Proto": "https"})
            assert ("strict-transport-security" in answer.headers) is expected, address
