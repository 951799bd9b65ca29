"""The admin command line, run as a real process against the test database."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import pty
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from telemon.app.cli import build_parser
from telemon.patients import MAX_DUE_DATE_AHEAD_DAYS
from telemon.security import secret_hash, verify_password

PASSWORD = "correct horse battery"


def telemon(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TELEMON_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "telemon", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run_json(database_url: str, *args: str, stdin: str = "") -> dict[str, Any]:
    done = telemon(database_url, *args, "--json", stdin=stdin)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def due_in(days: int) -> str:
    """A due date ``days`` from today (UTC, the time zone of the patients these tests create)."""
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=days)).isoformat()


async def test_admin_commands_create_what_they_say(database_url: str, db: asyncpg.Pool) -> None:
    name = f"Maternité {uuid.uuid4().hex[:6]}"
    team = run_json(database_url, "create-team", "--name", name)
    email = f"dr-{uuid.uuid4().hex[:6]}@chu.example"
    clinician = run_json(
        database_url,
        "create-clinician",
        "--email",
        email,
        "--team",
        name,
        "--role",
        "Diabetologist",
        "--unit",
        "MMOL/L",
        stdin=f"{PASSWORD}\n",  # not a terminal: the password is the first line of standard input
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
        due_in(120),
        "--profile",
        "nice",
        "--treatment",
        "INSULIN",
    )
    device = run_json(database_url, "add-device", "--patient", patient["id"], "--kind", "CGM", "--label", "Dexcom G7")
    key = run_json(
        database_url, "create-api-key", "--team", name, "--label", "HIS", "--scopes", "Readings:Read,alerts:read"
    )

    stored = await db.fetchrow(
        "SELECT password_hash, role, display_unit FROM clinicians WHERE id = $1", uuid.UUID(clinician["id"])
    )
    assert verify_password(stored["password_hash"], PASSWORD)
    assert (stored["role"], stored["display_unit"]) == ("diabetologist", "mmol/L")  # stored spelling
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
                due_in(60),
            ],
            "telemon: --team: no care team with id or name 'no-such-team'",
        ),
        (
            ["create-api-key", "--team", "x", "--label", "x", "--scopes", "readings:read,everything"],
            "telemon: --scopes: unknown scope everything",
        ),
        (
            ["add-device", "--patient", "nobody", "--kind", "meter"],
            "telemon: --patient: no patient with id or external id 'nobody'",
        ),
        (["run-job", "no_such_job"], "telemon: NAME: no job 'no_such_job'"),
        (
            ["add-webhook", "--team", "x", "--url", "https://h.example/", "--events", "alert.opened,alert.deleted"],
            "telemon: --events: unknown event alert.deleted",
        ),
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
    base = ["create-patient", "--team", team, "--name", "x", "--due-date", due_in(60)]
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


def test_due_dates_no_followed_pregnancy_can_have_are_refused(database_url: str) -> None:
    team = run_json(database_url, "create-team", "--name", f"t-{uuid.uuid4().hex[:6]}")["id"]
    base = ["create-patient", "--team", team, "--name", "x", "--timezone", "UTC"]
    # NICE NG3's 6-13 weeks after the birth is the longest postpartum test window of the profiles (alerts.profiles)
    accepted = {"soon": 200, "far": MAX_DUE_DATE_AHEAD_DAYS - 5, "delivered": -(13 * 7 - 5)}
    for external_id, days in accepted.items():
        done = telemon(database_url, *base, "--external-id", external_id, "--due-date", due_in(days))
        assert done.returncode == 0, (days, done.stderr)
    ahead = telemon(database_url, *base, "--external-id", "B1", "--due-date", due_in(MAX_DUE_DATE_AHEAD_DAYS + 5))
    assert ahead.returncode == 2
    assert ahead.stderr.startswith(f"telemon: --due-date: {due_in(MAX_DUE_DATE_AHEAD_DAYS + 5)} is more than 10 months")
    past = telemon(database_url, *base, "--external-id", "B2", "--due-date", due_in(-(13 * 7 + 5)))
    assert past.returncode == 2
    assert past.stderr.startswith(f"telemon: --due-date: {due_in(-(13 * 7 + 5))} is more than 91 days before today")
    assert "NICE" in past.stderr
    for done in (ahead, past):
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_passwords_never_need_the_command_line(database_url: str, db_password_team: str) -> None:
    missing = telemon(
        database_url, "create-clinician", "--email", "a@chu.example", "--team", db_password_team, "--role", "nurse"
    )
    assert (missing.returncode, missing.stderr) == (
        2,
        "telemon: --password: no password given (type it at the prompt, or pipe it on standard input)\n",
    )
    # still accepted for old scripts, with a warning: other users of the machine see it in the process list
    given = telemon(
        database_url,
        "create-clinician",
        "--email",
        f"b-{uuid.uuid4().hex[:6]}@chu.example",
        "--team",
        db_password_team,
        "--role",
        "nurse",
        "--password",
        PASSWORD,
        "--json",
    )
    assert given.returncode == 0, given.stderr
    assert given.stderr.startswith("telemon: warning: --password on the command line can be read by every user")


async def test_the_password_prompt_on_a_terminal(database_url: str, db: asyncpg.Pool, db_password_team: str) -> None:
    email = f"c-{uuid.uuid4().hex[:6]}@chu.example"
    leader, follower = pty.openpty()
    command = ["create-clinician", "--email", email, "--team", db_password_team, "--role", "midwife", "--json"]
    process = subprocess.Popen(
        [sys.executable, "-m", "telemon", *command],
        env={**os.environ, "TELEMON_DATABASE_URL": database_url},
        stdin=follower,
        stderr=follower,
        stdout=subprocess.PIPE,
        start_new_session=True,  # no controlling terminal: getpass prompts on the pty, never on the tester's
    )
    os.close(follower)
    seen = ""  # everything the terminal showed
    try:
        for prompt in ("Password for the new clinician: ", "Once more: "):
            deadline = time.monotonic() + 30
            while prompt not in seen and time.monotonic() < deadline:
                seen += os.read(leader, 1024).decode()
            assert prompt in seen
            os.write(leader, f"{PASSWORD}\n".encode())  # after the prompt: getpass flushes earlier input
        out, _ = process.communicate(timeout=60)
    finally:
        os.close(leader)
    assert process.returncode == 0
    clinician_id = uuid.UUID(json.loads(out)["id"])
    stored = await db.fetchval("SELECT password_hash FROM clinicians WHERE id = $1", clinician_id)
    assert verify_password(stored, PASSWORD)
    assert PASSWORD not in seen  # the first entry was not echoed before the second prompt


def test_broker_service_password_from_standard_input(database_url: str, tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    done = telemon(
        database_url, "broker-passwords", "--file", str(passwd), "--ask-service-password", stdin="service-secret\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    line = next(line for line in passwd.read_text().splitlines() if line.startswith("telemon:"))
    iterations, salt, digest = line.removeprefix("telemon:$7$").split("$")
    expected = hashlib.pbkdf2_hmac("sha512", b"service-secret", base64.b64decode(salt), int(iterations))
    assert base64.b64decode(digest) == expected
    without = telemon(database_url, "broker-passwords", "--file", str(passwd))
    assert without.returncode == 0 and not any(line.startswith("telemon:") for line in passwd.read_text().splitlines())


@pytest.fixture
def db_password_team(database_url: str) -> str:
    name = f"pw-{uuid.uuid4().hex[:6]}"
    run_json(database_url, "create-team", "--name", name)
    return name


def test_a_webhook_is_added_from_the_command_line_with_its_secret_once(database_url: str) -> None:
    team = run_json(database_url, "create-team", "--name", f"Hooks {uuid.uuid4().hex[:6]}")
    added = run_json(
        database_url,
        *("add-webhook", "--team", team["id"], "--url", "http://10.0.0.7:8080/in", "--events", "alert.opened"),
    )
    assert added["secret"].startswith("whsec_") and added["events"] == ["alert.opened"]
    refused = telemon(
        database_url, "add-webhook", "--team", team["id"], "--url", "mirth/in", "--events", "alert.opened"
    )
    assert refused.returncode == 2 and refused.stderr.startswith("telemon: --url: the address must be an http")
    listed = run_json(database_url, "list-webhooks", "--team", team["id"])
    assert [(w["id"], w["url"], w["active"]) for w in listed["webhooks"]] == [
        (added["id"], "http://10.0.0.7:8080/in", True)
    ]
    assert "secret" not in listed["webhooks"][0]
