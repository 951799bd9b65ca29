"""The one list envelope of the API: ``{"items": [...], "next": <opaque cursor or null>}`` with ``?limit=``
(default 500, at most 5,000) and ``?cursor=``; the cursor is the position after the last item."""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import HTTPException, Query

DEFAULT_LIMIT = 500
MAX_LIMIT = 5000


def limit_param(limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="items per page")) -> int:
    return limit


def encode_cursor(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> list[Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(status_code=400, detail="cursor: not a cursor this API returned") from None
    if not isinstance(position, list):
        raise HTTPException(status_code=400, detail="cursor: not a cursor this API returned")
    return position


def envelope(items: list[dict[str, Any]], next_position: list[Any] | None) -> dict[str, Any]:
    return {"items": items, "next": encode_cursor(next_position) if next_position is not None else None}
