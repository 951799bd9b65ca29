"""The teams' titration protocols: checks naming the field, the arithmetic of a suggestion, stored and audited."""

from __future__ import annotations

import dataclasses
import uuid

import asyncpg
import pytest

from alerts import titration
from alerts.titration import DEFAULT, Protocol
from telemon import teams
from telemon.patients import FieldError


def test_the_default_is_the_cited_protocol() -> None:
    assert titration.check(DEFAULT) == DEFAULT
    assert (DEFAULT.step_units, DEFAULT.window_days, DEFAULT.days_required) == (2.0, 3, 3)
    assert titration.increase(DEFAULT, 10) == 12
    assert titration.reduction(DEFAULT, 10) == 9  # 10 %
    assert titration.reduction(DEFAULT, 12.5) == 11  # 1.25 rounded half up to 1.5
    assert titration.reduction(DEFAULT, 3) == 2.5  # never less than a half unit
    assert titration.reduction(DEFAULT, 0.5) == 0


def test_percent_steps_round_to_half_units_and_the_cap_holds() -> None:
    protocol = Protocol(step_units=None, step_percent=20, max_step_units=4)
    assert titration.increase(protocol, 10) == 12
    assert titration.increase(protocol, 13) == 15.5  # 2.6 → 2.5
    assert titration.increase(protocol, 40) == 44  # 8 capped at 4
    both = Protocol(step_units=2, step_percent=10)
    assert titration.increase(both, 30) == 33  # the larger of 2 U and 10 %


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"step_units": 0.3}, "step_units"),
        ({"step_units": 11}, "step_units"),
        ({"step_units": None, "step_percent": None}, "step_units"),
        ({"step_percent": 0.5}, "step_percent"),
        ({"window_days": 0}, "window_days"),
        ({"window_days": 15}, "window_days"),
        ({"days_required": 4}, "days_required"),  # more than the window
        ({"max_step_units": 0}, "max_step_units"),
        ({"reduction_percent": 60}, "reduction_percent"),
        ({"reduction_percent": None, "reduction_units": None}, "reduction_percent"),
        ({"reduction_units": 1.2}, "reduction_units"),
        ({"suggestions_enabled": "yes"}, "suggestions_enabled"),
        ({"step_units": float("nan")}, "step_units"),
    ],
)
def test_checks_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(FieldError) as refused:
        titration.check(dataclasses.replace(DEFAULT, **change))  # type: ignore[arg-type]
    assert refused.value.field == field
    assert refused.value.code == f"titration.{field}"


async def test_a_team_without_a_protocol_follows_the_default_and_a_saved_one_is_audited(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        mine = await teams.create_team(conn, f"team-{uuid.uuid4().hex[:8]}")
        other = await teams.create_team(conn, f"team-{uuid.uuid4().hex[:8]}")
        assert await titration.load(conn, [mine, other]) == {mine: DEFAULT, other: DEFAULT}

        chosen = Protocol(step_units=None, step_percent=10, window_days=5, days_required=3, suggestions_enabled=False)
        stored = await titration.save(conn, mine, chosen, "clinician:test")
        assert stored == chosen
        assert await titration.load(conn, [mine, other]) == {mine: chosen, other: DEFAULT}
        again = dataclasses.replace(chosen, suggestions_enabled=True, reduction_units=1.0)
        await titration.save(conn, mine, again, "clinician:test")
        assert (await titration.load(conn, [mine]))[mine] == again

        with pytest.raises(FieldError):
            await titration.save(conn, mine, dataclasses.replace(DEFAULT, days_required=9), "clinician:test")
        assert (await titration.load(conn, [mine]))[mine] == again

        audited = await conn.fetch(
            "SELECT actor, detail FROM audit_log WHERE action = 'titration.protocol' AND detail->>'team_id' = $1"
            " ORDER BY id",
            str(mine),
        )
    assert [a["actor"] for a in audited] == ["clinician:test", "clinician:test"]
    assert audited[0]["detail"]["protocol"]["suggestions_enabled"] is False
    assert audited[1]["detail"]["protocol"]["reduction_units"] == 1.0
