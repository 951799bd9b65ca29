"""What the team administration pages share: the administrator check, field errors of a form, and handing a
one-time link over (by e-mail when an SMTP server is configured, otherwise to the administrator's screen)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request

from clinician_ui import web
from clinician_ui.i18n import text
from clinician_ui.sessions import Clinician
from telemon import mail
from telemon.account_links import INVITATION, NewLink
from telemon.settings import Settings

log = logging.getLogger(__name__)

LINK_PATHS = {INVITATION: "/welcome/", "password_reset": "/reset/"}


async def admin(request: Request, who: Clinician = Depends(web.clinician)) -> Clinician:
    """The dependency of the administration pages: the signed-in clinician if she is an administrator, else 403."""
    if who.role != "admin":
        raise web.PageError(403, "error.admin_only")
    return who


@dataclass
class FormErrors:
    """Field → (text key, values): shown beside each field, with a summary at the top of the form."""

    fields: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def add(self, name: str, key: str, **values: Any) -> None:
        self.fields.setdefault(name, (key, values))

    def __bool__(self) -> bool:
        return bool(self.fields)

    def __contains__(self, name: str) -> bool:
        return name in self.fields

    def key(self, name: str) -> str:
        return self.fields[name][0]

    def values(self, name: str) -> dict[str, Any]:
        return self.fields[name][1]


def settings(request: Request) -> Settings:
    found: Settings = request.app.state.services.settings
    return found


def link_url(request: Request, link: NewLink, purpose: str) -> str:
    """The absolute address of a link: this site's own (the administrator's browser reached it under that name)."""
    return str(request.base_url).rstrip("/") + LINK_PATHS[purpose] + link.token


@dataclass(frozen=True)
class Delivery:
    url: str
    sent: bool
    failure: str | None  # why the e-mail failed, None when sent or when no server is configured


async def deliver(
    request: Request,
    who: Clinician,
    *,
    link: NewLink,
    purpose: str,
    to: str,
    language: str,
    team: str,
    role: str | None = None,
) -> Delivery:
    """Send the link to ``to`` when ``TELEMON_SMTP_URL`` is set; the caller shows it otherwise (or on failure)."""
    url = link_url(request, link, purpose)
    config = settings(request)
    if config.smtp_url is None:
        return Delivery(url, sent=False, failure=None)
    kind = "invitation" if purpose == INVITATION else "reset"
    values = {
        "inviter": who.display_name,
        "team": team,
        "role": text(f"role.{role}", language) if role else "",
        "when": link.expires_at.strftime("%Y-%m-%d %H:%M"),
        "link": url,
    }
    message = mail.message(
        sender=config.smtp_from,
        to=to,
        subject=text(f"mail.{kind}.subject", language, **values),
        body=text(f"mail.{kind}.body", language, **values),
    )
    try:
        await mail.send(config.smtp_url, message)
    except mail.MailError as exc:
        log.warning("e-mail not sent", extra={"purpose": purpose, "reason": str(exc)})
        return Delivery(url, sent=False, failure=type(exc.__cause__).__name__ if exc.__cause__ else "MailError")
    return Delivery(url, sent=True, failure=None)
