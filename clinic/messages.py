"""Messages between a patient and her care team: one way to send, list and mark read, for the patient's app (through
the API, as her device) and the dashboard (as a clinician) alike.

A message is stored once and never changed (the database refuses an edit: a correction is a new message); what the
other side did with it is ``read_at``, set the first time the other side is shown it. Each send and each read is
audited and announced on ``telemon.channels.MESSAGES`` after the commit, so that an open dashboard and an open app
both show it without a reload. The team's message templates (both languages, editable) live here too."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Literal

import asyncpg

from clinic import queries
from telemon import audit, channels, mail
from telemon.db import Conn

log = logging.getLogger(__name__)

MAX_BODY = 4000  # characters: a message is read on a phone; a longer one is a letter, not a message
Author = Literal["patient", "clinician"]


class BodyRefused(ValueError):
    """The text cannot be a message; the reason says why, in the sender's terms."""


def check_body(text: object) -> str:
    """The body as stored, or BodyRefused. Leading and trailing blanks are dropped; a NUL (which PostgreSQL cannot
    store) and a lone surrogate (which is no character and cannot be encoded) are refused, not replaced: the sender
    should know that what she sent is not what would be stored."""
    if not isinstance(text, str):
        raise BodyRefused("must be text")
    body = text.strip()
    if not body:
        raise BodyRefused("must not be empty")
    if len(body) > MAX_BODY:
        raise BodyRefused(f"at most {MAX_BODY} characters (got {len(body)})")
    if "\x00" in body:
        raise BodyRefused("must not contain a NUL character")
    if any("\ud800" <= c <= "\udfff" for c in body):
        raise BodyRefused("must not contain a lone surrogate (not a character)")
    return body


@dataclass(frozen=True)
class Message:
    id: int
    patient_id: uuid.UUID
    author: Author
    clinician_id: uuid.UUID | None
    clinician_name: str
    device_id: str | None
    body: str
    alert_id: int | None
    created_at: dt.datetime
    read_at: dt.datetime | None
    read_by: str | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> Message:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


class NoSuchAlert(LookupError):
    """The alert a reply names is not one of this patient's."""


async def send(
    conn: Conn,
    patient_id: uuid.UUID,
    body: str,
    *,
    actor: str,
    clinician_id: uuid.UUID | None = None,
    device_id: str | None = None,
    alert_id: int | None = None,
) -> Message:
    """Store a message (``body`` already checked) from a clinician or from the patient's device, audited; it is
    announced when the caller's transaction commits. A reply to an alert must name one of the patient's alerts."""
    if alert_id is not None and await conn.fetchval(queries.ALERT_OF_PATIENT, patient_id, alert_id) is None:
        raise NoSuchAlert(alert_id)
    author: Author = "clinician" if clinician_id is not None else "patient"
    row = await conn.fetchrow(
        queries.INSERT_MESSAGE, patient_id, author, clinician_id, device_id, body, alert_id, channels.MESSAGES
    )
    assert row is not None
    message = Message.of(row)
    await audit.record(
        conn,
        actor=actor,
        action="message.send",
        patient_id=patient_id,
        detail={"message_id": message.id, "alert_id": alert_id, "author": author},
    )
    return message


FIRST = 0
LAST = 2**63 - 1  # message ids are bigint


async def page(
    conn: Conn | asyncpg.Pool, patient_id: uuid.UUID, *, before: int = LAST, after: int = FIRST, limit: int = 50
) -> list[Message]:
    """Up to ``limit`` messages of the patient, newest first, with ids in (after, before)."""
    rows = await conn.fetch(queries.MESSAGES_PAGE, patient_id, before, after, limit)
    return [Message.of(r) for r in rows]


async def mark_read(conn: Conn, patient_id: uuid.UUID, *, author: Author, up_to: int, reader: str) -> list[int]:
    """The messages of ``author`` up to id ``up_to`` that had not been read are read now by ``reader`` (the other
    side); audited when there were any, and announced so that the author sees the receipt."""
    row = await conn.fetchrow(queries.MARK_READ, patient_id, author, up_to, reader, channels.MESSAGES)
    ids: list[int] = list(row["ids"]) if row is not None else []
    if ids:
        await audit.record(
            conn, actor=reader, action="message.read", patient_id=patient_id, detail={"message_ids": ids}
        )
    return ids


# --- the team's templates ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    id: int
    team_id: uuid.UUID
    title_en: str
    title_fr: str
    body_en: str
    body_fr: str
    updated_at: dt.datetime
    updated_by: str

    @classmethod
    def of(cls, row: asyncpg.Record) -> Template:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})

    def title(self, lang: str) -> str:
        return self.title_fr if lang == "fr" else self.title_en

    def body(self, lang: str) -> str:
        return self.body_fr if lang == "fr" else self.body_en


MAX_TITLE = 80


def check_title(text: object) -> str:
    title = text.strip() if isinstance(text, str) else ""
    if not 1 <= len(title) <= MAX_TITLE or "\x00" in title or any("\ud800" <= c <= "\udfff" for c in title):
        raise BodyRefused(f"a title of 1 to {MAX_TITLE} characters")
    return title


async def templates(conn: Conn | asyncpg.Pool, team_id: uuid.UUID, lang: str) -> list[Template]:
    return [Template.of(r) for r in await conn.fetch(queries.TEAM_TEMPLATES, team_id, lang)]


async def template(conn: Conn | asyncpg.Pool, team_id: uuid.UUID, template_id: int) -> Template | None:
    row = await conn.fetchrow(queries.TEMPLATE, team_id, template_id)
    return Template.of(row) if row else None


async def save_template(
    conn: Conn,
    team_id: uuid.UUID,
    template_id: int | None,
    texts: tuple[str, str, str, str],
    *,
    actor: str,
) -> int | None:
    """Create (``template_id`` None) or change a template of the team from (title_en, title_fr, body_en, body_fr),
    already checked; audited. None: no such template of the team."""
    if template_id is None:
        saved = await conn.fetchval(queries.INSERT_TEMPLATE, team_id, *texts, actor)
    else:
        saved = await conn.fetchval(queries.UPDATE_TEMPLATE, team_id, template_id, *texts, actor)
    if saved is not None:
        action = "template.create" if template_id is None else "template.update"
        await audit.record(conn, actor=actor, action=action, detail={"team_id": str(team_id), "template_id": saved})
    return int(saved) if saved is not None else None


async def delete_template(conn: Conn, team_id: uuid.UUID, template_id: int, *, actor: str) -> bool:
    gone = await conn.fetchval(queries.DELETE_TEMPLATE, team_id, template_id)
    if gone is not None:
        await audit.record(
            conn, actor=actor, action="template.delete", detail={"team_id": str(team_id), "template_id": gone}
        )
    return gone is not None


async def patient_language(conn: Conn | asyncpg.Pool, patient_id: uuid.UUID) -> str:
    """The language the patient reads (set at enrolment, changed in her app): templates are sent in it."""
    row = await conn.fetchrow(queries.PATIENT_CONTACT, patient_id)
    return str(row["language"]) if row is not None else "fr"


# --- the notice by e-mail ---------------------------------------------------------------------------------------

NOTICE = {
    "en": (
        "New message from your care team",
        "You have a new message from your care team. Open the telemon app to read it.\n\n"
        "This e-mail contains no medical information. Please do not reply to it.",
    ),
    "fr": (
        "Nouveau message de votre équipe soignante",
        "Vous avez un nouveau message de votre équipe soignante. Ouvrez l'application telemon pour le lire.\n\n"
        "Cet e-mail ne contient aucune information médicale. Merci de ne pas y répondre.",
    ),
}


async def notify_by_email(
    conn: Conn | asyncpg.Pool, patient_id: uuid.UUID, *, smtp_url: str | None, sender: str
) -> bool:
    """Tell the patient by e-mail that the team wrote to her, when an SMTP server is set and she gave an address.
    The e-mail says only that there is a message: its text, her name and her readings stay in telemon. A failure is
    logged and never undoes the message (she sees it in the app anyway)."""
    if smtp_url is None:
        return False
    row = await conn.fetchrow(queries.PATIENT_CONTACT, patient_id)
    if row is None or not row["email"]:
        return False
    subject, text = NOTICE.get(row["language"], NOTICE["en"])
    try:
        await mail.send(smtp_url, mail.message(sender=sender, to=row["email"], subject=subject, body=text))
    except mail.MailError:
        log.warning("message notice not sent", extra={"patient_id": str(patient_id)}, exc_info=True)
        return False
    return True
