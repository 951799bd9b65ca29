"""A dose review suggestion applied in one step: the new plan version through telemon.treatment and the alert
resolved, audited, in one transaction (alerts.dose_review, shared by the dashboard and the hospital API); refused,
with nothing written, when the plan changed since the suggestion was computed."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from alerts import dose_review
from telemon import treatment
from tests.support import dose_review as suggestions
from tests.support.factories import api_key, patient_with_device


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def _trail(db: asyncpg.Pool, patient_id: uuid.UUID, action: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT actor, detail FROM audit_log WHERE patient_id = $1 AND action = $2 ORDER BY id", patient_id, action
    )
    return [{"actor": r["actor"], **_json(r["detail"])} for r in rows]


async def test_apply_writes_the_suggested_basal_as_a_new_version_and_resolves_the_alert(db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, treatment="insulin")
    await suggestions.nph_plan(db, setup.patient_id, units=10)
    alert_id = await suggestions.suggestion(db, setup.patient_id, current=10, suggested=12, plan_version=1)
    async with db.acquire() as conn:
        done = await dose_review.apply(conn, alert_id, [setup.team_id], "clinician:dr-a")
    assert done.plan.version == 2 and done.plan.basal == treatment.Basal("NPH", 12.0, "22:00")
    # everything else of the plan stays as it was; the version's note is its own (empty)
    assert done.plan.prandial == {"breakfast": 4.0, "dinner": 6.0} and done.plan.instruction == "Inject at 22:00."
    assert done.plan.note == "" and done.plan.created_by == "clinician:dr-a"
    assert done.alert["status"] == "resolved" and done.alert["resolved_by"] == "clinician:dr-a"
    assert done.alert["resolved_reason"] is None  # a person's resolution
    current = await treatment.current_plan(db, setup.patient_id)
    assert current is not None and current.version == 2
    origin = {"alert_id": alert_id, "slot": "basal", "current_units": 10.0, "suggested_units": 12.0}
    plans = await _trail(db, setup.patient_id, "treatment.plan")
    assert plans[-1]["dose_review"] == origin and plans[-1]["plan"]["version"] == 2
    resolves = await _trail(db, setup.patient_id, "alert.resolve")
    assert resolves == [
        {
            "actor": "clinician:dr-a",
            "alert_id": alert_id,
            "rule": "dose_review",
            "applied": {**origin, "plan_version": 2},
        }
    ]


async def test_a_prandial_reduction_changes_that_meal_only(db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, treatment="insulin")
    await suggestions.nph_plan(db, setup.patient_id)
    alert_id = await suggestions.suggestion(
        db, setup.patient_id, slot="dinner", product="NovoRapid", current=6, suggested=5, plan_version=1
    )
    async with db.acquire() as conn:
        done = await dose_review.apply(conn, alert_id, [setup.team_id], "clinician:dr-a")
    assert done.suggestion.change == "reduction"
    assert done.plan.prandial == {"breakfast": 4.0, "dinner": 5.0} and done.plan.basal == treatment.Basal(
        "NPH", 10.0, "22:00"
    )


async def _unchanged(db: asyncpg.Pool, patient_id: uuid.UUID, alert_id: int, versions: int) -> None:
    assert len(await treatment.history(db, patient_id)) == versions
    assert await db.fetchval("SELECT status FROM alerts WHERE id = $1", alert_id) == "open"


async def test_a_suggestion_made_on_an_older_version_is_refused_and_nothing_is_written(db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, treatment="insulin")
    await suggestions.nph_plan(db, setup.patient_id, units=10)
    alert_id = await suggestions.suggestion(db, setup.patient_id, current=10, suggested=12, plan_version=1)
    await suggestions.nph_plan(db, setup.patient_id, units=14)  # the diabetologist changed the plan meanwhile
    async with db.acquire() as conn:
        with pytest.raises(dose_review.ApplyRefused) as refused:
            await dose_review.apply(conn, alert_id, [setup.team_id], "clinician:dr-a")
    assert refused.value.reason == "plan_changed"
    assert refused.value.facts == {"in_force": 2, "suggested_on": 1}
    await _unchanged(db, setup.patient_id, alert_id, versions=2)
    assert await _trail(db, setup.patient_id, "alert.resolve") == []


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"current": 8, "suggested": 10}, "plan_changed"),  # the dose it names is not the plan's
        ({"slot": "lunch", "current": 4, "suggested": 5}, "plan_changed"),  # the plan has no lunch dose
        ({"rule": "fasting_pattern"}, "not_dose_review"),
        ({"suggested": 10.3}, "invalid"),  # not in half units: the plan's own check refuses it
    ],
)
async def test_what_cannot_be_applied_is_refused_by_name(
    db: asyncpg.Pool, changes: dict[str, Any], reason: str
) -> None:
    setup = await patient_with_device(db, treatment="insulin")
    await suggestions.nph_plan(db, setup.patient_id)
    alert_id = await suggestions.suggestion(db, setup.patient_id, **changes)
    async with db.acquire() as conn:
        with pytest.raises(dose_review.ApplyRefused) as refused:
            await dose_review.apply(conn, alert_id, [setup.team_id], "clinician:dr-a")
    assert refused.value.reason == reason
    await _unchanged(db, setup.patient_id, alert_id, versions=1)


async def test_another_teams_alert_is_missing_and_a_second_apply_finds_it_resolved(db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, treatment="insulin")
    other = await patient_with_device(db)
    await suggestions.nph_plan(db, setup.patient_id)
    alert_id = await suggestions.suggestion(db, setup.patient_id)
    async with db.acquire() as conn:
        with pytest.raises(dose_review.ApplyRefused) as refused:
            await dose_review.apply(conn, alert_id, [other.team_id], "clinician:dr-b")
        assert refused.value.reason == "missing"
        await dose_review.apply(conn, alert_id, [setup.team_id], "clinician:dr-a")
        with pytest.raises(dose_review.ApplyRefused) as again:
            await dose_review.apply(conn, alert_id, [setup.team_id], "clinician:dr-a")
    assert again.value.reason == "not_open"
    assert len(await treatment.history(db, setup.patient_id)) == 2


async def test_two_suggestions_on_one_version_applied_at_once_write_one_version(db: asyncpg.Pool) -> None:
    """The basal and the dinner suggested on version 1, applied by two clinicians at the same moment: the first
    writes version 2, the second finds the plan changed (judged under the patient's lock)."""
    setup = await patient_with_device(db, treatment="insulin")
    await suggestions.nph_plan(db, setup.patient_id)
    basal = await suggestions.suggestion(db, setup.patient_id)
    dinner = await suggestions.suggestion(db, setup.patient_id, slot="dinner", current=6, suggested=7)

    async def one(alert_id: int) -> str:
        async with db.acquire() as conn:
            try:
                await dose_review.apply(conn, alert_id, [setup.team_id], "clinician:dr-a")
            except dose_review.ApplyRefused as refused:
                return refused.reason
        return "applied"

    outcomes = await asyncio.gather(one(basal), one(dinner))
    assert sorted(outcomes) == ["applied", "plan_changed"]
    assert [p.version for p in await treatment.history(db, setup.patient_id)] == [2, 1]


async def test_the_api_applies_and_answers_the_alert_and_the_plan(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, treatment="insulin")
    await suggestions.nph_plan(db, setup.patient_id)
    alert_id = await suggestions.suggestion(db, setup.patient_id)
    key = await api_key(db, "alerts:read", "alerts:write", teams=[setup.team_id])
    headers = {"X-API-Key": key, "Accept-Language": "fr"}
    answer = await client.post(f"/api/v1/alerts/{alert_id}/apply", headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["alert"]["status"] == "resolved" and body["alert"]["code"] == "dose_review.increase"
    assert body["alert"]["language"] == "fr" and body["alert"]["text"]
    assert body["plan"]["version"] == 2 and body["plan"]["basal"] == {"product": "NPH", "units": 12.0, "time": "22:00"}
    assert body["plan"]["created_by"].startswith("api_key:")
    plans = await _trail(db, setup.patient_id, "treatment.plan")
    assert plans[-1]["api_key"] == "test" and plans[-1]["dose_review"]["alert_id"] == alert_id
    again = await client.post(f"/api/v1/alerts/{alert_id}/apply", headers=headers)
    assert again.status_code == 409 and "already resolved" in again.json()["detail"]


async def test_the_api_answers_409_when_the_plan_changed_or_the_alert_is_no_dose_review(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, treatment="insulin")
    await suggestions.nph_plan(db, setup.patient_id)
    stale = await suggestions.suggestion(db, setup.patient_id)
    other_rule = await suggestions.suggestion(db, setup.patient_id, rule="fasting_pattern")
    await suggestions.nph_plan(db, setup.patient_id, units=11)
    key = await api_key(db, "alerts:read", "alerts:write", teams=[setup.team_id])
    changed = await client.post(f"/api/v1/alerts/{stale}/apply", headers={"X-API-Key": key})
    assert changed.status_code == 409
    assert changed.json()["detail"] == (
        "the treatment plan changed since the suggestion (computed on version 1, version 2 in force now); nothing"
        " was applied: review the plan in force"
    )
    wrong = await client.post(f"/api/v1/alerts/{other_rule}/apply", headers={"X-API-Key": key})
    assert wrong.status_code == 409 and "not a dose review" in wrong.json()["detail"]
    assert len(await treatment.history(db, setup.patient_id)) == 2


async def test_the_api_scopes_apply_to_the_keys_teams_and_its_write_scope(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, treatment="insulin")
    other = await patient_with_device(db)
    await suggestions.nph_plan(db, setup.patient_id)
    alert_id = await suggestions.suggestion(db, setup.patient_id)
    reader = await api_key(db, "alerts:read", teams=[setup.team_id])
    stranger = await api_key(db, "alerts:read", "alerts:write", teams=[other.team_id])
    assert (await client.post(f"/api/v1/alerts/{alert_id}/apply", headers={"X-API-Key": reader})).status_code == 403
    missing = await client.post(f"/api/v1/alerts/{alert_id}/apply", headers={"X-API-Key": stranger})
    assert missing.status_code == 404 and missing.json()["detail"] == f"no alert {alert_id}"
    too_large = await client.post(f"/api/v1/alerts/{2**63}/apply", headers={"X-API-Key": stranger})
    assert too_large.status_code == 422
    assert len(await treatment.history(db, setup.patient_id)) == 1


async def test_the_engines_own_suggestion_is_applied_through_the_api(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """The rule's params as the engine stores them (not a crafted row): NPH 10 U, fasting above target on the last
    three days → 12 U (the default protocol), applied through the API."""
    setup = await patient_with_device(db, treatment="insulin")
    alert_id = await suggestions.engine_suggestion(db, setup.patient_id, setup.device_id, units=10)
    params = _json(await db.fetchval("SELECT params FROM alerts WHERE id = $1", alert_id))
    assert (params["slot"], params["current_units"], params["suggested_units"]) == ("basal", 10.0, 12.0)
    assert params["plan_version"] == 1 and params["protocol"]["step_units"] == 2.0
    key = await api_key(db, "alerts:read", "alerts:write", teams=[setup.team_id])
    answer = await client.post(f"/api/v1/alerts/{alert_id}/apply", headers={"X-API-Key": key})
    assert answer.status_code == 200, answer.text
    assert answer.json()["plan"]["basal"]["units"] == 12.0 and answer.json()["plan"]["version"] == 2
