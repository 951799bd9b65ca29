"""The admin command line, run as a real process against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import asyncpg
import pytest

from telemon.cli import build_parser
from telemon.security import secret_hash, verify_password


def telemon(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TELEMON_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "telemon", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def run_json(database_url: str, *args: str) -> dict[str, Any]:
    done = telemon(database_url, *args, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def test_admin_commands_create_what_they_say(database_url: str, db: asyncpg.Pool) -> None:
    name = f"Maternité {uuid.uuid4().hex[:6]}"
    team = run_json(database_url, "create-team", "--name", name)
    email = f"dr-{uuid.uuid4().hex[:6]}@chu.example"
    clinician = run_json(
        database_url,
        "create-clinician",
        "--email",
        email,
        "--password",
        "correct horse battery",
        "--team",
        name,
        "--role",
        "diabetologist",
    )
    patient = run_json(
        database_url,
        "create-patient",
        "--team",
        team["id"],
        "--external-id",
        "IPP-1",
        "--name",
        "Camille",
        "--timezone",
        "Europe/Paris",
        "--due-date",
        "2027-04-01",
        "--profile",
        "NICE",
        "--treatment",
        "insulin",
    )
    device = run_json(database_url, "add-device", "--patient", patient["id"], "--kind", "cgm", "--label", "Dexcom G7")
    key = run_json(database_url, "create-api-key", "--label", "HIS", "--scopes", "readings:read,alerts:read")

    stored = await db.fetchrow("SELECT password_hash FROM clinicians WHERE id = $1", uuid.UUID(clinician["id"]))
    assert verify_password(stored["password_hash"], "correct horse battery")
    assert (
        await db.fetchval(
            "SELECT count(*) FROM team_memberships WHERE clinician_id = $1 AND team_id = $2",
            uuid.UUID(clinician["id"]),
            uuid.UUID(team["id"]),
        )
        == 1
    )
    row = await db.fetchrow(
        "SELECT profile, treatment, time_zone FROM patients WHERE id = $1", uuid.UUID(patient["id"])
    )
    assert dict(row) == {"profile": "NICE", "treatment": "insulin", "time_zone": "Europe/Paris"}
    device_row = await db.fetchrow("SELECT kind, label, token_hash FROM devices WHERE id = $1", device["device_id"])
    assert device_row["kind"] == "cgm" and device_row["label"] == "Dexcom G7"
    assert device_row["token_hash"] == secret_hash(device["token"])  # only the hash is stored
    scopes = await db.fetchval("SELECT scopes FROM api_keys WHERE id = $1", uuid.UUID(key["id"]))
    assert scopes == ["readings:read", "alerts:read"]
    assert (
        await db.fetchval(
            "SELECT count(*) FROM audit_log WHERE actor = 'cli' AND patient_id = $1", uuid.UUID(patient["id"])
        )
        == 2
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "create-patient",
                "--team",
                "no-such-team",
                "--external-id",
                "x",
                "--name",
                "x",
                "--timezone",
                "UTC",
                "--due-date",
                "2027-01-01",
            ],
            "telemon: --team: no care team with id or name 'no-such-team'",
        ),
        (
            ["create-api-key", "--label", "x", "--scopes", "readings:read,everything"],
            "telemon: --scopes: unknown scope everything",
        ),
        (
            ["add-device", "--patient", "nobody", "--kind", "meter"],
            "telemon: --patient: no patient with id or external id 'nobody'",
        ),
        (["run-job", "no_such_job"], "telemon: NAME: no job 'no_such_job'"),
    ],
)
def test_bad_arguments_give_one_line_and_status_2(database_url: str, args: list[str], message: str) -> None:
    done = telemon(database_url, *args)
    assert done.returncode == 2
    assert done.stderr.startswith(message)
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_duplicate_external_id_and_bad_time_zone_and_profile(database_url: str) -> None:
    team = run_json(database_url, "create-team", "--name", f"t-{uuid.uuid4().hex[:6]}")["id"]
    base = ["create-patient", "--team", team, "--name", "x", "--due-date", "2027-01-01"]
    assert telemon(database_url, *base, "--external-id", "A1", "--timezone", "UTC").returncode == 0
    duplicate = telemon(database_url, *base, "--external-id", "A1", "--timezone", "UTC")
    assert (duplicate.returncode, duplicate.stderr) == (
        2,
        "telemon: --external-id: the team already has a patient with external id 'A1'\n",
    )
    zone = telemon(database_url, *base, "--external-id", "A2", "--timezone", "Paris")
    assert zone.stderr == "telemon: --timezone: 'Paris' is not an IANA time zone (for example Europe/Paris)\n"
    profile = telemon(database_url, *base, "--external-id", "A3", "--timezone", "UTC", "--profile", "WHO")
    assert profile.stderr == "telemon: --profile: 'WHO' is not one of FR, NICE, ADA\n"


def test_unreachable_database_and_unknown_role() -> None:
    down = telemon("postgresql://postgres@127.0.0.1:9/none", "migrate")
    assert down.returncode == 2
    assert down.stderr.startswith(
        "telemon: TELEMON_DATABASE_URL: cannot connect to postgresql://postgres@127.0.0.1:9/none"
    )
    malformed = telemon("postgresql://u@h:port/d", "migrate")
    assert malformed.stderr.startswith("telemon: TELEMON_DATABASE_URL: 'postgresql://u@h:port/d' has a malformed port")
    role = telemon("postgresql://postgres@127.0.0.1:9/none", "serve", "--roles", "api,worker")
    assert (role.returncode, role.stderr) == (
        2,
        "telemon: --roles: unknown role worker; choose from api, mqtt, scheduler\n",
    )


def test_migrate_twice_and_every_command_has_help(database_url: str) -> None:
    assert run_json(database_url, "migrate") == {"applied": []}
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {
        "serve",
        "migrate",
        "create-team",
        "create-clinician",
        "create-patient",
        "add-device",
        "create-api-key",
    } <= set(commands)
    for command in commands:
        done = subprocess.run(
            [sys.executable, "-m", "telemon", command, "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0 and "--json" in done.stdout, command
