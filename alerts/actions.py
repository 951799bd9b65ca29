"""A person's or an integration's action on an alert (acknowledge, snooze, resolve): the change through the alert
store (which notifies) and its line in the audit trail, in the caller's transaction. The API and the dashboard
both act through :func:`act`, so the trail records the same details whoever acted."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Literal

import asyncpg

from alerts import store
from telemon import audit
from telemon.db import Conn

Action = Literal["acknowledge", "snooze", "resolve"]
ACTIONS: tuple[Action, ...] = ("acknowledge", "snooze", "resolve")


async def act(
    conn: Conn,
    alert_id: int,
    action: Action,
    actor: str,
    *,
    until: dt.datetime | None = None,
    detail: Mapping[str, object] | None = None,
) -> asyncpg.Record | None:
    """Apply ``action`` to alert ``alert_id`` as ``actor`` (``until``: the end of a snooze) and record it in the
    audit trail (``alert.<action>``: the alert, its rule, a snooze's end, and ``detail``: what else the action did,
    such as the plan version a dose review's Apply wrote); None when the alert is not in a state that allows it
    (nothing is recorded then)."""
    if action == "acknowledge":
        row = await store.acknowledge(conn, alert_id, actor)
    elif action == "snooze":
        if until is None:
            raise ValueError("a snooze needs its end")
        row = await store.snooze(conn, alert_id, actor, until)
    else:
        row = await store.resolve(conn, alert_id, actor)
    if row is not None:
        recorded: dict[str, object] = {**(detail or {}), "alert_id": alert_id, "rule": row["rule"]}
        if until is not None:
            recorded["until"] = until.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        await audit.record(conn, actor=actor, action=f"alert.{action}", patient_id=row["patient_id"], detail=recorded)
    return row
