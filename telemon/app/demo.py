"""``make demo``: the whole service on embedded defaults, with a demo care team, its clinician, and a simulated
cohort feeding it.

What it does: starts the embedded PostgreSQL and MQTT broker, applies the migrations, creates the team
"Maternité démo", its clinician and its administrator whose logins are printed, and a pending invitation of a
midwife, then serves the dashboard on http://127.0.0.1:8000.
In the same process, as a background task once the server answers, the simulator (``tools.simulator``)
creates 40 simulated patients of that team (6 of them wearing a CGM), sends their last 21 days of history as
their devices would (meters over MQTT, phone apps over HTTP, CGM uploaders through the Nightscout API) as fast
as telemon takes it, then keeps sending in real time (speed 1: a CGM reading every 5 minutes, meter readings
around meals) until Ctrl-C. Each simulated patient follows a versioned treatment plan written through
``telemon.treatment`` (diet, metformin, basal or basal-prandial insulin), and her devices send, beside her glucose,
the insulin doses she logs (most of them), ketones now and then, a weekly weight and home blood pressures
(``tools.simulator.measures``: one raised ketone, one pressure rising above 140/90, one 165/112 reading).

Ctrl-C stops the simulated devices first (the state is saved), then the server, the consumer, the broker and
PostgreSQL: no process is left behind. Running it again continues with the same data and the same patients
(their device tokens are in ``TELEMON_STATE_DIR/demo-simulator.json``): the devices send what they measured
while the demo was stopped (up to 21 days), then go on live.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sys
import uuid
from decimal import Decimal

import asyncpg

from clinic import messages
from telemon import account_links, patients, postpartum, teams
from telemon.app.server import Cleanup, serve
from telemon.app.services import Services
from telemon.db import Conn
from telemon.settings import Settings, SettingsError
from tools.simulator.plan import Options, Report, describe_rejections
from tools.simulator.records import DeviceRecord
from tools.simulator.runner import Simulation

TEAM = "Maternité démo"
EMAIL = "demo@telemon.example"
PASSWORD = "telemon-demo"  # noqa: S105 - the demo's published login, also in README
ADMIN_EMAIL = "admin@telemon.example"  # the team's administrator (same published password)
INVITED_EMAIL = "sage-femme@telemon.example"  # a midwife invited and not yet arrived: the team page shows her
SIMULATOR_STATE = "demo-simulator.json"
SEED = 2026
PATIENTS = 40
CGM = 6
DAYS = 21
SPEED = 1.0  # live traffic in real time: the only pace that can go on without getting ahead of the clock

log = logging.getLogger(__name__)


def _url(settings: Settings) -> str:
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)  # noqa: S104
    return f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"


def simulator_options(services: Services) -> Options:
    settings = services.settings
    return Options(
        seed=SEED,
        patients=PATIENTS,
        cgm=CGM,
        days=DAYS,
        team=TEAM,
        url=_url(settings),
        mqtt_url=services.mqtt_url,
        state_file=settings.state_dir / SIMULATOR_STATE,
        speed=SPEED,
        live=True,
        server_wait=120.0,  # the server starts listening right after prepare() returns
    )


# Two of the simulated patients who use the companion app have written to their team; one was answered. The
# conversation shows on their pages, the unanswered one on the triage, and in their app.
CONVERSATIONS = (
    (
        ("patient", "Bonjour, j'ai oublié ma glycémie à jeun ce matin, je la fais demain sans faute."),
        ("clinician", "Merci de nous prévenir. Pensez à la noter dès le réveil, avant le petit-déjeuner."),
    ),
    (("patient", "Ma glycémie après le dîner était haute hier soir (pâtes). Dois-je changer quelque chose ?"),),
)


async def _seed_conversations(pool: asyncpg.Pool, report: Report) -> None:
    apps = sorted((r for r in report.plan.records.values() if r.kind == "app"), key=lambda r: r.external_id)
    try:
        await conversations(pool, apps)
    except Exception:
        log.exception("demo conversations not made; the service goes on without them")


async def conversations(pool: asyncpg.Pool, apps: list[DeviceRecord]) -> None:
    """The demo's conversations, with the first patients of ``apps`` (companion app users); made once: a patient
    who has messages already is left as she is."""
    async with pool.acquire() as conn:
        clinician = await teams.clinician_id(conn, EMAIL)
        for record, conversation in zip(apps, CONVERSATIONS, strict=False):
            if await messages.page(conn, record.patient_uuid, limit=1):
                continue
            async with conn.transaction():
                for author, body in conversation:
                    if author == "patient":
                        await messages.send(
                            conn,
                            record.patient_uuid,
                            body,
                            actor=f"device:{record.device_id}",
                            device_id=record.device_id,
                        )
                    elif clinician is not None:
                        await messages.send(
                            conn, record.patient_uuid, body, actor=f"clinician:{clinician}", clinician_id=clinician
                        )


def _backfilled(report: Report) -> None:
    phase = report.backfill
    if phase is None:
        return
    total = report.total()
    print(
        f"\n  telemon demo: {len(report.plan.cohort)} simulated patients; {phase.readings:,} readings of their "
        f"history sent in {phase.seconds:.1f} s (stored {total.accepted:,}, duplicates {total.duplicates:,}, "
        f"{describe_rejections(total.reasons)}); live traffic goes on in real time\n",
        file=sys.stderr,
        flush=True,
    )


async def _simulate(simulation: Simulation) -> None:
    try:
        await simulation.run()
    except SettingsError as exc:
        log.error("demo simulator stopped", extra={"reason": str(exc)})
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("demo simulator failed; the service goes on without it")


async def _pending_invitation(conn: Conn, team_id: uuid.UUID, url: str) -> str:
    """The demo team's pending invitation (made once; its link is shown only when it is made, as the dashboard
    shows a link when no mail server is configured)."""
    if any(i.email == INVITED_EMAIL for i in await account_links.open_invitations(conn, [team_id])):
        return f"invitation pending for {INVITED_EMAIL}"
    if await teams.clinician_exists(conn, INVITED_EMAIL):
        return f"{INVITED_EMAIL} accepted her invitation"
    link = await account_links.invite(
        conn, team_id=team_id, email=INVITED_EMAIL, role="midwife", language="fr", actor="cli"
    )
    return f"invitation for {INVITED_EMAIL}: {url}/welcome/{link.token}"


ARCHIVED_ID = "DEMO-ARCHIVED"


async def archived_patient(conn: Conn, team_id: uuid.UUID) -> None:
    """A patient whose monitoring has ended: delivered ten weeks ago, postpartum test done, archived (made once).
    She is out of the triage and the scheduled passes, and stays in the patients list with her badge."""
    today = dt.date.today()
    async with conn.transaction():
        record, made = await patients.create_patient_once(
            conn,
            team_id=team_id,
            external_id=ARCHIVED_ID,
            display_name="Léa Archivée",
            time_zone="Europe/Paris",
            due_date=today - dt.timedelta(weeks=10),
            diagnosis_date=today - dt.timedelta(weeks=24),
        )
        if made:
            await patients.record_delivery(conn, record.id, today - dt.timedelta(weeks=10), actor="cli")
            # her 75 g OGTT at the postnatal visit, six weeks after the birth: impaired glucose tolerance
            ogtt = postpartum.Entry(
                "ogtt_75g", "mmol/L", Decimal("5.2"), Decimal("8.9"), tested_on=today - dt.timedelta(weeks=4)
            )
            await postpartum.record(conn, record.id, ogtt, actor="cli")
            await patients.archive_patient(conn, record.id, actor="cli", detail={"reason": "monitoring ended"})


async def prepare(services: Services) -> Cleanup | None:
    async with services.pool.acquire() as conn:
        team_id = await teams.team_id_by_name(conn, TEAM) or await teams.create_team(conn, TEAM)
        if not await teams.clinician_exists(conn, EMAIL):
            await teams.create_clinician(
                conn, email=EMAIL, password=PASSWORD, team_id=team_id, role="diabetologist", display_name="Dr Démo"
            )
        if not await teams.clinician_exists(conn, ADMIN_EMAIL):
            await teams.create_clinician(
                conn, email=ADMIN_EMAIL, password=PASSWORD, team_id=team_id, role="admin", display_name="Admin Démo"
            )
        invitation = await _pending_invitation(conn, team_id, _url(services.settings))
        await archived_patient(conn, team_id)
    settings = services.settings
    print(
        f"\n  telemon demo: http://{settings.host}:{settings.port}   login {EMAIL} / {PASSWORD}"
        f"\n  team administrator: {ADMIN_EMAIL} / {PASSWORD}; {invitation}"
        f"\n  data in {settings.state_dir.resolve()}; Ctrl-C stops everything"
        f"\n  {PATIENTS} simulated patients: {DAYS} days of history are being sent, then live traffic\n",
        file=sys.stderr,
        flush=True,
    )
    if services.mqtt_url is None:
        return None  # a process without the broker (TELEMON_ROLES without mqtt): no simulated meters
    stop = asyncio.Event()
    background: set[asyncio.Task[None]] = set()

    def backfilled(report: Report) -> None:
        _backfilled(report)
        task = asyncio.get_running_loop().create_task(_seed_conversations(services.pool, report))
        background.add(task)
        task.add_done_callback(background.discard)

    simulation = Simulation(simulator_options(services), services.pool, stop=stop, on_backfill=backfilled)
    task = asyncio.create_task(_simulate(simulation), name="demo-simulator")

    async def cleanup() -> None:
        stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=15)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return cleanup


def main() -> int:
    try:
        serve(Settings.from_env(), prepare)
    except SettingsError as exc:
        print(f"telemon: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
