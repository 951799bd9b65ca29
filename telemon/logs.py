"""Logs on stderr, carrying the request id of the HTTP request being served: short lines a person reads in a
terminal, JSON objects (one a line) for whatever collects them otherwise (``TELEMON_LOG_FORMAT``)."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
import uuid
from typing import Any, TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telemon.db import unavailable

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The request id and the ``extra`` fields of a record, in the order they were given."""
    fields: dict[str, Any] = {}
    rid = request_id.get()
    if rid:
        fields["request_id"] = rid
    for key, value in record.__dict__.items():
        if key not in _RESERVED and not key.startswith("_"):
            fields[key] = value
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object a line: what a log collector (journald, Docker, Loki...) parses without a pattern."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """A short line for a person at a terminal: local time, level, the logger's last name, the message, then the
    extra fields as key=value (quoted when they hold spaces), e.g.
    ``14:02:07 WARNING outage: database unavailable retry_in=2.0``; a traceback follows on its own lines."""

    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        name = record.name.rsplit(".", 1)[-1]
        parts = [f"{when} {record.levelname:<7} {name}: {record.getMessage()}"]
        parts += [f"{key}={_text_value(value)}" for key, value in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text_value(value: Any) -> str:
    """Numbers, booleans and containers as JSON; anything else as its text, quoted when a space, a quote or an
    ``=`` would make the line ambiguous."""
    if value is None or isinstance(value, bool | int | float | dict | list | tuple):
        return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
    text = str(value)
    if text == "" or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


def formatter_for(log_format: str, stream: TextIO) -> logging.Formatter:
    """``text`` or ``json`` as asked; ``auto``: text when ``stream`` is a terminal (someone reads it), else JSON
    (a file, a pipe, a container's log driver)."""
    if log_format == "auto":
        log_format = "text" if _is_terminal(stream) else "json"
    return TextFormatter() if log_format == "text" else JsonFormatter()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def configure(level: str = "INFO", log_format: str = "auto", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter_for(log_format, handler.stream))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    pool_logger = logging.getLogger("asyncpg.pool")
    if not any(isinstance(f, QuietPoolRefill) for f in pool_logger.filters):
        pool_logger.addFilter(QuietPoolRefill())


class QuietPoolRefill(logging.Filter):
    """Drops asyncpg's warning (with a traceback) each time its pool fails to reconnect its idle connections
    while the database is unavailable: retried with backoff, it would repeat the traceback all outage long. The
    outage itself is logged once by the part of telemon whose work it stops (telemon.outage for HTTP)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or not unavailable(exc)


class RequestIdMiddleware:
    """Takes ``X-Request-ID`` from the request (or makes one), logs under it, and returns it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")[:64]
        rid = incoming if incoming.replace("-", "").isalnum() else uuid.uuid4().hex
        token = request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
