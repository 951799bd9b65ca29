"""Mounts every ingest transport on the app and gives them the one ingest service."""

from __future__ import annotations

from fastapi import FastAPI

from ingest import http


def include_routes(app: FastAPI) -> None:
    app.include_router(http.router)
