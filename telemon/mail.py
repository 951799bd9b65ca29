"""Outgoing e-mail through the SMTP server of ``TELEMON_SMTP_URL`` (invitations, password resets).

``smtp://user:pass@host:25`` sends in clear (a relay on the hospital network or the same machine),
``smtp+starttls://…:587`` upgrades the connection with STARTTLS, ``smtps://…:465`` speaks TLS from the start; the
server's certificate is checked against the system's authorities. The standard library's ``smtplib`` blocks, so a
message is sent in a worker thread, never on the event loop, with a time limit on the whole exchange."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from telemon.settings import SmtpAddress, parse_smtp_url

TIMEOUT_S = 20.0


class MailError(Exception):
    """The message could not be handed to the SMTP server (refused, unreachable, timed out)."""


def message(*, sender: str, to: str, subject: str, body: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(body)
    return mail


def _send(address: SmtpAddress, mail: EmailMessage) -> None:
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if address.tls == "tls":
        client = smtplib.SMTP_SSL(address.host, address.port, timeout=TIMEOUT_S, context=context)
    else:
        client = smtplib.SMTP(address.host, address.port, timeout=TIMEOUT_S)
    with client:
        if address.tls == "starttls":
            client.starttls(context=context)
        if address.username:
            client.login(address.username, address.password or "")
        client.send_message(mail)


async def send(url: str, mail: EmailMessage) -> None:
    """Hand ``mail`` to the SMTP server of ``url``; MailError when it is not accepted."""
    address = parse_smtp_url(url)
    try:
        await asyncio.wait_for(asyncio.to_thread(_send, address, mail), TIMEOUT_S * 2)
    except (OSError, smtplib.SMTPException, TimeoutError) as exc:
        raise MailError(f"{type(exc).__name__}: {exc}") from exc
