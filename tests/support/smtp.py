"""A real SMTP server for the tests (aiosmtpd, in a thread of its own): it keeps every message it accepts, and may
require a user name and password, as a hospital's relay would."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import re
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from telemon.embedded import free_port


class Inbox:
    """The messages the server accepted, as the recipient's mail client would read them."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd calls this name
        parsed = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"

    async def wait(self, count: int = 1, timeout: float = 15) -> EmailMessage:
        """The ``count``-th message, once it has arrived."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.messages) < count:
            assert asyncio.get_running_loop().time() < deadline, f"{len(self.messages)} messages, expected {count}"
            await asyncio.sleep(0.05)
        return self.messages[count - 1]


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content: str = part.get_content()  # type: ignore[attr-defined]
    return content


def link_in(message: EmailMessage) -> str:
    found: list[str] = re.findall(r"https?://\S+", body_of(message))
    assert len(found) == 1, found
    return found[0]


@contextlib.contextmanager
def smtp_server(login: tuple[str, str] | None = None) -> Iterator[tuple[str, Inbox]]:
    """An SMTP server on a free loopback port; yields its ``smtp://`` URL (with the login when one is required)
    and its inbox."""
    inbox = Inbox()
    port = free_port()
    options: dict[str, Any] = {}
    if login is not None:

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == login
            return AuthResult(success=ok, handled=False)  # a refusal answers 535 at once, as a real server does

        options = {"authenticator": authenticate, "auth_require_tls": False, "auth_required": True}
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        credentials = f"{login[0]}:{login[1]}@" if login else ""
        yield f"smtp://{credentials}127.0.0.1:{port}", inbox
    finally:
        controller.stop()
