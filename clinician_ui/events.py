"""The event stream of the dashboard (server-sent events), fed by the process's one LISTEN connection.

What a stream sends is patient data (which patient got a reading, which alert opened), so it is audited: one row
when the stream opens (naming the teams it follows), then one row each time it sends data of patients it has not
named yet, listing them all at once — not a row per event nor per patient."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from clinician_ui import sessions, web
from telemon import audit, live
from telemon.live import Event

router = APIRouter(include_in_schema=False)

HEARTBEAT_S = 15.0  # a comment line now and then keeps proxies from closing an idle stream
SESSION_CHECK_S = 60.0  # a signed-out or expired session ends its streams
MAX_STREAM_S = 30 * 60.0  # streams are recycled (the browser reconnects by itself)
RETRY_MS = 3000
BATCH_EVENTS = 256  # events already waiting that are sent together, after one audit row for their new patients


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

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        named: set[str] = set()  # patients this stream's audit rows already name
        async with hub.subscribe(who.team_ids) as subscription:
            yield f"retry: {RETRY_MS}\n\n"
            with contextlib.suppress(TimeoutError):
                await hub.wait_listening()
            yield live.frame(Event("hello", {}))
            opened = last_beat = last_check = loop.time()
            while not live.shutdown_requested() and loop.time() - opened < MAX_STREAM_S:
                if subscription.overflowed:
                    while not subscription.queue.empty():
                        subscription.queue.get_nowait()
                    subscription.overflowed = False
                    yield live.frame(Event("resync", {}))
                try:
                    event = await asyncio.wait_for(subscription.queue.get(), 1.0)
                except TimeoutError:
                    now = loop.time()
                    if now - last_beat >= HEARTBEAT_S:
                        last_beat = now
                        yield ": ping\n\n"
                    if now - last_check >= SESSION_CHECK_S:
                        last_check = now
                        if await sessions.clinician_of(db, cookie) is None:
                            return
                    continue
                batch = [event]
                while len(batch) < BATCH_EVENTS and not subscription.queue.empty():
                    batch.append(subscription.queue.get_nowait())
                new = [
                    p for p in dict.fromkeys(str(e.data.get("patient_id") or "") for e in batch) if p and p not in named
                ]
                if new:
                    await audit.record(
                        db,
                        actor=who.actor,
                        action="events.read",
                        patient_ids=[uuid.UUID(p) for p in new],
                        detail={"stream": stream_id},
                    )
                    named.update(new)
                for sent in batch:
                    yield live.frame(sent)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
