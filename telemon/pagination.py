"""The one list envelope of the API: ``{"items": [...], "next": <opaque cursor or null>}`` with ``?limit=``
(default 500, at most 5,000) and ``?cursor=``; the cursor is the position after the last item."""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Query

DEFAULT_LIMIT = 500
MAX_LIMIT = 5000


def limit_param(limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="items per page")) -> int:
    return limit


def encode_cursor(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, *fields: Callable[[Any], Any]) -> list[Any] | None:
    """The position a cursor holds, None without a cursor. With ``fields`` (one converter per element, such as
    ``cursor_instant`` or ``cursor_int``), each element is checked and converted, so that what reaches a query is
    of its column's type and range: a cursor that was edited (``Infinity``, a number beyond 64 bits, a time out
    of range, nesting too deep) is a 400 like any other cursor this API did not return."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeError, RecursionError):
        raise _not_a_cursor() from None
    if not isinstance(position, list):
        raise _not_a_cursor()
    if not fields:
        return position
    if len(position) != len(fields):
        raise _not_a_cursor()
    try:
        return [convert(value) for convert, value in zip(fields, position, strict=True)]
    except (ValueError, TypeError, OverflowError):
        raise _not_a_cursor() from None


def _not_a_cursor() -> HTTPException:
    return HTTPException(status_code=400, detail="cursor: not a cursor this API returned")


def cursor_int(value: Any, bits: int = 64) -> int:
    """A signed integer of ``bits`` bits (a bigint id by default), given as a JSON integer."""
    if type(value) is not int or not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise ValueError(f"not a {bits}-bit integer")
    return value


def cursor_int32(value: Any) -> int:
    return cursor_int(value, 32)


def cursor_instant(value: Any) -> datetime.datetime:
    """An ISO 8601 instant with its offset, that PostgreSQL can hold (it is converted to UTC on the way)."""
    if type(value) is not str:
        raise TypeError("not a string")
    instant = datetime.datetime.fromisoformat(value)
    if instant.tzinfo is None:
        raise ValueError("no offset")
    return instant.astimezone(datetime.UTC)  # OverflowError beyond year 1 or 9999


def envelope(items: list[dict[str, Any]], next_position: list[Any] | None) -> dict[str, Any]:
    return {"items": items, "next": encode_cursor(next_position) if next_position is not None else None}
