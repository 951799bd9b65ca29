"""Reading an HTTP body safely: size limit (413), gzip, JSON with the place of the error (422)."""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

from fastapi import HTTPException, Request

from ingest.readings import storable
from telemon import fastjson


class BodyError(HTTPException):
    """A refused body; ``raw`` keeps the start of what was sent, for the rejections table."""

    def __init__(self, status_code: int, detail: Any, raw: bytes = b"") -> None:
        super().__init__(status_code=status_code, detail=detail)
        self.raw = raw


async def read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise BodyError(413, f"body of {declared} bytes exceeds the limit of {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyError(413, f"body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        body = _gunzip(body, max_bytes)
    elif encoding not in ("", "identity"):
        raise BodyError(415, f"content-encoding {encoding!r} is not supported; use gzip or none")
    return body


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise BodyError(400, f"body is not valid gzip: {exc}", body[:256]) from None
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise BodyError(413, f"decompressed body exceeds the limit of {max_bytes} bytes")
    return data


def refusal_reason(exc: HTTPException) -> str:
    """One line for the rejections table, from a refused body's error."""
    detail = exc.detail
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        return f"HTTP {exc.status_code}: {first.get('msg')} at {first.get('loc')}"
    return f"HTTP {exc.status_code}: {detail}"


def parse_json(body: bytes) -> Any:
    try:
        return fastjson.loads(body)
    except json.JSONDecodeError as exc:
        detail = [
            {"loc": ["body", exc.pos], "line": exc.lineno, "column": exc.colno, "msg": exc.msg, "type": "json_invalid"}
        ]
        raise BodyError(422, detail, body) from None
    except (UnicodeDecodeError, RecursionError) as exc:
        detail = [{"loc": ["body"], "msg": f"body is not JSON: {type(exc).__name__}", "type": "json_invalid"}]
        raise BodyError(422, detail, body) from None
    except ValueError as exc:  # an integer of more than 4,300 digits, which Python refuses to convert
        msg = f"body is not JSON this server reads: {str(exc).split(';')[0][:120]}"
        raise BodyError(422, [{"loc": ["body"], "msg": msg, "type": "json_invalid"}], body) from None


# Past this depth an echoed value is cut (replaced by null): JSON encoders recurse once per level.
ECHO_DEPTH = 64


def json_safe(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` (decoded JSON) that an answer can carry back: numbers that JSON cannot write (NaN,
    Infinity) become null, text with NUL characters or lone surrogates gets them escaped, nesting beyond
    ``ECHO_DEPTH`` is cut to null."""
    kind = type(value)
    if kind is str:
        return storable(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is dict:
        if depth >= ECHO_DEPTH:
            return None
        return {storable(str(k)): json_safe(v, depth + 1) for k, v in value.items()}
    if kind is list:
        if depth >= ECHO_DEPTH:
            return None
        return [json_safe(v, depth + 1) for v in value]
    return value
