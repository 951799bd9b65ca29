"""Signed webhooks, end to end against a real receiver: events written in the transaction of their change (an
alert opened and resolved, a patient enrolled and reviewed, a message from the patient), signed the Standard
Webhooks way, retried on failure exactly as often as the log says, redelivered after the deliverer dies
mid-send, and an endpoint that never succeeds disabled with its reason."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from alerts import actions
from telemon import patients, teams, webhooks
from telemon.webhook_delivery import Deliverer, next_attempt
from tests.support.factories import patient_with_device
from tests.support.webhook_receiver import Receiver, receiver

FAST = (0, 0.3, 0.6, 0.9)  # the schedule, shortened: at once, then three retries within a second
ALERT = """
INSERT INTO alerts (patient_id, rule, episode_key, severity, code, params, message, evidence)
VALUES ($1, 'hypo_l2', $2, 'urgent', 'hypo_l2', $3, '{}'::jsonb, '{}'::jsonb)
RETURNING id
"""


@pytest.fixture
async def hook(db: asyncpg.Pool) -> AsyncIterator[tuple[uuid.UUID, Receiver, webhooks.Endpoint]]:
    """A team with an endpoint for every event, at a receiver started for the test."""
    async with receiver() as found:
        setup = await patient_with_device(db)
        async with db.acquire() as conn:
            endpoint, secret = await webhooks.create(
                conn, team_id=setup.team_id, url=found.url, events=webhooks.EVENTS, actor="test"
            )
        found.secret = secret
        yield setup.patient_id, found, endpoint


async def _deliver_until(deliverer: Deliverer, check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the deliveries did not happen in time")
        await deliverer.deliver_due()
        await asyncio.sleep(0.05)


def test_the_signature_is_the_standard_webhooks_test_vector() -> None:
    # The specification's published vector (standard-webhooks, spec/standard-webhooks.md): a receiver's library
    # must accept what telemon signs.
    signed = webhooks.signature(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert signed == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_retry_schedule_runs_a_day_then_stops() -> None:
    start = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    at = [start]
    while (following := next_attempt(start, at[-1])) is not None:
        at.append(following)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(at)]
    assert gaps[:5] == [5, 30, 120, 600, 3600]
    assert set(gaps[5:]) == {3600}
    assert (at[-1] - start) <= dt.timedelta(hours=24) < (at[-1] - start) + dt.timedelta(hours=1)


async def test_an_alert_reaches_the_receiver_signed_after_two_failures_and_as_often_as_the_log_says(
    db: asyncpg.Pool, hook: tuple[uuid.UUID, Receiver, webhooks.Endpoint]
) -> None:
    patient_id, found, endpoint = hook
    found.answers = [500, 500]  # then 200
    params = {"value_mgdl": 48, "measured_at": "2026-12-04T06:10:00Z", "threshold_mgdl": 54}
    async with db.acquire() as conn:
        alert_id = await conn.fetchval(ALERT, patient_id, f"e-{uuid.uuid4().hex[:6]}", params)
    deliverer = Deliverer(db, offsets_s=FAST)
    try:
        await _deliver_until(deliverer, lambda: len(found.received) >= 3 and not found.answers)
        await asyncio.sleep(0.2)
        await deliverer.deliver_due()  # nothing left to send: a delivered event is not sent again
    finally:
        await deliverer.stop()

    opened = [r for r in found.received if r.event["type"] == "alert.opened"]
    assert len(opened) == 3 and all(r.signature_ok for r in opened)
    assert len({r.headers["webhook-id"] for r in opened}) == 1  # the same id on every attempt, to deduplicate
    data = opened[0].event["data"]
    assert data["alert_id"] == alert_id and data["patient_id"] == str(patient_id)
    assert (data["rule"], data["severity"], data["code"], data["params"]) == ("hypo_l2", "urgent", "hypo_l2", params)

    async with db.acquire() as conn:
        log = await webhooks.delivery_log(conn, endpoint.id)
    (delivery,) = [d for d in log if d["type"] == "alert.opened"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 200]
    assert all(a["latency_ms"] >= 0 for a in delivery["attempt_log"])


async def test_every_event_of_the_care_loop_is_sent_once_its_change_is_committed(
    db: asyncpg.Pool, hook: tuple[uuid.UUID, Receiver, webhooks.Endpoint]
) -> None:
    patient_id, found, _endpoint = hook
    async with db.acquire() as conn:
        team_id = await conn.fetchval("SELECT team_id FROM patients WHERE id = $1", patient_id)
        clinician = await teams.create_clinician(
            conn,
            email=f"t-{uuid.uuid4().hex[:6]}@example.org",
            password="a long enough password",
            team_id=team_id,
            role="diabetologist",
        )
        alert_id = await conn.fetchval(ALERT, patient_id, "e-1", {"value_mgdl": 50})
        async with conn.transaction():
            await actions.act(conn, alert_id, "resolve", "clinician:test")
        await conn.execute(
            "INSERT INTO patient_reviews (patient_id, clinician_id) VALUES ($1, $2)", patient_id, clinician
        )
        device = await conn.fetchval("SELECT id FROM devices WHERE patient_id = $1", patient_id)
        await conn.execute(
            "INSERT INTO messages (patient_id, author, device_id, body) VALUES ($1, 'patient', $2, 'bonjour')",
            patient_id,
            device,
        )
        await conn.execute(
            "INSERT INTO messages (patient_id, author, clinician_id, body) VALUES ($1, 'clinician', $2, 'réponse')",
            patient_id,
            clinician,
        )
        new_patient = await patients.create_patient(
            conn,
            team_id=team_id,
            external_id=f"ext-{uuid.uuid4().hex[:8]}",
            display_name="Second",
            time_zone="Europe/Paris",
            due_date=dt.date.today() + dt.timedelta(days=90),
            profile="FR",
            treatment="diet",
        )
        # a change rolled back sends nothing
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await conn.fetchval(ALERT, patient_id, "e-rolled-back", {"value_mgdl": 40})
                raise RuntimeError("rolled back")
        other_team = await teams.create_team(conn, f"other-{uuid.uuid4().hex[:6]}")  # no endpoint: no event
        await patients.create_patient(
            conn,
            team_id=other_team,
            external_id="x-1",
            display_name="Elsewhere",
            time_zone="Europe/Paris",
            due_date=dt.date.today() + dt.timedelta(days=90),
            profile="FR",
            treatment="diet",
        )
    deliverer = Deliverer(db, offsets_s=FAST)
    try:
        await _deliver_until(deliverer, lambda: len(found.received) >= 5)
        await asyncio.sleep(0.3)
        await deliverer.deliver_due()
    finally:
        await deliverer.stop()
    kinds = sorted(r.event["type"] for r in found.received)
    assert kinds == ["alert.opened", "alert.resolved", "message.received", "patient.enrolled", "patient.reviewed"]
    by_kind = {r.event["type"]: r.event["data"] for r in found.received}
    assert by_kind["alert.resolved"]["resolved_by"] == "clinician:test"
    assert by_kind["patient.enrolled"]["patient_id"] == str(new_patient)
    assert "body" not in by_kind["message.received"]  # ids only: the words are for the care team
    assert all(r.signature_ok for r in found.received)


async def test_a_deliverer_killed_mid_send_is_followed_by_a_redelivery(
    db: asyncpg.Pool, hook: tuple[uuid.UUID, Receiver, webhooks.Endpoint]
) -> None:
    patient_id, found, endpoint = hook
    found.answers = [None]  # the first request is never answered: the deliverer dies waiting
    async with db.acquire() as conn:
        await conn.fetchval(ALERT, patient_id, "e-kill", {"value_mgdl": 45})
    first = Deliverer(db, offsets_s=FAST, lease_s=1.0)
    first.start()
    await asyncio.wait_for(found.arrived.wait(), 10)
    await first.stop()  # killed mid-send: the claim and its logged attempt are committed, no answer recorded

    second = Deliverer(db, offsets_s=FAST, lease_s=1.0)  # a new process, once the lease has ended
    second.start()
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while len(found.received) < 2:
            assert asyncio.get_running_loop().time() < deadline, "not redelivered"
            await asyncio.sleep(0.1)
    finally:
        await second.stop()
    assert len({r.headers["webhook-id"] for r in found.received}) == 1
    async with db.acquire() as conn:
        (delivery,) = await webhooks.delivery_log(conn, endpoint.id)
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempt_log"]] == [None, 200]
    assert "stopped during the attempt" in delivery["attempt_log"][0]["error"]


async def test_an_endpoint_that_never_succeeds_is_disabled_with_its_reason_and_can_be_resent(
    db: asyncpg.Pool, hook: tuple[uuid.UUID, Receiver, webhooks.Endpoint]
) -> None:
    patient_id, found, endpoint = hook
    found.answers = [503, 503, 503, 503]
    async with db.acquire() as conn:
        await conn.fetchval(ALERT, patient_id, "e-fail", {"value_mgdl": 45})
    deliverer = Deliverer(db, offsets_s=FAST)
    try:

        async def disabled() -> bool:
            async with db.acquire() as conn:
                found_endpoint = await webhooks.endpoint(conn, endpoint.id, [endpoint.team_id])
            return found_endpoint is not None and not found_endpoint.active

        deadline = asyncio.get_running_loop().time() + 10
        while not await disabled():
            assert asyncio.get_running_loop().time() < deadline, "not disabled"
            await deliverer.deliver_due()
            await asyncio.sleep(0.1)
        async with db.acquire() as conn:
            current = await webhooks.endpoint(conn, endpoint.id, [endpoint.team_id])
            assert current is not None and current.disabled_reason is not None
            assert "answered 503" in current.disabled_reason
            (delivery,) = await webhooks.delivery_log(conn, endpoint.id)
            assert delivery["status"] == "failed" and delivery["attempts"] == len(FAST)
            # the receiver is repaired: an administrator turns the endpoint on and sends the delivery again
            assert await webhooks.set_active(conn, current, True, actor="clinician:admin")
            assert await webhooks.resend(conn, delivery["id"], [endpoint.team_id], actor="clinician:admin")
            assert not await webhooks.resend(conn, delivery["id"], [uuid.uuid4()], actor="clinician:other")
        await deliverer.deliver_due()
        async with db.acquire() as conn:
            (delivery,) = await webhooks.delivery_log(conn, endpoint.id)
            actions_logged = await conn.fetch(
                "SELECT action FROM audit_log WHERE detail->>'webhook_id' = $1 OR detail->>'delivery_id' = $2",
                str(endpoint.id),
                str(delivery["id"]),
            )
    finally:
        await deliverer.stop()
    assert delivery["status"] == "delivered" and delivery["attempts"] == len(FAST) + 1
    assert {r["action"] for r in actions_logged} >= {"webhook.create", "webhook.enable", "webhook.resend"}


@pytest.mark.parametrize(
    ("url", "events", "field"),
    [
        ("ftp://hospital.example/hook", ["alert.opened"], "url"),
        ("hospital.example/hook", ["alert.opened"], "url"),
        ("https://hospital.example/hook", ["alert.deleted"], "events"),
        ("https://hospital.example/hook", [], "events"),
    ],
)
async def test_an_endpoint_is_refused_with_the_field_named(
    db: asyncpg.Pool, url: str, events: list[str], field: str
) -> None:
    async with db.acquire() as conn:
        team_id = await teams.create_team(conn, f"t-{uuid.uuid4().hex[:6]}")
        with pytest.raises(webhooks.WebhookError) as refused:
            await webhooks.create(conn, team_id=team_id, url=url, events=events, actor="test")
    assert refused.value.field == field


async def test_private_and_loopback_addresses_are_allowed(db: asyncpg.Pool) -> None:
    """Hospital integration engines live on private networks."""
    async with db.acquire() as conn:
        team_id = await teams.create_team(conn, f"t-{uuid.uuid4().hex[:6]}")
        for url in ("http://10.1.2.3:8080/hook", "http://127.0.0.1/hook", "https://mirth.chu.local/telemon"):
            endpoint, secret = await webhooks.create(conn, team_id=team_id, url=url, events=["alert.opened"], actor="t")
            assert endpoint.url == url and secret.startswith("whsec_")
