"""``make demo``: the whole service on embedded defaults, with a demo care team and clinician.

Idempotent: running it again continues with the same data (kept in ``TELEMON_STATE_DIR``, ``./.telemon``).
The simulated cohort that feeds it comes with ``telemon simulate`` (see README)."""

from __future__ import annotations

import sys

from telemon import teams
from telemon.server import serve
from telemon.services import Services
from telemon.settings import Settings, SettingsError

TEAM = "Maternité démo"
EMAIL = "demo@telemon.example"
PASSWORD = "telemon-demo"  # noqa: S105 - the demo's published login, also in README


async def prepare(services: Services) -> None:
    async with services.pool.acquire() as conn:
        exists = await conn.fetchval("SELECT id FROM care_teams WHERE name = $1", TEAM)
        team_id = exists or await teams.create_team(conn, TEAM)
        if not await conn.fetchval("SELECT 1 FROM clinicians WHERE lower(email) = lower($1)", EMAIL):
            await teams.create_clinician(
                conn, email=EMAIL, password=PASSWORD, team_id=team_id, role="diabetologist", display_name="Dr Démo"
            )
    settings = services.settings
    print(
        f"\n  telemon demo: http://{settings.host}:{settings.port}   login {EMAIL} / {PASSWORD}"
        f"\n  data in {settings.state_dir.resolve()}; Ctrl-C stops everything\n",
        file=sys.stderr,
        flush=True,
    )


def main() -> int:
    try:
        serve(Settings.from_env(), prepare)
    except SettingsError as exc:
        print(f"telemon: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
