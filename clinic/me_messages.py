"""The patient's conversation with her care team, for her app: ``GET|POST /api/v1/me/messages``, authenticated by the
app's own device token (kind ``app``).

The patient is the token's, never a parameter: a token reaches the messages of its own patient only, and nothing
else names a conversation. Listing is newest first in the API's list envelope, the cursor going to older messages;
``?after=<id>`` asks only for what came since the newest message the app already has. Listing shows the team's
messages to the patient, so those it returns are marked read (the team sees the receipt); ``read_at`` in the answer
is as it was before, so that the app can mark what is new to her.

``GET /api/v1/me/events`` is the same conversation pushed: a server-sent-event stream (read with ``fetch``, since
the token travels in the ``Authorization`` header) that says ``message`` when the team wrote to her or read what
she wrote, from the process's one LISTEN connection (:mod:`telemon.live`), so that her app fetches at once instead
of asking every few seconds. It carries ids only; the words come through the list above."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from clinic import messages
from clinic.errors import ClinicRoute
from telemon import live
from telemon.auth import AppDevice, app_device, pool
from telemon.pagination import cursor_int, decode_cursor, envelope

router = APIRouter(prefix="/api/v1", tags=["the patient's app"], route_class=ClinicRoute)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


Device = Annotated[AppDevice, Depends(app_device)]
Db = Annotated[asyncpg.Pool, Depends(pool)]


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(description=f"the text, 1 to {messages.MAX_BODY} characters (blanks around it dropped)")

    @field_validator("body", mode="before")
    @classmethod
    def _body(cls, value: object) -> str:
        try:
            return messages.check_body(value)
        except messages.BodyRefused as exc:
            raise ValueError(str(exc)) from None


class MessageOut(BaseModel):
    id: int
    author: str = Field(description="patient or team")
    author_name: str | None = Field(description="the clinician who wrote it (team messages)")
    body: str
    alert_id: int | None = Field(description="the alert of hers a team message answers")
    created_at: str
    read_at: str | None = Field(description="when the other side first saw it (null: not yet)")


class MessagePage(BaseModel):
    items: list[MessageOut]
    next: str | None


def message_out(message: messages.Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "author": "patient" if message.author == "patient" else "team",
        "author_name": message.clinician_name or None if message.author == "clinician" else None,
        "body": message.body,
        "alert_id": message.alert_id,
        "created_at": message.created_at.isoformat(),
        "read_at": message.read_at.isoformat() if message.read_at else None,
    }


@router.get(
    "/me/messages",
    summary="The patient's conversation with her care team, newest first (app token)",
    response_model=MessagePage,
    responses={401: {"description": "missing or unknown token"}, 403: {"description": "revoked, or not an app"}},
)
async def list_messages(
    device: Device,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="messages per page")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    after: Annotated[int | None, Query(ge=0, le=messages.LAST, description="only messages newer than this id")] = None,
) -> dict[str, Any]:
    position = decode_cursor(cursor, cursor_int)
    before = position[0] if position else messages.LAST
    async with db.acquire() as conn, conn.transaction():
        found = await messages.page(
            conn, device.patient_id, before=before, after=after or messages.FIRST, limit=limit + 1
        )
        more = len(found) > limit
        found = found[:limit]
        team_ids = [m.id for m in found if m.author == "clinician" and m.read_at is None]
        if team_ids:
            await messages.mark_read(
                conn, device.patient_id, author="clinician", up_to=max(team_ids), reader=device.actor
            )
    return envelope([message_out(m) for m in found], [found[-1].id] if more else None)


@router.post(
    "/me/messages",
    status_code=201,
    summary="Send a message to the care team (app token)",
    response_model=MessageOut,
    responses={
        401: {"description": "missing or unknown token"},
        403: {"description": "revoked, or not an app"},
        409: {"description": "monitoring has ended (the patient is archived)"},
    },
)
async def send_message(body: MessageIn, device: Device, db: Db) -> dict[str, Any]:
    """The team sees it at once on the patient's page and in the triage, as something to review."""
    if device.archived:
        raise HTTPException(status_code=409, detail="monitoring has ended: the care team no longer reads messages here")
    async with db.acquire() as conn, conn.transaction():
        sent = await messages.send(conn, device.patient_id, body.body, actor=device.actor, device_id=device.device_id)
    return message_out(sent)


@router.get(
    "/me/events",
    summary="The conversation pushed: a server-sent-event stream of `message` events (app token)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "`hello`, then `message` and `resync` events"},
        401: {"description": "missing or unknown token"},
        403: {"description": "revoked, or not an app"},
    },
)
async def events(request: Request, device: Device, db: Db) -> StreamingResponse:
    """``event: message`` with ``{"id", "author"}`` (a new message) or ``{"read": "patient"}`` (the team read
    hers); ``event: resync`` when events may have been missed (fetch the list again)."""
    hub = live.broadcaster(request.app)

    async def still_allowed() -> bool:
        try:  # the same check as the request's: a rotated or revoked token ends the stream
            await app_device(request, db)
        except HTTPException:
            return False
        return True

    async def deliver(batch: list[live.Event]) -> list[live.Event]:
        """Ids only: the words come through the list, which marks them read."""
        shaped = []
        for event in batch:
            said: dict[str, Any] = {k: event.data[k] for k in ("id", "author", "read") if k in event.data}
            if "author" in said:
                said["author"] = "team" if said["author"] == "clinician" else said["author"]
            shaped.append(live.Event(event.kind, said))
        return shaped

    async def frames() -> AsyncIterator[str]:
        async with hub.subscribe((), patient_id=device.patient_id) as subscription:
            async for chunk in live.stream(hub, subscription, still_allowed=still_allowed, deliver=deliver):
                yield chunk

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)
