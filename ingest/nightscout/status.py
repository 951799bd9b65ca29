"""What Nightscout apps call besides uploads: ``POST /devicestatus`` (answered, not kept), ``GET /status`` (readable
without a secret, as in Nightscout: it tells nothing about any patient) and ``GET /verifyauth``."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request

from ingest.body import json_safe
from ingest.http import service
from ingest.nightscout.auth import device_of, uploader
from ingest.nightscout.documents import epoch_ms, js_iso
from ingest.nightscout.router import read_docs, route
from ingest.readings import DeviceContext
from ingest.schemas import NightscoutAuth, NightscoutStatus, answered_with
from ingest.service import IngestService
from telemon.auth import pool


@route("POST", "/devicestatus", summary="Uploader and pump status; answered, not kept (Nightscout)")
async def post_devicestatus(
    request: Request,
    sender: Annotated[DeviceContext, Depends(uploader)],
    ingest: Annotated[IngestService, Depends(service)],
) -> list[Any]:
    """Uploaders send their battery and loop state beside the glucose; telemon stores glucose only, so this is
    answered 200 (an error would make some apps retry the upload forever) and not kept; the echo is what JSON can
    carry back of it (NaN and Infinity as null)."""
    docs: list[Any] = json_safe(await read_docs(request, sender, ingest))
    return docs


# --- status -----------------------------------------------------------------------------------------------------


@route(
    "GET",
    "/status",
    summary="Server status (Nightscout); no secret needed",
    response_model=None,
    responses=answered_with(NightscoutStatus, "the server's name, version, clock and units"),
)
async def status() -> dict[str, Any]:
    """What Nightscout apps read to check the server: name, version, clock and units (telemon answers mg/dL)."""
    now = dt.datetime.now(dt.UTC)
    return {
        "status": "ok",
        "name": "telemon",
        "version": package_version(),
        "serverTime": js_iso(now),
        "serverTimeEpoch": epoch_ms(now),
        "apiEnabled": True,
        "careportalEnabled": False,
        "settings": {"units": "mg/dl"},
    }


@route(
    "GET",
    "/verifyauth",
    summary="Whether the api-secret is valid (Nightscout)",
    response_model=None,
    responses=answered_with(NightscoutAuth, "always 200: message.message is OK or UNAUTHORIZED"),
)
async def verifyauth(request: Request, db: Annotated[asyncpg.Pool, Depends(pool)]) -> dict[str, Any]:
    """Always 200, as in Nightscout: ``message.message`` is ``OK`` for an active device's secret, else
    ``UNAUTHORIZED``. A device may upload and read its patient's readings; it is never an admin."""
    ok = await device_of(request, db) is not None
    return {
        "status": 200,
        "message": {
            "canRead": ok,
            "canWrite": ok,
            "isAdmin": False,
            "message": "OK" if ok else "UNAUTHORIZED",
            "rolefound": "FOUND" if ok else "NOTFOUND",
            "permissions": "ROLE" if ok else "DEFAULT",
        },
    }


# --- the pipeline -----------------------------------------------------------------------------------------------


def package_version() -> str:
    try:
        return importlib.metadata.version("telemon")
    except importlib.metadata.PackageNotFoundError:
        return "0"
