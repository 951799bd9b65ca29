"""The event stream of the dashboard (server-sent events), fed by the process's one LISTEN connection.

What a stream sends is patient data (which patient got a reading, which alert opened), so it is audited: one row
when the stream opens (naming the teams it follows), then one row each time it sends data of patients it has not
named yet, listing them all at once — not a row per event nor per patient."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from clinician_ui import sessions, web
from telemon import audit, live
from telemon.live import Event

router = APIRouter(include_in_schema=False)


@router.get("/events", response_model=None)
async def events(request: Request) -> Response:
    db = web.pool(request)
    cookie = request.cookies.get(sessions.COOKIE)
    who = await sessions.clinician_of(db, cookie)
    if who is None:
        return Response(status_code=401, headers={"Cache-Control": "no-store"})
    hub = live.broadcaster(request.app)
    stream_id = str(uuid.uuid4())
    await audit.record(
        db,
        actor=who.actor,
        action="events.open",
        patient_ids=[],
        detail={"stream": stream_id, "team_ids": sorted(str(t) for t in who.team_ids)},
    )

    named: set[str] = set()  # patients this stream's audit rows already name

    async def still_allowed() -> bool:  # a signed-out or expired session ends its streams
        return await sessions.clinician_of(db, cookie) is not None

    async def deliver(batch: list[Event]) -> list[Event]:
        """One audit row for the patients of ``batch`` this stream has not named yet, then the batch."""
        new = [p for p in dict.fromkeys(str(e.data.get("patient_id") or "") for e in batch) if p and p not in named]
        if new:
            await audit.record(
                db,
                actor=who.actor,
                action="events.read",
                patient_ids=[uuid.UUID(p) for p in new],
                detail={"stream": stream_id},
            )
            named.update(new)
        return batch

    async def frames() -> AsyncIterator[str]:
        async with hub.subscribe(who.team_ids) as subscription:
            async for chunk in live.stream(hub, subscription, still_allowed=still_allowed, deliver=deliver):
                yield chunk

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)
