"""``make demo`` prints an administrator's login besides the clinician's, and its team has a pending invitation
(made once: a second start finds it and does not replace it)."""

from __future__ import annotations

import asyncpg
import pytest

from telemon.app import demo
from telemon.app.services import Services


async def test_the_demo_team_has_an_administrator_and_a_pending_invitation(
    services: Services, db: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    assert services.mqtt_url is None  # no simulated devices in this process: prepare() only sets the team up
    assert await demo.prepare(services) is None
    first = capsys.readouterr().err
    assert f"team administrator: {demo.ADMIN_EMAIL} / {demo.PASSWORD}" in first
    assert f"invitation for {demo.INVITED_EMAIL}: http://" in first and "/welcome/" in first
    assert await demo.prepare(services) is None
    assert f"invitation pending for {demo.INVITED_EMAIL}" in capsys.readouterr().err
    role = await db.fetchval("SELECT role FROM clinicians WHERE email = $1", demo.ADMIN_EMAIL)
    assert role == "admin"
    pending = await db.fetchval(
        "SELECT count(*) FROM clinician_links WHERE email = $1 AND closed_at IS NULL AND expires_at > now()",
        demo.INVITED_EMAIL,
    )
    assert pending == 1
