"""Mounts the clinician dashboard on the app."""

from __future__ import annotations

from fastapi import FastAPI


def include_routes(app: FastAPI) -> None:
    """The dashboard's pages and static files (being written)."""
