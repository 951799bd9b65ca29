"""Test records made through telemon's own functions, each with unique names."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from telemon import api_keys, devices, patients, teams


@dataclass(frozen=True)
class Setup:
    team_id: uuid.UUID
    patient_id: uuid.UUID
    device_id: str
    token: str


async def patient_with_device(
    db: asyncpg.Pool,
    *,
    kind: str = "meter",
    time_zone: str = "Europe/Paris",
    due_date: dt.date | None = None,
    profile: str = "FR",
    treatment: str = "diet",
) -> Setup:
    async with db.acquire() as conn:
        team_id = await teams.create_team(conn, f"team-{uuid.uuid4().hex[:8]}")
        patient_id = await patients.create_patient(
            conn,
            team_id=team_id,
            external_id=f"ext-{uuid.uuid4().hex[:8]}",
            display_name="Test Patient",
            time_zone=time_zone,
            due_date=due_date or (dt.date.today() + dt.timedelta(days=60)),
            profile=profile,
            treatment=treatment,
        )
        new = await devices.add_device(conn, patient_id=patient_id, kind=kind)
    return Setup(team_id, patient_id, new.device_id, new.token)


async def add_device(db: asyncpg.Pool, patient_id: uuid.UUID, kind: str = "meter") -> devices.NewDevice:
    async with db.acquire() as conn:
        return await devices.add_device(conn, patient_id=patient_id, kind=kind)


async def api_key(db: asyncpg.Pool, *scopes: str, teams: Sequence[uuid.UUID] | None = None) -> str:
    """A key of ``teams``; by default of every care team that exists now, for tests whose subject is not the
    team scoping (they create the key after their patients). Tests of the scoping name the teams."""
    async with db.acquire() as conn:
        team_ids = (
            list(teams) if teams is not None else [r["id"] for r in await conn.fetch("SELECT id FROM care_teams")]
        )
        new = await api_keys.create_api_key(conn, label="test", scopes=list(scopes), team_ids=team_ids)
    return new.key
