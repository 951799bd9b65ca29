"""A hospital's webhook receiver for tests: a real HTTP server on a loopback port that checks each request's
Standard Webhooks signature and answers from a script (``500, 500, 200``; ``None`` = never answer)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    @property
    def event(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


@dataclass
class Receiver:
    secret: str = ""
    answers: list[int | None] = field(default_factory=list)  # consumed in order; then 200
    received: list[Received] = field(default_factory=list)
    port: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/telemon"

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        """The receiver's side of Standard Webhooks, written from the specification, not from telemon's code."""
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        given = [part.partition(",")[2] for part in headers["webhook-signature"].split() if part.startswith("v1,")]
        return any(hmac.compare_digest(expected, candidate) for candidate in given)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")[1:]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append(Received(headers, body, self.verify(headers, body)))
            self.arrived.set()
            answer = self.answers.pop(0) if self.answers else 200
            if answer is None:
                await asyncio.sleep(3600)  # a receiver that hangs
                return
            writer.write(f"HTTP/1.1 {answer} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def receiver(answers: Sequence[int | None] = ()) -> AsyncIterator[Receiver]:
    found = Receiver(answers=list(answers))
    server = await asyncio.start_server(found._handle, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    try:
        yield found
    finally:
        server.close()
