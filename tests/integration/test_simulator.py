"""The simulator and the replay against the real services: telemon served over a real socket (uvicorn), the MQTT
consumer on the real broker, the test database. What telemon stored and the alerts it raised must match the
simulator's plan."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import datetime as dt
import gzip
import uuid
import zipfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import uvicorn

from telemon.app.factory import create_app
from telemon.app.services import Services
from telemon.embedded import free_port
from telemon.settings import Settings, SettingsError
from tests.support.data import IGLU, IGLU_ZONE
from tests.support.mosquitto import start_mosquitto
from tests.support.mqtt import running_consumer
from tools.simulator.plan import Options, Plan, describe_rejections, format_report
from tools.simulator.replay import ReplayOptions, replay
from tools.simulator.runner import simulate

MATCH_S = 120  # a planned reading and its stored time: the clock correction may add the network delay


@contextlib.contextmanager
def private_broker(tmp_path: Path) -> Iterator[str]:
    """A broker of this test's own: on a shared one, any other consumer running at the same time would answer
    the simulated meters too (with "unknown device" receipts from its own database)."""
    with start_mosquitto("allow_anonymous true\n", tmp_path) as (host, port):
        yield f"mqtt://{host}:{port}"


@contextlib.asynccontextmanager
async def http_server(services: Services) -> AsyncIterator[str]:
    """The app on a real loopback socket, as the simulator's devices reach a deployed telemon."""
    port = free_port()
    config = uvicorn.Config(create_app(services=services), host="127.0.0.1", port=port, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started or task.done():
            break
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _drain(*opened: Services) -> bool:
    """Wait for the background alert evaluation of what was ingested, where the services run one."""
    workers = [getattr(s, "worker", None) for s in opened]
    for worker in workers:
        if worker is not None:
            await worker.drain()
    return all(w is not None for w in workers)


async def _alerts(db: asyncpg.Pool, patient_ids: list[uuid.UUID], rules: tuple[str, ...]) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT patient_id, rule, status, evidence FROM alerts WHERE patient_id = ANY($1::uuid[]) AND rule = ANY($2)",
        patient_ids,
        list(rules),
    )


def _epochs(evidence: Any) -> list[int]:
    return [int(t) for t in (evidence or {}).get("measured_at", [])]


async def test_simulated_cohort_is_stored_and_alerted_as_planned(
    settings: Settings, services: Services, db: asyncpg.Pool, tmp_path: Path
) -> None:
    with private_broker(tmp_path) as mqtt_url:
        await _simulated_cohort(settings, services, db, tmp_path, mqtt_url)


async def _simulated_cohort(
    settings: Settings, services: Services, db: asyncpg.Pool, tmp_path: Path, mqtt_url: str
) -> None:
    options = Options(
        seed=11,
        patients=8,
        cgm=2,
        days=5,
        team=f"sim-{uuid.uuid4().hex[:8]}",
        mqtt_url=mqtt_url,
        state_file=tmp_path / "simulator.json",
        live=False,
        progress=False,
        receipt_timeout=30,
    )
    async with http_server(services) as url, running_consumer(settings, mqtt_url) as consumer:
        options = dataclasses.replace(options, url=url)
        report = await simulate(options, db)
        again = await simulate(options, db)  # the same cohort continues: same patients and devices
        background = await _drain(services, consumer)
    plan: Plan = report.plan
    patients = {p["external_id"]: p for p in plan.patients()}
    ids = [uuid.UUID(p["patient_id"]) for p in patients.values()]

    # every transport was used and answered every message
    assert {p["transport"] for p in patients.values()} == {"mqtt", "http", "nightscout"}
    for transport in ("mqtt", "http", "nightscout"):
        tally = report.tallies[transport]
        assert tally.messages > 0 and tally.unanswered_messages == 0, (transport, tally.errors)
    total = report.total()
    assert total.readings == plan.sent

    # receipts: each distinct reading accepted once, every re-sent one a duplicate, the mistyped ones refused
    assert plan.resyncs and any(r["already_sent"] > 0 for r in plan.resyncs)
    assert plan.refusals > 0
    assert plan.measurements > 0
    assert total.accepted == plan.readings + plan.measurements
    assert total.rejected == plan.refusals
    assert total.duplicates == plan.sent - plan.readings - plan.measurements - plan.refusals > 0
    assert set(report.tallies["http"].reasons) == {
        reason for reason in report.tallies["http"].reasons if "outside the plausible range" in reason
    }
    # the report says what the rejections were, not just how many
    typos = f"{plan.refusals:,} rejected: {plan.refusals:,} value outside the plausible range (simulated typos)"
    assert describe_rejections(total.reasons) == typos
    assert f"duplicates {report.tallies['http'].duplicates:,}, {typos}" in format_report(report)

    # stored: exactly the distinct planned readings of each patient; no duplicate survived a re-sync
    stored = {
        r["external_id"]: r["n"]
        for r in await db.fetch(
            "SELECT p.external_id, count(r.*) AS n FROM patients p LEFT JOIN readings r ON r.patient_id = p.id"
            " WHERE p.id = ANY($1::uuid[]) GROUP BY p.external_id",
            ids,
        )
    }
    # (the second run sends what came due since the first: a CGM reading when a 5-minute tick fell between them)
    assert stored == {k: p["readings"] + again.plan.stored_readings(k) for k, p in patients.items()}
    assert sum(stored.values()) == plan.readings
    # the doses, ketones, weights and blood pressures: each distinct one stored once, of its kind
    measured = {
        (r["external_id"], r["kind"]): r["n"]
        for r in await db.fetch(
            "SELECT p.external_id, m.kind, count(*) AS n FROM patients p JOIN measurements m ON m.patient_id = p.id"
            " WHERE p.id = ANY($1::uuid[]) GROUP BY p.external_id, m.kind",
            ids,
        )
    }
    planned = Counter(
        {
            (k, kind): n + again.plan.measurement_counts(k).get(kind, 0)
            for k, p in patients.items()
            for kind, n in p["measurements"].items()
        }
    )
    assert measured == planned
    # the plans were written through telemon.treatment: every patient has one, insulin ones two versions, and the
    # logged doses are the units of the plan in force
    plans = {
        r["external_id"]: (r["versions"], r["treatment"])
        for r in await db.fetch(
            "SELECT p.external_id, p.treatment, count(t.*) AS versions FROM patients p"
            " JOIN treatment_plans t ON t.patient_id = p.id WHERE p.id = ANY($1::uuid[])"
            " GROUP BY p.external_id, p.treatment",
            ids,
        )
    }
    assert plans == {p.external_id: (2 if p.care.insulin else 1, p.treatment) for p in plan.cohort}
    refused = await db.fetchval(
        "SELECT count(*) FROM ingest_rejections WHERE patient_id = ANY($1::uuid[]) AND reason LIKE '%plausible range%'",
        ids,
    )
    assert refused == plan.refusals

    # the meter with the wrong clock: its readings were put back at their true time
    clock = next(p for p in plan.cohort if "wrong-clock" in p.roles)
    rows = await db.fetch(
        "SELECT measured_at, device_time, clock_offset_s FROM readings WHERE patient_id = $1",
        uuid.UUID(patients[clock.external_id]["patient_id"]),
    )
    corrected = [r for r in rows if r["clock_offset_s"] != 0]
    assert corrected
    for r in corrected:
        assert abs(r["clock_offset_s"] + clock.clock_skew_s) <= 5
        assert abs((r["device_time"] - r["measured_at"]).total_seconds() - clock.clock_skew_s) <= 5

    # the delivery was recorded
    delivered = next(p for p in plan.cohort if "delivers" in p.roles)
    assert [d["external_id"] for d in plan.deliveries] == [delivered.external_id]
    assert (
        await db.fetchval("SELECT delivery_date FROM patients WHERE external_id = $1", delivered.external_id)
        == delivered.delivery_date
    )

    # a second run adds no patient and re-sends nothing: it continues where the first stopped
    assert again.created_patients == 0
    assert again.total().duplicates == 0 and again.total().rejected == 0

    # every planned hypoglycaemia (within the engine's 7-day look-back) raised the alert of its level, hypo_l1 or
    # hypo_l2, with its readings of that level as evidence: a CGM dip below 54 mg/dL is one level-2 episode, whose
    # evidence is its readings below 54 (the level-1 readings around them belong to no level-1 alert); a later
    # episode of the same rule, while its alert is open, is folded into that alert (its reading ids kept there)
    from alerts.engine import Engine

    if not background:  # the ingest → engine hand-off is not wired in these services: evaluate by hand
        await Engine(db).evaluate(ids)
    hypos = plan.hypoglycaemias()
    assert {h.kind for h in hypos} == {"smbg", "cgm"}
    alerts = await _alerts(db, ids, ("hypo_l1", "hypo_l2"))
    folded = {
        (str(r["patient_id"]), r["rule"]): [t.timestamp() for t in r["measured_at"]]
        for r in await db.fetch(
            "SELECT a.patient_id, a.rule, array_agg(r.measured_at) AS measured_at FROM alerts a"
            " JOIN readings r ON r.patient_id = a.patient_id AND r.id = ANY(a.folded_reading_ids)"
            " WHERE a.patient_id = ANY($1::uuid[]) AND a.rule = ANY($2) GROUP BY a.patient_id, a.rule",
            ids,
            ["hypo_l1", "hypo_l2"],
        )
    }
    for hypo in hypos:
        mine = [a for a in alerts if str(a["patient_id"]) == hypo.patient_id and a["rule"] == hypo.level]
        held = [t for a in mine for t in _epochs(a["evidence"])] + folded.get((hypo.patient_id, hypo.level), [])
        for reading in (r for r in hypo.readings if r.event == hypo.level):
            at = reading.taken_at.timestamp()
            assert any(abs(t - at) <= MATCH_S for t in held), (hypo.as_dict(), mine)

    # the patient who stopped measuring got no_data (a time-driven rule: the scheduled pass, run here by hand;
    # a stateful alert opens once a second pass, minutes later, confirms the first)
    import time

    from alerts.store import CONFIRM_S

    await Engine(db).evaluate(ids)
    await Engine(db).evaluate(ids, now=time.time() + CONFIRM_S)
    stopped = plan.stopped()
    assert stopped
    no_data = {str(a["patient_id"]) for a in await _alerts(db, ids, ("no_data",)) if a["status"] == "open"}
    for patient in stopped:
        assert patient["last_reading_at"] is not None
        assert patient["patient_id"] in no_data


async def test_replay_of_the_iglu_file_matches_it_over_http_then_mqtt(
    settings: Settings, services: Services, db: asyncpg.Pool, tmp_path: Path
) -> None:
    team = f"replay-{uuid.uuid4().hex[:8]}"
    with private_broker(tmp_path) as mqtt_url:
        first, second = await _replay_twice(settings, services, db, tmp_path, team, mqtt_url)
    await _check_replays(first, second, db)


async def _replay_twice(
    settings: Settings, services: Services, db: asyncpg.Pool, tmp_path: Path, team: str, mqtt_url: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    async with http_server(services) as url:
        options = ReplayOptions(
            file=IGLU,
            team=team,
            time_zone=IGLU_ZONE,
            transport="http",
            url=url,
            state_file=tmp_path / "replay.json",
            progress=False,
        )
        first = (await replay(options, db)).as_dict()
        async with running_consumer(settings, mqtt_url):
            second = (await replay(dataclasses.replace(options, transport="mqtt", mqtt_url=mqtt_url), db)).as_dict()
    return first, second


async def _check_replays(first: dict[str, Any], second: dict[str, Any], db: asyncpg.Pool) -> None:
    assert first["rows"] == 13_866 and first["subjects"] == 5
    assert first["stored"] == 13_866 and first["matches"]
    assert first["duplicates"] == first["rejected"] == first["refused_before_sending"] == 0
    # the same patients and devices: every row is now a duplicate
    assert (second["stored"], second["duplicates"], second["rejected"]) == (0, 13_866, 0)
    assert second["matches"] and second["unanswered"] == 0
    assert [p["patient_id"] for p in first["patients"]] == [p["patient_id"] for p in second["patients"]]
    ids = [uuid.UUID(p["patient_id"]) for p in first["patients"]]
    assert await db.fetchval("SELECT count(*) FROM readings WHERE patient_id = ANY($1::uuid[])", ids) == 13_866
    first_reading = await db.fetchval("SELECT min(measured_at) FROM readings WHERE patient_id = ANY($1::uuid[])", ids)
    assert first_reading == dt.datetime(2015, 2, 24, 22, 31, 29, tzinfo=dt.UTC)  # 17:31:29 EST
    external = await db.fetch("SELECT external_id FROM patients WHERE id = ANY($1::uuid[])", ids)
    assert sorted(r["external_id"] for r in external)[0] == "replay-iglu_example_data_5_subject-Subject-1"


def _trace(path: Path, rows: list[tuple[str, str, str]]) -> None:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="") as handle:  # type: ignore[operator]
        writer = csv.writer(handle, quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(["id", "time", "gl"])
        writer.writerows(rows)


async def test_replay_refuses_na_before_sending_and_reports_telemons_rejections(
    services: Services, db: asyncpg.Pool, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    rows = [("a", (now - dt.timedelta(minutes=5 * i)).isoformat(sep=" "), "100") for i in range(10)]
    rows += [("a", (now - dt.timedelta(hours=3)).isoformat(sep=" "), "NA"), ("b", "yesterday", "90")]
    rows += [("b", (now - dt.timedelta(hours=1)).isoformat(sep=" "), "NA"), ("b", now.isoformat(sep=" "), "2000")]
    plain = tmp_path / "trace.csv.gz"
    _trace(plain, rows)
    archive = tmp_path / "trace.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("inner.csv", gzip.decompress(plain.read_bytes()))
    async with http_server(services) as url:
        options = ReplayOptions(file=plain, team=f"na-{uuid.uuid4().hex[:6]}", url=url, progress=False)
        options = dataclasses.replace(options, state_file=tmp_path / "replay.json")
        report = (await replay(options, db)).as_dict()
        zipped = (await replay(dataclasses.replace(options, file=archive), db)).as_dict()
    assert report["rows"] == 14
    assert report["refused_reasons"] == {"gl: not a number": 2, "time: not a date-time": 1}
    assert report["stored"] == 10 and report["rejected"] == 1 and report["matches"]
    assert "plausible range" in next(iter(report["rejected_reasons"]))
    # the zip holds the same file (stem "trace"): the same patients, so the readings are duplicates
    assert zipped["rows"] == 14 and zipped["duplicates"] == 10 and zipped["stored"] == 0 and zipped["matches"]

    bad = tmp_path / "labels.csv"
    bad.write_text("id,age,bmi\n1,30,22\n")
    with pytest.raises(SettingsError, match="id,time,gl"):
        await replay(dataclasses.replace(options, file=bad), db)


def test_rejections_are_described_by_what_they_were() -> None:
    reasons = Counter(
        {
            "value: # mg/dL is outside the plausible range #–# mg/dL": 5,
            "value: # mmol/L is outside the plausible range #–# mmol/L": 2,
            "refused (a Nightscout answer carries counts only; telemon keeps the reasons)": 3,
            "flags: a reading cannot be both lo and hi": 1,
        }
    )
    assert describe_rejections(reasons) == (
        "11 rejected: 7 value outside the plausible range (simulated typos), "
        "3 refused through the Nightscout API (its answers give counts, not reasons), "
        "1 flags: a reading cannot be both lo and hi"
    )
    assert describe_rejections(Counter()) == "0 rejected"
