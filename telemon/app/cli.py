"""The ``telemon`` command line: run the service and administer it.

Every command has ``--help``; ``--json`` prints one JSON object for scripts. A wrong setting or argument prints
one line naming it and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg

from alerts.profiles import LONGEST_POSTPARTUM
from telemon import api_keys, audit, devices, loop, patients, runtime, teams, webhooks
from telemon.db import Conn, connect, describe
from telemon.migrate import migrate
from telemon.settings import ROLES, Settings, SettingsError, parse_roles

Handler = Callable[[argparse.Namespace, asyncpg.Connection], Awaitable[dict[str, Any]]]


def _date(where: str) -> Callable[[str], dt.date]:
    def parse(text: str) -> dt.date:
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{where}: {text!r} is not a date (YYYY-MM-DD)") from None

    return parse


def _choice(choices: Sequence[str]) -> Callable[[str], str]:
    """Argument type: one of ``choices`` whatever its case, normalised to the stored spelling (``nice`` is ``NICE``,
    ``MMOL/L`` is ``mmol/L``). Anything else passes through unchanged to the command's own check, which names the
    argument and the choices on one line."""
    spelling = {choice.casefold(): choice for choice in choices}

    def parse(text: str) -> str:
        return spelling.get(text.strip().casefold(), text)

    return parse


def _choices(choices: Sequence[str]) -> Callable[[str], str]:
    """Argument type: a comma-separated list of ``choices``, each normalised as by :func:`_choice`."""
    one = _choice(choices)

    def parse(text: str) -> str:
        return ",".join(one(item) for item in text.split(","))

    return parse


def check_due_date(due_date: dt.date, time_zone: str) -> None:
    """The core's rule on due dates (``telemon.patients.check_due_date``), as a command-line error."""
    try:
        patients.check_due_date(due_date, time_zone, postpartum_days=LONGEST_POSTPARTUM.postpartum_end_days)
    except patients.FieldError as exc:
        why = (
            f" ({LONGEST_POSTPARTUM.code}'s {LONGEST_POSTPARTUM.postpartum_test_en})"
            if exc.code.endswith("early")
            else ""
        )
        raise SettingsError(f"--due-date: {exc}{why}") from None


def _uuid(where: str) -> Callable[[str], uuid.UUID]:
    def parse(text: str) -> uuid.UUID:
        try:
            return uuid.UUID(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{where}: {text!r} is not an id (a UUID)") from None

    return parse


async def cmd_migrate(args: argparse.Namespace, conn: Conn) -> dict[str, Any]:
    return {"applied": args.applied}


async def cmd_create_team(args: argparse.Namespace, conn: Conn) -> dict[str, Any]:
    team_id = await teams.create_team(conn, args.name)
    await audit.record(conn, actor="cli", action="team.create", detail={"team_id": str(team_id)})
    return {"id": str(team_id)}


async def cmd_create_clinician(args: argparse.Namespace, conn: Conn) -> dict[str, Any]:
    team = await teams.find_team(conn, args.team)
    clinician_id = await teams.create_clinician(
        conn,
        email=args.email,
        password=args.password,
        team_id=team.id,
        role=args.role,
        display_name=args.name or "",
        language=args.language,
        display_unit=args.unit,
    )
    await audit.record(conn, actor="cli", action="clinician.create", detail={"clinician_id": str(clinician_id)})
    return {"id": str(clinician_id)}


def check_create_patient(args: argparse.Namespace) -> None:
    """What ``create-patient`` can refuse before any database is reached."""
    zone = patients.check_time_zone(args.timezone)
    check_due_date(args.due_date, zone)  # judged on the date where the patient lives
    patients.check_choice(args.profile, patients.PROFILES, "--profile")
    patients.check_choice(args.treatment, patients.TREATMENTS, "--treatment")


async def cmd_create_patient(args: argparse.Namespace, conn: Conn) -> dict[str, Any]:
    team = await teams.find_team(conn, args.team)
    patient_id = await patients.create_patient(
        conn,
        team_id=team.id,
        external_id=args.external_id,
        display_name=args.name,
        time_zone=args.timezone,
        due_date=args.due_date,
        profile=args.profile,
        treatment=args.treatment,
        readings_per_day=args.readings_per_day,
        diagnosis_date=args.diagnosis_date,
    )
    await audit.record(conn, actor="cli", action="patient.create", patient_id=patient_id)
    return {"id": str(patient_id)}


async def cmd_add_device(args: argparse.Namespace, conn: Conn) -> dict[str, Any]:
    patient = await patients.find_patient(conn, args.patient)
    new = await devices.add_device(conn, patient_id=patient.id, kind=args.kind, label=args.label)
    await audit.record(
        conn, actor="cli", action="device.add", patient_id=patient.id, detail={"device_id": new.device_id}
    )
    return {"device_id": new.device_id, "token": new.token}


async def cmd_set_device(args: argparse.Namespace, conn: Conn) -> dict[str, Any]:
    if not await devices.set_active(conn, args.device, args.active):
        raise SettingsError(f"--device: no device {args.device!r}")
    await audit.record(
        conn,
        actor="cli",
        action="device.enable" if args.active else "device.disable",
        detail={"device_id": args.device},
    )
    return {"device_id": args.device, "active": args.active}


async def cmd_create_api_key(args: argparse.Namespace, conn: Conn) -> dict[str, Any]:
    scopes = api_keys.parse_scopes(args.scopes)
    found = {team.id: team for team in [await teams.find_team(conn, ref) for ref in args.team]}
    new = await api_keys.create_api_key(conn, label=args.label, scopes=scopes, team_ids=list(found))
    team_ids = [str(t) for t in found]
    await audit.record(
        conn,
        actor="cli",
        action="api_key.create",
        detail={"api_key_id": str(new.id), "scopes": scopes, "team_ids": team_ids},
    )
    return {"id": str(new.id), "key": new.key, "teams": [team.name for team in found.values()]}


async def cmd_list_api_keys(args: argparse.Namespace, conn: Conn) -> dict[str, Any]:
    team_id = (await teams.find_team(conn, args.team)).id if args.team else None

    def when(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "api_keys": [
            {
                "id": str(k.id),
                "label": k.label,
                "teams": [{"id": str(t), "name": name} for t, name in k.teams],
                "scopes": list(k.scopes),
                "active": k.active,
                "created_at": when(k.created_at),
                "last_used_at": when(k.last_used_at),
                "revoked_at": when(k.revoked_at),
            }
            for k in await api_keys.list_api_keys(conn, team_id)
        ]
    }


async def cmd_revoke_api_key(args: argparse.Namespace, conn: Conn) -> dict[str, Any]:
    changed, revoked_at = await api_keys.revoke_api_key(conn, args.id)
    if changed:
        await audit.record(conn, actor="cli", action="api_key.revoke", detail={"api_key_id": str(args.id)})
    return {
        "id": str(args.id),
        "active": False,
        "revoked_at": revoked_at.isoformat() if revoked_at else None,
        "already_revoked": not changed,
    }


async def cmd_add_webhook(args: argparse.Namespace, conn: Conn) -> dict[str, Any]:
    try:
        events = webhooks.check_events(args.events.split(","))
        team = await teams.find_team(conn, args.team)
        endpoint, secret = await webhooks.create(
            conn, team_id=team.id, url=args.url, events=events, label=args.label, actor="cli"
        )
    except webhooks.WebhookError as exc:
        raise SettingsError(f"--{exc.field}: {exc}") from None
    return {"id": str(endpoint.id), "secret": secret, "team": team.name, "url": endpoint.url, "events": endpoint.events}


async def cmd_list_webhooks(args: argparse.Namespace, conn: Conn) -> dict[str, Any]:
    team = await teams.find_team(conn, args.team)
    return {
        "webhooks": [
            {
                "id": str(e.id),
                "url": e.url,
                "events": list(e.events),
                "active": e.active,
                "disabled_reason": e.disabled_reason,
                "delivered_24h": e.delivered_24h,
                "failed_24h": e.failed_24h,
                "pending": e.pending,
            }
            for e in await webhooks.endpoints_of(conn, [team.id])
        ]
    }


async def cmd_broker_passwords(args: argparse.Namespace, conn: Conn) -> dict[str, Any]:
    from telemon.broker_passwords import mosquitto_password_hash, render_password_file

    accounts = await devices.broker_accounts(conn)
    if args.service_password:
        accounts.insert(0, (args.service_user, mosquitto_password_hash(args.service_password)))
    await asyncio.to_thread(Path(args.file).write_text, render_password_file(accounts), encoding="utf-8")
    return {"accounts": len(accounts), "file": args.file}


async def cmd_run_job(args: argparse.Namespace, conn: Conn) -> dict[str, Any]:
    from telemon.app.domains import all_jobs
    from telemon.db import create_pool
    from telemon.scheduler import run_job

    jobs = all_jobs()
    if args.name not in jobs:
        raise SettingsError(f"NAME: no job {args.name!r}; jobs: {', '.join(sorted(jobs))}")
    pool = await create_pool(args.database_url, max_size=4)
    try:
        result = await run_job(pool, jobs[args.name])
    finally:
        await pool.close()
    return {"job": args.name, "result": result}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="telemon", description="telemon: telemonitoring of gestational diabetes")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", parents=[common], help="run the service", description="Run the service.")
    serve.add_argument("--roles", help=f"comma-separated roles among {', '.join(ROLES)} (default: TELEMON_ROLES, all)")
    serve.add_argument("--host", help="listen address (default: TELEMON_HOST)")
    serve.add_argument("--port", type=int, help="listen port (default: TELEMON_PORT)")

    def admin(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        command.set_defaults(handler=handler)
        return command

    admin("migrate", cmd_migrate, "apply the database migrations (safe to run twice, or from two processes at once)")

    p = admin("create-team", cmd_create_team, "create a care team; prints its id")
    p.add_argument("--name", required=True)

    p = admin("create-clinician", cmd_create_clinician, "create a clinician account in a team; prints its id")
    p.add_argument("--email", required=True)
    p.add_argument(
        "--password",
        help="avoid: every user of the machine can read it in the process list; leave it out to type it at a "
        "prompt, or pipe it as one line of standard input (at least 10 characters; stored as an argon2id hash)",
    )
    p.add_argument("--team", required=True, help="team id or name")
    p.add_argument("--role", required=True, type=_choice(teams.ROLES), choices=teams.ROLES)
    p.add_argument("--name", help="display name (default: the part of the email before @)")
    p.add_argument("--language", default="fr", type=_choice(teams.LANGUAGES), choices=teams.LANGUAGES)
    p.add_argument(
        "--unit",
        default="mg/dL",
        type=_choice(teams.DISPLAY_UNITS),
        choices=teams.DISPLAY_UNITS,
        help="glucose display unit",
    )
    p.set_defaults(secrets=[("password", "--password", "Password for the new clinician: ", True, None)])

    p = admin("create-patient", cmd_create_patient, "create a patient (a pregnancy) in a team; prints its id")
    p.add_argument("--team", required=True, help="team id or name")
    p.add_argument("--external-id", required=True, help="the hospital's id, unique within the team")
    p.add_argument("--name", required=True, help="display name")
    p.add_argument("--timezone", required=True, help="IANA time zone, such as Europe/Paris")
    p.add_argument(
        "--due-date",
        required=True,
        type=_date("--due-date"),
        help="YYYY-MM-DD; at most 10 months ahead, at most the longest postpartum follow-up (13 weeks) past",
    )
    p.add_argument("--diagnosis-date", type=_date("--diagnosis-date"), help="YYYY-MM-DD")
    p.add_argument(
        "--profile",
        default="FR",
        type=_choice(patients.PROFILES),
        help=f"guideline profile: {', '.join(patients.PROFILES)} (default FR)",
    )
    p.add_argument(
        "--treatment",
        default="diet",
        type=_choice(patients.TREATMENTS),
        help=f"{', '.join(patients.TREATMENTS)} (default diet)",
    )
    p.set_defaults(check=check_create_patient)
    p.add_argument("--readings-per-day", type=int, default=4, help="prescribed readings per day (default 4)")

    p = admin("add-device", cmd_add_device, "register a device for a patient; prints its id and token (shown once)")
    p.add_argument("--patient", required=True, help="patient id or external id")
    p.add_argument("--kind", required=True, type=_choice(devices.KINDS), help=f"{', '.join(devices.KINDS)}")
    p.add_argument("--label", default="", help="free text, such as the meter's model")

    p = admin("disable-device", cmd_set_device, "refuse a device's readings from now on")
    p.add_argument("--device", required=True)
    p.set_defaults(active=False)
    p = admin("enable-device", cmd_set_device, "accept a disabled device's readings again")
    p.add_argument("--device", required=True)
    p.set_defaults(active=True)

    p = admin(
        "create-api-key",
        cmd_create_api_key,
        "create a scoped API key for an integration; prints its id and key (shown once)",
    )
    p.add_argument(
        "--team",
        required=True,
        action="append",
        help="care team id or name whose patients the key may see; repeat for several teams",
    )
    p.add_argument("--label", required=True)
    p.add_argument(
        "--scopes",
        required=True,
        type=_choices(api_keys.SCOPES),
        help=f"comma-separated among {', '.join(api_keys.SCOPES)}",
    )

    p = admin(
        "add-webhook",
        cmd_add_webhook,
        "register a signed webhook endpoint for a team; prints its id and secret (shown once)",
    )
    p.add_argument("--team", required=True, help="care team id or name whose events are sent")
    p.add_argument("--url", required=True, help="http(s) address the events are POSTed to")
    p.add_argument(
        "--events",
        required=True,
        type=_choices(webhooks.EVENTS),
        help=f"comma-separated among {', '.join(webhooks.EVENTS)}",
    )
    p.add_argument("--label", default="")

    p = admin("list-webhooks", cmd_list_webhooks, "list a team's webhook endpoints and their last day's deliveries")
    p.add_argument("--team", required=True, help="care team id or name")

    p = admin(
        "list-api-keys",
        cmd_list_api_keys,
        "list the API keys: id, label, teams, scopes, active, created, last used (never the key)",
    )
    p.add_argument("--team", help="only the keys of this care team (id or name)")
    p.set_defaults(text=_api_keys_text)

    p = admin("revoke-api-key", cmd_revoke_api_key, "refuse an API key from now on (recorded in the audit trail)")
    p.add_argument("--id", required=True, type=_uuid("--id"), help="the key's id (see list-api-keys)")

    p = admin("broker-passwords", cmd_broker_passwords, "write Mosquitto's password file for every active device")
    p.add_argument("--file", required=True, help="where to write it (Mosquitto's password_file)")
    p.add_argument("--service-user", default="telemon", help="the consumer's broker account")
    password = p.add_mutually_exclusive_group()
    password.add_argument(
        "--ask-service-password",
        action="store_true",
        help="add that account, its password typed at a prompt or piped as one line of standard input "
        "(without this option the account is left out of the file)",
    )
    password.add_argument(
        "--service-password",
        help="avoid: every user of the machine can read it in the process list; use --ask-service-password",
    )
    p.set_defaults(
        secrets=[
            (
                "service_password",
                "--service-password",
                "Broker password of the service account: ",
                False,
                "ask_service_password",
            )
        ]
    )

    p = admin("run-job", cmd_run_job, "run one scheduled job now, by name")
    p.add_argument("name", metavar="NAME")
    _client_commands(sub, common)
    return parser


# --- simulate and replay: clients of a running telemon ----------------------------------------------------------


def _client_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    from tools.simulator.clients import DEFAULT_URL

    client = argparse.ArgumentParser(add_help=False)
    client.add_argument("--url", default=DEFAULT_URL, help=f"telemon's URL (default {DEFAULT_URL})")
    client.add_argument(
        "--mqtt-url",
        help="the broker (default: TELEMON_MQTT_URL, else the one of the `telemon serve` running on embedded services)",
    )
    client.add_argument(
        "--state", type=Path, help="state file keeping the device tokens (default: in TELEMON_STATE_DIR)"
    )
    client.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    p = sub.add_parser(
        "simulate",
        parents=[common, client],
        help="feed a running telemon with a simulated GDM cohort, as real devices do",
        description=(
            "Create a synthetic cohort of GDM patients (team, patients and devices in the database), backfill "
            "--days of their history, then keep sending live: meters over MQTT, phone apps over HTTP, CGM uploaders "
            "through the Nightscout API. A second run continues the same cohort (its tokens are in the state file). "
            "Prints what was sent and telemon's receipts; the plan (planned hypoglycaemias, patients who stopped "
            "measuring, re-syncs, deliveries) is written beside the state file."
        ),
    )
    p.add_argument("--seed", type=int, default=1, help="random seed: the same seed makes the same cohort (default 1)")
    p.add_argument("--patients", type=int, default=40, help="patients in the cohort (default 40)")
    p.add_argument("--cgm", type=int, default=4, help="how many of them wear a CGM (default 4)")
    p.add_argument("--days", type=float, default=21, help="days of history to backfill (default 21)")
    p.add_argument("--team", default="Simulation", help="care team of the patients, created if missing")
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="live pace in simulated seconds per second (60: a minute per second); never ahead of the clock: "
        "with a --duration the backfill stops (speed - 1) x duration before now (default 1, real time)",
    )
    p.add_argument(
        "--live",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the backfill, keep sending until Ctrl-C (default) or not",
    )
    p.add_argument("--duration", type=float, help="seconds of live traffic, then stop (implies --live)")
    p.add_argument("--concurrency", type=int, default=8, help="devices sending at once (default 8)")
    p.set_defaults(client_options=_simulate_options, client=_simulate)

    p = sub.add_parser(
        "replay",
        parents=[common, client],
        help="replay a CGM trace file (id,time,gl) as CGM patients",
        description=(
            "Replay a CSV of id,time,gl (plain, .csv.gz, or a .zip of one CSV; also a Dexcom Clarity export) as CGM "
            "patients: one patient per subject (external id replay-<file stem>-<subject>), created or reused. Ends "
            "with a summary that matches the file: rows = stored + duplicates + rejected + refused before sending."
        ),
    )
    p.add_argument("file", metavar="FILE", type=Path)
    p.add_argument("--timezone", default="UTC", help="IANA time zone of the file's times (default UTC)")
    p.add_argument("--shift-to-now", action="store_true", help="shift every time so that the last reading is now")
    p.add_argument(
        "--transport",
        type=_choice(("mqtt", "http")),
        choices=("mqtt", "http"),
        default="http",
        help="how to send (default http)",
    )
    p.add_argument("--chunk", type=int, default=500, help="readings per message (default 500)")
    p.add_argument("--team", default="Replay", help="care team of the patients, created if missing")
    p.set_defaults(client_options=_replay_options, client=_replay)


def _mqtt_url(args: argparse.Namespace, settings: Settings) -> str | None:
    from telemon.settings import parse_mqtt_url

    url = args.mqtt_url or settings.mqtt_url
    if url is None:
        try:
            found = json.loads(runtime.endpoints_file(settings.state_dir).read_text())
            url = found.get("mqtt_url") if isinstance(found, dict) else None
        except (OSError, ValueError):
            url = None
    if url is not None:
        parse_mqtt_url(url, "--mqtt-url")
    return url


def _simulate_options(args: argparse.Namespace, settings: Settings) -> Any:
    from tools.simulator.plan import STATE_NAME, Options

    options = Options(
        seed=args.seed,
        patients=args.patients,
        cgm=args.cgm,
        days=args.days,
        team=args.team,
        url=args.url,
        mqtt_url=_mqtt_url(args, settings),
        state_file=args.state or settings.state_dir / STATE_NAME,
        speed=args.speed,
        live=args.live or args.duration is not None,
        duration=args.duration,
        concurrency=args.concurrency,
        progress=not args.no_progress,
    )
    options.check()
    return options


async def _simulate(options: Any, pool: asyncpg.Pool) -> tuple[str, dict[str, Any]]:
    import signal

    from tools.simulator.plan import format_report
    from tools.simulator.runner import simulate

    stop = asyncio.Event()
    running = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        running.add_signal_handler(sig, stop.set)  # Ctrl-C ends the live run, then the summary is printed
    try:
        report = await simulate(options, pool, stop=stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            running.remove_signal_handler(sig)
    return format_report(report), report.as_dict()


def _replay_options(args: argparse.Namespace, settings: Settings) -> Any:
    from tools.simulator.replay import STATE_NAME, ReplayOptions

    options = ReplayOptions(
        file=args.file,
        team=args.team,
        time_zone=args.timezone,
        shift_to_now=args.shift_to_now,
        transport=args.transport,
        chunk=args.chunk,
        url=args.url,
        mqtt_url=_mqtt_url(args, settings) if args.transport == "mqtt" else None,
        state_file=args.state or settings.state_dir / STATE_NAME,
        progress=not args.no_progress,
    )
    options.check()
    return options


async def _replay(options: Any, pool: asyncpg.Pool) -> tuple[str, dict[str, Any]]:
    from tools.simulator.replay import format_replay, replay

    report = await replay(options, pool)
    return format_replay(report), report.as_dict()


async def _client(args: argparse.Namespace, settings: Settings) -> tuple[str, dict[str, Any]]:
    from telemon.db import create_pool

    options = args.client_options(args, settings)  # a wrong option stops here, before any database is started
    async with runtime.database(settings) as url:
        conn = await connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        pool = await create_pool(url, max_size=4)
        try:
            result: tuple[str, dict[str, Any]] = await args.client(options, pool)
            return result
        finally:
            await pool.close()


def _api_keys_text(result: dict[str, Any]) -> str:
    """One line a key, for a terminal."""
    lines = [f"API keys: {len(result['api_keys'])}"]
    for k in result["api_keys"]:
        teams_text = ", ".join(t["name"] for t in k["teams"]) or "(no team: refused, make a team key)"
        state = "active" if k["active"] else f"revoked {k['revoked_at'] or ''}".rstrip()
        lines.append(
            f"{k['id']}  {k['label']!r}  teams: {teams_text}  scopes: {','.join(k['scopes'])}  {state}"
            f"  created {k['created_at']}  last used {k['last_used_at'] or 'never'}"
        )
    return "\n".join(lines)


def read_secret(prompt: str, where: str, *, confirm: bool = False) -> str:
    """A password typed at a prompt (not echoed) when standard input is a terminal, else the first line of standard
    input (``printf '%s\\n' "$PW" | telemon ...``): never an argument, which every user of the machine can read in
    the process list while the command runs."""
    stdin = sys.stdin
    try:
        if stdin is not None and stdin.isatty():
            value = getpass.getpass(prompt)
            if value and confirm and getpass.getpass("Once more: ") != value:
                raise SettingsError(f"{where}: the two entries differ")
        else:
            value = stdin.readline().rstrip("\r\n") if stdin is not None else ""
    except (EOFError, KeyboardInterrupt):
        raise SettingsError(f"{where}: no password given") from None
    if not value:
        raise SettingsError(f"{where}: no password given (type it at the prompt, or pipe it on standard input)")
    return value


def _read_secrets(args: argparse.Namespace) -> None:
    """Fill the command's passwords before anything is done: given on the command line (with a warning), or read by
    :func:`read_secret` when the command needs one (always, or when the option named ``asked_by`` is set)."""
    for attribute, where, prompt, confirm, asked_by in getattr(args, "secrets", []):
        if getattr(args, attribute) is not None:
            print(
                f"telemon: warning: {where} on the command line can be read by every user of this machine in the "
                "process list (and stays in the shell history); leave it out to type it at a prompt or pipe it on "
                "standard input",
                file=sys.stderr,
            )
        elif asked_by is None or getattr(args, asked_by):
            setattr(args, attribute, read_secret(prompt, where, confirm=confirm))


def _print(args: argparse.Namespace, result: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(result, default=str))
    elif getattr(args, "text", None) is not None:
        print(args.text(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


async def _admin(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    async with runtime.database(settings) as url:
        args.database_url = url
        conn = await connect(url)
        try:
            args.applied = await migrate(conn)
            result: dict[str, Any] = await args.handler(args, conn)
            return result
        finally:
            await conn.close()


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    import dataclasses

    from telemon.app.server import serve

    overrides: dict[str, Any] = {}
    if args.roles:
        overrides["roles"] = parse_roles(args.roles, "--roles")
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        if not 1 <= args.port <= 65535:
            raise SettingsError(f"--port: {args.port} is outside 1..65535")
        overrides["port"] = args.port
    serve(dataclasses.replace(settings, **overrides))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "serve":
            _serve(args, settings)
            return 0
        if args.command in ("simulate", "replay"):
            text, summary = loop.run(_client(args, settings))
            print(json.dumps(summary, default=str) if args.json else text)
            return 0
        if getattr(args, "check", None) is not None:
            args.check(args)
        _read_secrets(args)
        result = loop.run(_admin(args, settings))
    except SettingsError as exc:
        print(f"telemon: {exc}", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"telemon: {describe(exc)}", file=sys.stderr)
        return 1
    _print(args, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
